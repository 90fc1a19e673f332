"""Hostile fork commits against the measurement, through the real local executor, driver and sandboxes
(tests/hostile.py has the attacks; scripts/attack_table.py prints the same run as a table).

One hostile batch holds the baseline, an A/A control and every attacker (they cannot interfere: each
invocation runs in its own sandbox); a clean batch (baseline + A/A) is queued behind it. For every attack: no
winner, the candidate either contained (its attack failed, measured as itself) or rejected with the limit it
hit, nothing it started is left running, the baseline's simulated cost identical to the clean batch's."""

from __future__ import annotations

import os
import shutil

import hostile
import pytest

from bot.experiments import jail, results

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("bwrap") or not shutil.which("valgrind"),
    reason="needs root (a uid per variant), bubblewrap and valgrind",
)


@pytest.fixture(scope="module", params=["local", "vm"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """local: the local executor's runner starts the driver; vm: the driver run as a SkyPilot VM runs it
    (bench.yaml's `run` in the task files, as root, no executor): the same sandboxes on both paths."""
    ok, why = jail.probe()
    if not ok:
        pytest.skip(why)
    work = tmp_path_factory.mktemp(f"hostile-{request.param}")
    return hostile.run_vm(work) if request.param == "vm" else hostile.run_batches(work)


def test_both_batches_finish_and_the_bot_reads_a_regular_result(run: dict) -> None:
    assert run["states"] == {h: "done" for h in run["handles"]}, run["executor"].logs(run["handles"][0])[
        -3000:
    ]
    assert run["result_file"].is_file() and not run["result_file"].is_symlink()
    r = results.load_result(run["hostile"])
    assert r["complete"] and not r.get("tampered") and r["errors"] == [], r["errors"]
    assert r["sandbox"]["enabled"] and r["sandbox"]["sealed"]["digest"]


@pytest.mark.parametrize("attack", hostile.ATTACKS)
def test_every_attack_is_contained_or_rejected_with_its_reason(run: dict, attack: str) -> None:
    rows = {row["attack"]: row for row in hostile.table(run)}
    row = rows[attack]
    status, words = hostile.EXPECTED[attack]
    assert row["status"] == status, row
    if words:
        assert words in row["reason"], row
    assert not row["succeeded"], row  # every write outside its cell, namespace or network attempt failed
    assert not row["winner"] and not row["outlived"], row
    if status == "ok":  # contained: it ran its attack (the report says so) and was measured as itself
        assert run["reports"][attack].strip(), f"{attack} never ran its payload"


def test_baseline_numbers_are_those_of_a_run_without_attackers(run: dict) -> None:
    h = run["hostile"]["variants"]
    c = run["clean"]["variants"]
    base_h, base_c = h["baseline"]["simulated"], c["baseline"]["simulated"]
    assert base_h["ok"] and base_c["ok"], (base_h, base_c)
    delta = abs(base_h["estimated_cycles"] - base_c["estimated_cycles"]) / base_c["estimated_cycles"]
    assert delta < 1e-4, delta
    aa = h["aa"]["simulated"]["estimated_cycles"]
    assert abs(aa - base_h["estimated_cycles"]) / base_h["estimated_cycles"] < 1e-4
    assert h["baseline"]["status"] == "ok" and len(h["baseline"]["samples"]["softmax_ns"]) >= 2


def test_nothing_outlives_its_invocation(run: dict) -> None:
    n = len(run["attacks"]) + 2
    assert hostile.leftover_processes(hostile.UID_FIRST, n) == []
    assert not any(run["outlived"].values()), run["outlived"]


def test_no_winner_in_the_hostile_batch(run: dict) -> None:
    from bot.experiments.stats import policy

    assert policy.decide({"x86": run["hostile"]}, hostile.project()).winners == []
