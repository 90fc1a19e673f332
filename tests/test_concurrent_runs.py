"""max_concurrent_runs: run threads claim distinct runs through the store's leases; settings are checked."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from concurrent_bench import run_bench
from sky_double import PRICE, Attempt

from bot.config import ConfigError, Settings
from bot.stages import batch_deadline
from bot.store import Store


def test_max_concurrent_runs_setting_defaults_parses_and_is_checked(tmp_path: Path) -> None:
    assert Settings().max_concurrent_runs == 1
    assert Settings.load(env={"AUTORESEARCH_MAX_CONCURRENT_RUNS": "10"}).max_concurrent_runs == 10
    for bad in ("0", "-2", "many", "2.5"):
        with pytest.raises(ConfigError) as err:
            Settings.load(env={"AUTORESEARCH_MAX_CONCURRENT_RUNS": bad})
        assert err.value.args[0] == "max_concurrent_runs" or "max_concurrent_runs" in str(err.value)
    with pytest.raises(ConfigError, match="experiment_deadline_minutes"):
        Settings.load(env={"AUTORESEARCH_EXPERIMENT_DEADLINE_MINUTES": "0"})


def test_run_threads_have_distinct_lease_owners(tmp_path: Path) -> None:
    from bot.worker import Worker

    class NoPipeline:
        forge = None

    store = Store(tmp_path / "bot.db")
    one = Worker(Settings(), store, NoPipeline(), owner="h:1")
    ten = Worker(Settings(max_concurrent_runs=10), store, NoPipeline(), owner="h:1")
    assert one.run_owners() == ["h:1"]
    assert len(set(ten.run_owners())) == 10 and all(o.startswith("h:1/") for o in ten.run_owners())


def test_concurrent_claims_hand_each_run_to_exactly_one_owner(tmp_path: Path) -> None:
    """16 threads on 4 connections (as 4 processes would have) race for 12 runs: each run is claimed once."""
    db = tmp_path / "bot.db"
    store = Store(db)
    ids = [store.create_run("o/r", n, "issue", "bob").id for n in range(12)]
    stores = [Store(db) for _ in range(4)]
    start = threading.Barrier(16)
    claimed: dict[str, list[int]] = {}

    def claim(i: int) -> None:
        owner = f"host:{1000 + i // 4}/{i % 4}"
        start.wait()
        got = []
        while (run := stores[i % 4].claim_run(owner, lease_seconds=3600)) is not None and run.id not in got:
            got.append(run.id)
        claimed[owner] = got

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    every = [rid for got in claimed.values() for rid in got]
    assert sorted(every) == ids  # each run exactly once, none left unclaimed
    leases = {r.id: r.lease_owner for r in store.list_runs()}
    assert all(leases[rid] == owner for owner, got in claimed.items() for rid in got)


def test_a_dead_run_threads_lease_is_reclaimed(tmp_path: Path) -> None:
    store = Store(tmp_path / "bot.db")
    run = store.create_run("o/r", 1, "issue", "bob")
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead = int(child.stdout)
    assert store.claim_run(f"{socket.gethostname()}:{dead}/3", lease_seconds=3600) is not None
    assert store.claim_run("me:1") is None
    assert store.reclaim_dead_leases() == 1
    assert store.claim_run("me:1").id == run.id


# ------------------------------------------------------------------------- runs through the worker (fast)


def test_ten_runs_overlap_with_ten_threads_and_never_with_one(tmp_path: Path) -> None:
    """The fast version of scripts/concurrent_runs.py: 10 bench runs through the worker, the pipeline, the
    benchmark stage and SkyPilotExecutor against the SDK double; counts and states, not timings."""
    serial = run_bench(tmp_path / "one", [0.05 + 0.01 * i for i in range(10)], 1)
    # each job runs until all ten run at once (the double's latch; 60 s at most): deterministic overlap
    parallel = run_bench(tmp_path / "ten", [60.0] * 10, 10, gate=10)
    for out in (serial, parallel):
        assert set(out.states.values()) == {"done"}
        assert out.problems == []
        assert all(len(c) == 1 for c in out.clusters.values())  # one launch per run, none retried
        assert len({c for cs in out.clusters.values() for c in cs}) == 10
        assert out.fake.alive == set()  # every cluster downed when its run ended
    assert serial.peak == 1  # one run thread: never two runs on VMs at once
    assert parallel.peak == 10  # ten run threads: every run on its VM at the same time


def test_the_deadline_follows_the_budget_when_it_buys_less_than_the_cap() -> None:
    assert batch_deadline(360, 100.0, 0.5) == (360 * 60.0, "experiment_deadline_minutes")
    seconds, source = batch_deadline(360, 0.25, 0.5)  # $0.25 at $0.50/h: 30 min
    assert seconds == 1800.0 and source == "what the remaining $0.25 buys at $0.5/h"
    assert batch_deadline(10, 0.0, 0.0) == (600.0, "experiment_deadline_minutes")  # free machines
    assert batch_deadline(10, -1.0, 2.0)[0] == 0.0  # over budget: no time at all


def test_the_stored_deadline_of_a_batch_is_what_the_budget_buys(tmp_path: Path) -> None:
    out = run_bench(tmp_path / "b", [0.05], 1, budget_usd=0.5)
    run_id = next(iter(out.states))
    deadline = out.store.get_artifact(run_id, "deadline:main")
    assert deadline["seconds"] == pytest.approx(0.5 / PRICE * 3600)
    assert deadline["source"] == f"what the remaining $0.50 buys at ${PRICE:g}/h"
    assert out.states[run_id] == "done"


def test_deadline_cancels_a_hung_setup_downs_the_cluster_and_records_why(tmp_path: Path) -> None:
    """The launch request never returns (setup hangs): at the deadline the stage cancels the batch, which
    cancels the request (sky.api_cancel) and downs the cluster; the run fails with the reason."""
    out = run_bench(
        tmp_path / "hung", [0.0], 1, attempts=[Attempt("slow_launch")], experiment_deadline_minutes=0.005
    )
    run_id = next(iter(out.states))
    store, fake = out.store, out.fake
    (name,) = out.clusters[run_id]
    exp = store.experiment(run_id, "main")
    assert out.states[run_id] == "failed" and exp["state"] == "deadline"
    assert [c[0] for c in fake.calls].count("api_cancel") == 1
    assert name in fake.downed and fake.alive == set()
    assert sum(c[0] == "launch" for c in fake.calls) == 1  # no second attempt after the cancel
    events = store.events(run_id, "deadline")
    assert len(events) == 1
    assert events[0]["message"].startswith("deadline of 0.005 min passed in benchmarking (experiment main;")
    failure = store.get_artifact(run_id, "failure")
    assert "deadline of 0.005 min passed in benchmarking" in failure["message"]
    assert store.get_run(run_id).error == failure["message"]


def test_agent_commands_wait_for_a_local_benchmark_and_overlap_each_other(
    tmp_path: Path, monkeypatch
) -> None:
    """With `executor: local` a benchmark holds the machine-wide lock exclusively; the agent's build/check
    commands of another run take it shared: they start only after the benchmark, and share it among
    themselves."""
    from bot.agent.tools import run_command
    from bot.experiments.executors import _machine_lock, host_work

    monkeypatch.setenv("AUTORESEARCH_BENCH_LOCK", str(tmp_path / "bench.lock"))
    log = tmp_path / "log"
    with host_work():  # another agent command holds it shared: this one still runs at once
        assert run_command(f"echo shared >> {log}", tmp_path, 30, isolate=False)[0] == 0
    done = threading.Event()
    with _machine_lock(tmp_path / "bench.lock"):  # a local benchmark
        t = threading.Thread(
            target=lambda: (run_command(f"echo agent >> {log}", tmp_path, 30, isolate=False), done.set())
        )
        t.start()
        assert not done.wait(0.5)  # still waiting (it would have written within 0.5 s otherwise)
        with open(log, "a") as f:
            f.write("benchmark finished\n")
    t.join(30)
    assert log.read_text().splitlines() == ["shared", "benchmark finished", "agent"]
