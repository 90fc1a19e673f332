"""Session-wide test setup, and the fixtures for the test doubles.

Helpers import as plain modules (pyproject's pytest `pythonpath`: tests/, the minibench fixture, examples/,
sky/). Fixtures: `sandbox` (a sandbox GitHub server per test module) and `sandbox_admin` (its admin API),
`arxiv` (the arXiv double, started), `anthropic` (starts Messages API doubles, stopped after the test),
`bot_store` (Settings on a temporary database and data dir, and its Store), `git_worktree` (a committed
repository with a candidate worktree).

Tests that build and run candidate code through the local executor need the jail (bot/experiments/jail.py:
bubblewrap; `make test` installs it when run as root on Debian/Ubuntu). Where no jail starts, the executor
refuses candidates, so those tests are skipped with the reason instead of failing; tests/test_jail.py skips
its own. Everything else runs everywhere.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

NEEDS_JAIL_TESTS = {
    "test_e2e.py": {
        "test_full_run_survives_kill9_and_publishes_one_verified_pr",
        "test_bench_command_measures_a_fork_branch_without_opening_a_pr",
    },
    "test_e2e_push.py": {
        "test_candidates_touching_ci_config_or_protected_paths_are_never_pushed",
        "test_push_to_fork_keeps_every_branch_out_of_the_base_and_survives_a_deleted_fork",
    },
    "test_e2e_agent.py": {"test_agent_candidate_through_the_pipeline_with_injection_refused"},
    "test_cli.py": {"test_bench_reproduces_a_measurement"},
    "test_local_executor.py": {
        "test_two_arches_run_one_after_another_and_survive_a_restart",
        "test_cancel_kills_the_process_group_and_keeps_partial_results",
        "test_dead_runner_without_result_is_failed_after_restart",
        "test_benchmark_timeout_marks_only_that_candidate",
    },
}
NEEDS_JAIL_FIXTURES = {"full_run"}  # tests/test_driver.py: one batch through LocalExecutor


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    needing = [
        i
        for i in items
        if i.originalname in NEEDS_JAIL_TESTS.get(i.path.name, ())
        or NEEDS_JAIL_FIXTURES & set(getattr(i, "fixturenames", ()))
    ]
    if not needing:
        return
    from bot.experiments import jail

    ok, why = jail.probe()
    if ok:
        return
    mark = pytest.mark.skip(
        reason=f"candidate code needs the jail and none starts here ({why}); "
        f"install bubblewrap (apt-get install bubblewrap)"
    )
    for item in needing:
        item.add_marker(mark)


# --------------------------------------------------------------------------- doubles


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A sandbox GitHub server (REST, git over HTTP, webhooks) of the test module's own."""
    from bot.sandbox import Sandbox

    with Sandbox(data_dir=tmp_path_factory.mktemp("sandbox") / "data") as sb:
        yield sb


@pytest.fixture(scope="module")
def sandbox_admin(sandbox: Any) -> Any:
    """The client of `sandbox`'s admin API (set-up only: users, repos, apps, faults)."""
    from sandbox_helpers import Admin

    return Admin(sandbox)


@pytest.fixture()
def arxiv() -> Iterator[Any]:
    """The arXiv export API double with its default entries, started."""
    from arxiv_double import ArxivDouble

    with ArxivDouble() as double:
        yield double


@pytest.fixture()
def anthropic() -> Iterator[Callable[..., Any]]:
    """`anthropic(script, api_key=...)` starts a Messages API double; every one started stops after the
    test."""
    from anthropic_double import AnthropicDouble

    started: list[Any] = []

    def start(script: Any, **kw: Any) -> Any:
        double = AnthropicDouble(script, **kw).__enter__()
        started.append(double)
        return double

    yield start
    for double in reversed(started):
        double.__exit__(None, None, None)


@pytest.fixture()
def bot_store(tmp_path: Path) -> Callable[..., tuple[Any, Any]]:
    """`bot_store(**settings)`: Settings on tmp_path (database bot.db, data dir) with the overrides, and its
    Store."""
    from bot.config import Settings
    from bot.store import Store

    def make(**overrides: Any) -> tuple[Any, Any]:
        settings = Settings(**{"database": str(tmp_path / "bot.db"), "data_dir": str(tmp_path), **overrides})
        return settings, Store(settings.db_path)

    return make


@pytest.fixture()
def git_worktree(tmp_path: Path) -> Callable[..., Path]:
    """`git_worktree(files, branch)`: tmp_path/repo with `files` ({path: text}) committed on main, and a
    worktree of it at tmp_path/wt on a new `branch`; returns the worktree."""

    def sh(cwd: Path, *args: str) -> None:
        subprocess.run(args, cwd=cwd, check=True, text=True, capture_output=True)

    def make(files: dict[str, str], branch: str) -> Path:
        repo = tmp_path / "repo"
        for rel, text in files.items():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_text(text)
        sh(repo, "git", "init", "-q", "-b", "main")
        sh(repo, "git", "add", ".")
        sh(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
        sh(repo, "git", "worktree", "add", "-q", "-b", branch, str(tmp_path / "wt"))
        return tmp_path / "wt"

    return make
