"""Fork commits: compared through a forge double over real git repos, checked and ported with real git."""

from __future__ import annotations

from pathlib import Path

import pytest
from research_fixtures import ForgeDouble, World, git

from bot.research.cache import JsonCache
from bot.research.forks import ForkOptions, scan_forks

PROJECT = {
    "paths": {"hot": ["ggml/src/ggml-cpu/**", "src/**"], "allowed": ["**"], "protected": []},
    "research": {"max_forks": 30, "related": [], "arxiv": True},
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(tmp_path_factory.mktemp("forks"))


def _scan(world: World, forge: ForgeDouble, cache_dir: Path, project: dict = PROJECT):
    return scan_forks(
        forge,
        "owner/proj",
        project,
        str(world.clone),
        world.upstream_head,
        JsonCache(cache_dir),
        ForkOptions(retry_wait_s=0),
    )


def test_hot_commits_are_kept_checked_and_deduplicated(world: World, tmp_path: Path) -> None:
    commits, notes = _scan(world, ForgeDouble(world), tmp_path)
    by_sha = {c.sha: c for c in commits}
    assert set(by_sha) == {
        world.softmax_sha,
        world.conflict_sha,
    }  # docs commit is not hot; bob's copy deduped
    soft = by_sha[world.softmax_sha]
    assert soft.applies is True and soft.also_in == ["bob/proj"]
    assert soft.hot_files == ["ggml/src/ggml-cpu/ops.cpp"] and (soft.additions, soft.deletions) == (1, 1)
    assert soft.author == "Alice" and soft.patch_id
    conflict = by_sha[world.conflict_sha]
    assert conflict.applies is False and "src/util.c" in conflict.apply_detail and conflict.port_sha is None
    note = next(n for n in notes if n.source == "forks")
    assert note.status == "ok"
    assert "compared 3 forks" in note.detail and "1 apply cleanly" in note.detail
    assert "carol/proj" in note.detail  # the unreachable fork is reported, not fatal


def test_clean_commit_is_ported_onto_the_baseline(world: World, tmp_path: Path) -> None:
    commits, _ = _scan(world, ForgeDouble(world), tmp_path)
    soft = next(c for c in commits if c.applies)
    clone = world.clone
    assert git(clone, "rev-parse", f"{soft.port_sha}^") == world.upstream_head
    changed = git(clone, "diff", "--name-only", world.upstream_head, soft.port_sha).split()
    assert changed == ["ggml/src/ggml-cpu/ops.cpp"]
    assert "/* online */" in git(clone, "show", f"{soft.port_sha}:ggml/src/ggml-cpu/ops.cpp")
    assert "return 20;" in git(clone, "show", f"{soft.port_sha}:src/util.c")  # upstream's newer change kept
    assert git(clone, "show", "-s", "--format=%an", soft.port_sha) == "Alice"
    assert f"cherry picked from commit {soft.sha}" in git(clone, "show", "-s", "--format=%B", soft.port_sha)
    assert git(clone, "status", "--porcelain") == ""  # the work tree was never touched


def test_rerun_uses_cached_compares(world: World, tmp_path: Path) -> None:
    _scan(world, ForgeDouble(world), tmp_path)
    forge = ForgeDouble(world)
    commits, _ = _scan(world, forge, tmp_path)
    assert forge.calls["compare"] == 0 and len(commits) == 2


def test_fork_moving_invalidates_its_cache_entry(tmp_path: Path) -> None:
    world = World(tmp_path / "w")
    _scan(world, ForgeDouble(world), tmp_path / "c")
    alice = world.paths["alice/proj"]
    new = git(alice, "commit", "-q", "--allow-empty", "-m", "empty") or git(alice, "rev-parse", "HEAD")
    forge = ForgeDouble(world)
    _scan(world, forge, tmp_path / "c")
    assert forge.calls["compare"] == 1 and new is not None  # only alice is compared again


def test_limits_and_related_projects(world: World, tmp_path: Path) -> None:
    project = {**PROJECT, "research": {"max_forks": 1, "related": ["bob/proj", "nobody/else"], "arxiv": True}}
    commits, notes = _scan(world, ForgeDouble(world), tmp_path, project)
    forks_note = next(n for n in notes if n.source == "forks")
    related_note = next(n for n in notes if n.source == "related")
    assert "compared 1 forks" in forks_note.detail
    assert "compared 2 related projects" in related_note.detail and "nobody/else" in related_note.detail
    assert any(c.repo == "alice/proj" and c.also_in == ["bob/proj"] for c in commits)


def test_no_forks_configured_is_skipped(world: World, tmp_path: Path) -> None:
    project = {**PROJECT, "research": {"max_forks": 0, "related": [], "arxiv": True}}
    forge = ForgeDouble(world)
    commits, notes = _scan(world, forge, tmp_path, project)
    assert commits == [] and [n.status for n in notes] == ["skipped"] and forge.calls["list_forks"] == 0


def test_unreadable_upstream_is_a_failed_note(world: World, tmp_path: Path) -> None:
    commits, notes = scan_forks(
        ForgeDouble(world),
        "owner/missing",
        PROJECT,
        str(world.clone),
        world.upstream_head,
        JsonCache(tmp_path),
        ForkOptions(attempts=1, retry_wait_s=0),
    )
    assert commits == [] and notes[0].status == "failed" and "owner/missing" in notes[0].detail


def test_forks_not_touching_hot_paths_are_not_fetched(tmp_path: Path) -> None:
    world = World(tmp_path / "w")
    project = {**PROJECT, "paths": {**PROJECT["paths"], "hot": ["nothing/**"]}}
    commits, notes = _scan(world, ForgeDouble(world), tmp_path / "c", project)
    assert commits == [] and "0 distinct touching hot paths" in notes[0].detail
    assert git(world.clone, "for-each-ref", "refs/autoresearch/") == ""  # one compare per fork, no fetch
