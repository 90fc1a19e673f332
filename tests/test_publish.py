"""bot.publish against real git repositories built from examples/ (make_fork.py) and real decisions."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from publish_helpers import demo_repo, git, make_fork, recorded_run

from bot import gitutil
from bot.experiments import stats
from bot.publish import (
    PublishError,
    candidate_from_commit,
    choose_publication,
    next_pr_branch,
    pr_branch_name,
    published_sources,
    push_blockers,
    stack_winners,
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    repo, history = demo_repo(tmp_path_factory.mktemp("demo"))
    cands = {}
    for c in history.commits:
        picked = candidate_from_commit(repo, history.base_sha, c.sha, f"candidates/{c.slug}")
        cands[c.slug] = picked.sha
    return repo, history, cands


def _file_at(repo: Path, rev: str, path: str) -> str:
    return git(repo, "show", f"{rev}:{path}")


def test_make_fork_is_deterministic(tmp_path, demo):
    _, history, _ = demo
    again = make_fork.build(tmp_path / "again")
    assert again.base_sha == history.base_sha
    assert [c.sha for c in again.commits] == [c.sha for c in history.commits]
    with pytest.raises(FileExistsError):
        make_fork.build(tmp_path / "again")


def test_every_fork_commit_applies_alone_on_upstream(demo):
    repo, history, cands = demo
    for c in history.commits:
        assert cands[c.slug], c.slug
        assert git(repo, "rev-parse", f"{cands[c.slug]}^") == history.base_sha
        assert git(repo, "diff", "--name-only", history.base_sha, cands[c.slug]).split() == c.files
        assert all(f.startswith("src/") for f in c.files)
        log = git(repo, "log", "-1", "--format=%an%n%B", cands[c.slug])
        assert log.startswith("Ada Fork" if c.fork == "fork" else "Grace Fork")
        assert f"Cherry-picked-from: {c.sha}" in log


def test_two_winners_stack_cleanly_and_a_conflicting_third_is_dropped(demo):
    repo, history, cands = demo
    winners = [
        {"name": "softmax-reciprocal", "sha": cands["5-softmax-reciprocal"], "speedup": 1.02},
        {"name": "fused-softmax", "sha": cands["1-fused-softmax"], "speedup": 1.2},
        {"name": "matmul-ikj", "sha": cands["2-matmul-ikj"], "speedup": 1.5},
    ]
    result = stack_winners(repo, history.base_sha, winners, "autoresearch/1/stack")
    assert result.applied == ["matmul-ikj", "fused-softmax"]  # biggest effect first
    assert [d["name"] for d in result.dropped] == ["softmax-reciprocal"]
    assert "src/softmax.c" in result.dropped[0]["reason"] and "fused-softmax" in result.dropped[0]["reason"]
    assert git(repo, "rev-parse", "autoresearch/1/stack") == result.sha
    assert git(repo, "rev-list", "--count", f"{history.base_sha}..{result.sha}") == "2"
    for slug, path in (("1-fused-softmax", "src/softmax.c"), ("2-matmul-ikj", "src/matmul.c")):
        assert _file_at(repo, result.sha, path) == _file_at(repo, history.commit(slug).sha, path)
    messages = git(repo, "log", "--format=%an|%cn|%B", f"{history.base_sha}..{result.sha}")
    assert "matmul: i-k-j loop order" in messages and "softmax: compute each exponential once" in messages
    assert messages.count("Autoresearch-Stack: autoresearch/1/stack") == 2
    # author kept, the bot commits (as whatever identity the process's forge gave it: gitutil.set_identity is
    # process-wide, so an earlier test's App may have set `<slug>[bot]`)
    assert f"Ada Fork|{gitutil.bot_identity()[0]}" in messages
    assert git(repo, "status", "--porcelain") == ""  # caller's checkout untouched
    assert "autoresearch-stack" not in git(repo, "worktree", "list")  # temporary worktree removed


def test_stack_builds_and_passes_check_while_the_fast_exp_does_not(demo, tmp_path):
    repo, history, cands = demo
    stack = stack_winners(
        repo,
        history.base_sha,
        [{"name": "a", "sha": cands["1-fused-softmax"]}, {"name": "b", "sha": cands["2-matmul-ikj"]}],
        "t/stack-check",
    )
    outcomes = {}
    for label, sha in (("stack", stack.sha), ("fast-exp", cands["3-fast-exp"])):
        tree = tmp_path / label
        git(repo, "worktree", "add", "-q", "--detach", str(tree), sha)
        subprocess.run(["make", "-s", "check"], cwd=tree, check=True, capture_output=True)
        outcomes[label] = subprocess.run(["./check"], cwd=tree, capture_output=True, text=True)
        git(repo, "worktree", "remove", "--force", str(tree))
    assert outcomes["stack"].returncode == 0, outcomes["stack"].stdout
    assert outcomes["fast-exp"].returncode == 1
    assert "FAIL softmax" in outcomes["fast-exp"].stdout


def test_stack_refuses_existing_branch_and_creates_nothing_when_all_drop(demo):
    repo, history, cands = demo
    with pytest.raises(PublishError, match="already exists"):
        stack_winners(
            repo, history.base_sha, [{"name": "x", "sha": cands["2-matmul-ikj"]}], "candidates/2-matmul-ikj"
        )
    empty = stack_winners(
        repo,
        history.base_sha,
        [{"name": "same-as-base", "sha": history.base_sha}, {"name": "bogus", "sha": "0" * 40}],
        "t/empty",
    )
    assert empty.sha is None and empty.applied == []
    assert {d["name"] for d in empty.dropped} == {"same-as-base", "bogus"}
    assert "no commits ahead" in empty.dropped[0]["reason"] and "unknown commit" in empty.dropped[1]["reason"]
    assert subprocess.run(["git", "rev-parse", "--verify", "-q", "t/empty"], cwd=repo).returncode != 0


def test_candidate_from_commit_reports_a_conflict(demo):
    repo, history, cands = demo
    # the reciprocal softmax applied on top of the fused one: both rewrite the same lines
    res = candidate_from_commit(
        repo, cands["1-fused-softmax"], history.commit("5-softmax-reciprocal").sha, "t/conflict"
    )
    assert res.sha is None and "src/softmax.c" in res.dropped[0]["reason"]


# --------------------------------------------------------------------------- choose_publication


def _decide(results):
    return stats.decide(results, recorded_run()["project"]).to_dict()


def _parts(run):
    return list(run["stack"]["applied"])


def test_choose_publication_publishes_a_measured_stack():
    run = recorded_run()
    single, verification = _decide(run["results"]), _decide(run["verification"])
    assert set(single["winners"]) >= set(_parts(run)) and len(_parts(run)) == 2
    choice = choose_publication(verification, single)
    assert choice["kind"] == "stack" and choice["candidate"] == "stack" and choice["speedup"] > 1.1


def _same_as_baseline(variants, name):
    """Make `name` an A/A copy of the baseline in both tiers."""
    v = variants[name]
    v["simulated"] = dict(variants["baseline"]["simulated"])
    for p in v["pairs"]:
        p["cand"] = dict(p["base"])


def _scaled(variants, name, factor):
    """`name` costs `factor` x the baseline in both tiers (factor < 1: faster), with a small deterministic
    jitter."""
    v = variants[name]
    base_sim = variants["baseline"]["simulated"]
    v["simulated"] = {**base_sim, "estimated_cycles": int(base_sim["estimated_cycles"] * factor)}
    for i, p in enumerate(v["pairs"]):
        p["cand"] = {m: x * factor * (1 + 0.01 * (i % 3)) for m, x in p["base"].items()}


def test_choose_publication_falls_back_when_the_stack_gains_nothing():
    run = recorded_run()
    _same_as_baseline(run["verification"]["x86"]["variants"], "stack")
    choice = choose_publication(_decide(run["verification"]), _decide(run["results"]))
    assert choice["kind"] == "single" and choice["candidate"] in set(_parts(run))
    assert "not significantly faster" in choice["reason"]


def test_choose_publication_falls_back_when_the_stack_is_slower_than_its_best_part():
    run = recorded_run()
    variants = run["verification"]["x86"]["variants"]
    best = _parts(run)[0]
    # the stack is clearly faster than the baseline, 2x, but loses half of what its best part gains alone (4x)
    _scaled(variants, "stack", 0.5)
    _scaled(variants, best, 0.25)
    verification = _decide(run["verification"])
    choice = choose_publication(verification, _decide(run["results"]))
    assert choice["kind"] == "single" and choice["candidate"] == best
    assert "stack" in verification["winners"]
    assert "slower than its best part" in choice["reason"]


def test_choose_publication_when_the_stack_breaks_or_nothing_won():
    run = recorded_run()
    run["verification"]["x86"]["variants"]["stack"]["status"] = "validation_failed"
    choice = choose_publication(_decide(run["verification"]), _decide(run["results"]))
    assert choice["kind"] == "single" and "broken" in choice["reason"]
    none = choose_publication(None, {"rows": [], "winners": [], "target": "attn_ms"})
    assert none == {
        "kind": "none",
        "candidate": None,
        "speedup": None,
        "reason": "no candidate was significantly faster and correct",
    }
    only = choose_publication(None, _decide(run["results"]))
    assert only["kind"] == "single" and "no stack was measured" in only["reason"]
    one_part = choose_publication(
        _decide(recorded_run()["verification"]), _decide(run["results"]), stack_parts=["fork-06e4a40"]
    )
    assert one_part["kind"] == "single"


# --------------------------------------------------------------------------- branch names


def test_pr_branch_names_never_collide_across_attempts():
    assert (
        pr_branch_name(12, "Speed up token generation on CPU!")
        == "autoresearch/12/speed-up-token-generation-on-cpu"
    )
    assert pr_branch_name(12, "x", 2) == "autoresearch/12/x-2"
    taken = {"autoresearch/12/x", "autoresearch/12/x-2"}
    assert next_pr_branch(taken, 12, "x") == "autoresearch/12/x-3"
    assert pr_branch_name(3, "../../etc; rm -rf") == "autoresearch/3/etc-rm-rf"
    for bad in ((0, "x", 1), (1, "x", 0)):
        with pytest.raises(ValueError):
            pr_branch_name(*bad)
    assert shutil.which("git")
    assert (
        subprocess.run(
            ["git", "check-ref-format", "--branch", pr_branch_name(3, "Ünïcödé ~^:?*[")]
        ).returncode
        == 0
    )


# --------------------------------------------------------------------------- what may be pushed


def test_push_blockers_name_ci_config_and_protected_paths_of_a_fork_commit(tmp_path):
    """A fork commit is pushed into the base repository only when it leaves CI, the config and the
    protected paths alone (the base repository's CI could run them with its secrets)."""
    repo = tmp_path / "r"
    repo.mkdir()
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    git(repo, "init", "-q", "-b", "main")
    for rel, text in {
        "src/a.c": "int a;\n",
        "bench/run.sh": "./bench\n",
        ".autoresearch.yml": "preset: generic\n",
        ".github/workflows/ci.yml": "on: push\n",
    }.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    git(repo, "add", "-A")
    git(repo, *ident, "commit", "-q", "-m", "base")
    base = git(repo, "rev-parse", "HEAD")

    def commit(name, change):
        git(repo, "checkout", "-q", "-b", name, base)
        change()
        git(repo, "add", "-A")
        git(repo, *ident, "commit", "-q", "-m", name)
        return git(repo, "rev-parse", "HEAD")

    fine = commit("fine", lambda: (repo / "src/a.c").write_text("int a = 1;\n"))
    ci = commit("ci", lambda: (repo / ".github/workflows/steal.yml").write_text("run: env\n"))
    cfg = commit("cfg", lambda: (repo / ".autoresearch.yml").unlink())
    moved = commit("moved", lambda: (repo / "bench/run.sh").rename(repo / "src/run.sh"))
    upper = commit("upper", lambda: (repo / ".GitHub").mkdir() or (repo / ".GitHub/x.yml").write_text("x\n"))
    protected = ["bench/**"]
    assert push_blockers(repo, base, fine, protected) == []
    assert push_blockers(repo, base, ci, protected) == [".github/workflows/steal.yml"]
    assert push_blockers(repo, base, cfg, protected) == [".autoresearch.yml"]
    assert push_blockers(repo, base, moved, protected) == ["bench/run.sh"]  # a rename's old side counts
    assert push_blockers(repo, base, upper, protected) == [".GitHub/x.yml"]  # case-insensitive filesystems
    assert push_blockers(repo, base, fine, ["src/**"]) == ["src/a.c"]


def test_published_sources_name_the_fork_commits_whatever_base_they_were_picked_onto(demo, tmp_path):
    repo, history, cands = demo
    matmul, softmax = history.commit("2-matmul-ikj").sha, history.commit("1-fused-softmax").sha
    single = published_sources(repo, history.base_sha, cands["2-matmul-ikj"])
    assert single == (f"commit:{matmul}",)
    # the base moved on (a rerun later): another commit, the same fork commit published
    tree = tmp_path / "moved"
    git(repo, "worktree", "add", "-q", "--detach", str(tree), history.base_sha)
    (tree / "NOTES.md").write_text("base moves on\n")
    git(tree, "add", "NOTES.md")
    git(tree, "-c", "user.name=m", "-c", "user.email=m@x", "commit", "-qm", "notes")
    moved = git(tree, "rev-parse", "HEAD")
    git(repo, "worktree", "remove", "--force", str(tree))
    again = candidate_from_commit(repo, moved, matmul, "t/sources-again")
    assert again.sha != cands["2-matmul-ikj"]
    assert published_sources(repo, moved, again.sha) == single
    # a stack names every fork commit in it; another set of commits is another publication
    stack = stack_winners(
        repo,
        history.base_sha,
        [{"name": "a", "sha": cands["1-fused-softmax"]}, {"name": "b", "sha": cands["2-matmul-ikj"]}],
        "t/sources-stack",
    )
    assert published_sources(repo, history.base_sha, stack.sha) == tuple(
        sorted((f"commit:{matmul}", f"commit:{softmax}"))
    )
    # a commit that was not cherry-picked (an agent's): its change, by patch id
    assert published_sources(repo, history.commit("2-matmul-ikj").sha + "^", matmul)[0].startswith("patch:")
    assert published_sources(repo, history.base_sha, history.base_sha) == ()
