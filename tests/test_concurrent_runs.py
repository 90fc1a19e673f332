"""max_concurrent_runs: run threads claim distinct runs through the store's leases; settings are checked."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings
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
