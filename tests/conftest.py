"""Session-wide test setup.

Tests that build and run candidate code through the local executor need the jail (bot/experiments/jail.py:
bubblewrap; `make test` installs it when run as root on Debian/Ubuntu). Where no jail starts, the executor
refuses candidates, so those tests are skipped with the reason instead of failing; tests/test_jail.py skips
its own. Everything else runs everywhere.
"""
from __future__ import annotations

from typing import Any

import pytest

NEEDS_JAIL_TESTS = {
    "test_e2e.py": {"test_full_run_survives_kill9_and_publishes_one_verified_pr",
                    "test_bench_command_measures_a_fork_branch_without_opening_a_pr"},
    "test_e2e_agent.py": {"test_agent_candidate_through_the_pipeline_with_injection_refused"},
    "test_cli.py": {"test_bench_reproduces_a_measurement"},
    "test_local_executor.py": {"test_two_arches_run_one_after_another_and_survive_a_restart",
                               "test_cancel_kills_the_process_group_and_keeps_partial_results",
                               "test_dead_runner_without_result_is_failed_after_restart",
                               "test_benchmark_timeout_marks_only_that_candidate"},
}
NEEDS_JAIL_FIXTURES = {"full_run"}               # tests/test_driver.py: one batch through LocalExecutor


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    needing = [i for i in items if i.originalname in NEEDS_JAIL_TESTS.get(i.path.name, ())
               or NEEDS_JAIL_FIXTURES & set(getattr(i, "fixturenames", ()))]
    if not needing:
        return
    from bot.experiments import jail

    ok, why = jail.probe()
    if ok:
        return
    mark = pytest.mark.skip(reason=f"candidate code needs the jail and none starts here ({why}); "
                                   f"install bubblewrap (apt-get install bubblewrap)")
    for item in needing:
        item.add_marker(mark)
