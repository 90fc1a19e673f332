"""SQLite store: schema, idempotent deliveries, run state, once(), leases that survive a kill -9."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from bot.store import Store


@pytest.fixture()
def store(tmp_path):
    return Store(tmp_path / "bot.db")


def test_schema_is_migrated_in_wal_mode(store, tmp_path):
    assert store.schema_version >= 1
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # reopening does not re-run migrations
    assert Store(tmp_path / "bot.db").schema_version == store.schema_version


def test_redelivery_is_detected_and_delivery_and_command_are_one_transaction(store):
    command = {"kind": "start", "repo": "o/r", "issue_number": 1, "user": "alice", "args": {}}
    assert store.accept_delivery("d-1", "issues", "labeled", "accepted", "command start", command)[0] is True
    assert store.accept_delivery("d-1", "issues", "labeled", "accepted", "command start", command) == (
        False,
        None,
    )
    assert store.delivery("d-1")["status"] == "accepted"
    assert len(store.pending_commands()) == 1
    # a failing command insert leaves no delivery behind either, so GitHub's redelivery is processed
    with pytest.raises(sqlite3.IntegrityError):
        store.accept_delivery("d-2", "issues", "labeled", "accepted", "x", {**command, "user": None})
    assert store.delivery("d-2") is None


def test_run_lifecycle_attempts_and_events(store):
    run = store.create_run("o/r", 3, "issue", "alice")
    assert run.state == "queued" and run.attempt == 1 and run.active
    store.set_state(run.id, "researching", stage="researching")
    assert store.active_run("o/r", 3).id == run.id
    store.set_state(run.id, "done")
    assert store.active_run("o/r", 3) is None
    second = store.create_run("o/r", 3, "issue", "alice")
    assert second.attempt == 2
    assert [e["message"] for e in store.events(run.id, "state")] == ["queued", "researching", "done"]
    with pytest.raises(ValueError):
        store.set_state(run.id, "flying")


def test_once_runs_side_effect_a_single_time(store):
    run = store.create_run("o/r", 1, "issue", "bob")
    calls = []
    assert store.once(run.id, "pr", lambda: calls.append(1) or {"number": 7}) == {"number": 7}
    assert store.once(run.id, "pr", lambda: calls.append(1) or {"number": 8}) == {"number": 7}
    assert calls == [1]


def test_artifacts_roundtrip(store):
    run = store.create_run("o/r", 1, "issue", "bob")
    store.put_artifact(run.id, "dossier", {"hypotheses": [1, 2]})
    store.put_artifact(run.id, "dossier", {"hypotheses": [3]})
    assert store.get_artifact(run.id, "dossier") == {"hypotheses": [3]}
    assert store.artifact_keys(run.id) == ["dossier"]


def test_lease_of_a_killed_process_is_taken_over(tmp_path):
    db = tmp_path / "bot.db"
    store = Store(db)
    run = store.create_run("o/r", 1, "issue", "bob")
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import sys, time
        from bot.store import Store, default_owner
        s = Store({str(db)!r})
        assert s.claim_run(default_owner(), lease_seconds=3600) is not None
        print("claimed", flush=True)
        time.sleep(60)
    """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "claimed"
    assert store.claim_run("me:1") is None  # leased by a live process
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert store.reclaim_dead_leases() == 1
    claimed = store.claim_run("me:1")
    assert claimed is not None and claimed.id == run.id and claimed.lease_owner == "me:1"


def test_commands_queue_and_retry(store):
    cid = store.enqueue_command("start", "o/r", 1, "alice", {"comment_id": None}, "d-9")
    assert [c["id"] for c in store.pending_commands()] == [cid]
    assert store.retry_command(cid, "boom", max_attempts=2) is True
    assert store.retry_command(cid, "boom", max_attempts=2) is False
    assert store.pending_commands() == []
    assert store.commands()[0]["state"] == "failed"


def test_a_deferred_run_and_command_wait_for_the_clock_and_survive_reopening(tmp_path):
    """A rate limit's deferral is stored: not claimed (run) or listed (command) before the time, on any
    Store on the same file; a cancel is still picked up; resuming clears it and says so."""
    now = [1000.0]
    store = Store(tmp_path / "bot.db", clock=lambda: now[0])
    assert store.schema_version == 3
    run = store.create_run("o/r", 1, "bench", "alice")
    store.defer_run(run.id, 2800.0, "GitHub rate limit (403: API rate limit exceeded)")
    cmd = store.enqueue_command("status", "o/r", 2, "alice")
    store.defer_command(cmd, 2800.0, "GitHub rate limit")
    reopened = Store(tmp_path / "bot.db", clock=lambda: now[0])
    for s in (store, reopened):
        assert s.claim_run("w1") is None
        assert s.pending_commands() == [] and len(s.pending_commands(due_only=False)) == 1
    held = reopened.get_run(run.id)
    assert held.deferred_until == 2800.0 and "rate limit" in held.deferred_reason
    assert reopened.commands()[0]["attempts"] == 0
    assert reopened.commands()[0]["detail"].startswith("deferred until 1970-01-01 00:46:40 UTC")
    now[0] = 2800.0
    claimed = reopened.claim_run("w1")
    assert claimed is not None and claimed.id == run.id
    assert [c["id"] for c in reopened.pending_commands()] == [cmd]
    assert reopened.resume_run(run.id) and not reopened.resume_run(run.id)
    assert reopened.get_run(run.id).deferred_until is None
    messages = [e["message"] for e in reopened.events(run.id, "deferred")]
    assert messages == [
        "deferred until 1970-01-01 00:46:40 UTC: GitHub rate limit (403: API rate limit exceeded)",
        "resumed after the rate limit's reset",
    ]
    # a stop is not kept waiting by a deferral
    reopened.release_run(run.id, "w1")
    reopened.defer_run(run.id, 9999.0, "again")
    assert reopened.claim_run("w2") is None
    reopened.request_cancel(run.id)
    assert reopened.claim_run("w2").id == run.id
