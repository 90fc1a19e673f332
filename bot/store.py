"""SQLite store (WAL): deliveries, runs and their events, artifacts, recorded side effects, experiments,
usage.

Every write is its own transaction, so a kill -9 of any process loses at most the step that was in flight;
the worker records a step before and after it runs and side effects are recorded with `once()`.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .model import ACTIVE_PHASES as ACTIVE_STATES
from .model import FINAL_PHASES as FINAL_STATES
from .model import Phase

STATES = ACTIVE_STATES + FINAL_STATES

MIGRATIONS: list[str] = [
    # 1: initial schema
    """
    CREATE TABLE deliveries (
        id TEXT PRIMARY KEY,
        event TEXT NOT NULL,
        action TEXT,
        received_at REAL NOT NULL,
        status TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        run_id INTEGER
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        repo TEXT NOT NULL,
        issue_number INTEGER NOT NULL,
        kind TEXT NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 1,
        state TEXT NOT NULL,
        stage TEXT,
        trigger_user TEXT NOT NULL,
        params TEXT NOT NULL DEFAULT '{}',
        error TEXT,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_until REAL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX runs_issue ON runs(repo, issue_number);
    CREATE INDEX runs_state ON runs(state);
    CREATE TABLE run_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        ts REAL NOT NULL,
        kind TEXT NOT NULL,
        message TEXT NOT NULL,
        data TEXT
    );
    CREATE INDEX run_events_run ON run_events(run_id);
    CREATE TABLE artifacts (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (run_id, key)
    );
    CREATE TABLE side_effects (
        run_id INTEGER NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (run_id, key)
    );
    CREATE TABLE experiments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        name TEXT NOT NULL,
        executor TEXT NOT NULL,
        handle TEXT,
        state TEXT NOT NULL,
        submitted_at REAL,
        finished_at REAL,
        vm_seconds REAL NOT NULL DEFAULT 0,
        cost_usd REAL NOT NULL DEFAULT 0,
        UNIQUE (run_id, name)
    );
    CREATE TABLE usage (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER,
        ts REAL NOT NULL,
        kind TEXT NOT NULL,
        tokens_in INTEGER NOT NULL DEFAULT 0,
        tokens_out INTEGER NOT NULL DEFAULT 0,
        usd REAL NOT NULL DEFAULT 0,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE commands (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        delivery_id TEXT,
        kind TEXT NOT NULL,
        repo TEXT NOT NULL,
        issue_number INTEGER NOT NULL,
        user TEXT NOT NULL,
        args TEXT NOT NULL DEFAULT '{}',
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        detail TEXT NOT NULL DEFAULT '',
        run_id INTEGER,
        created_at REAL NOT NULL,
        done_at REAL
    );
    CREATE INDEX commands_state ON commands(state);
    CREATE TABLE installations (
        id INTEGER PRIMARY KEY,
        account TEXT,
        action TEXT NOT NULL,
        repositories TEXT NOT NULL DEFAULT '[]',
        updated_at REAL NOT NULL
    );
    """,
    # 2: a command is identified by what it is (comment id + action), not by the delivery that carried it;
    #    notices posted at most once (a refusal per person per issue)
    """
    ALTER TABLE commands ADD COLUMN command_key TEXT;
    CREATE UNIQUE INDEX commands_key ON commands(command_key);
    CREATE TABLE notices (
        key TEXT PRIMARY KEY,
        created_at REAL NOT NULL
    );
    """,
    # 3: a GitHub rate limit defers a run or a command until the reset instead of failing it: the run (or
    #    command) is not claimed before `deferred_until` / `not_before`; it survives restarts like any state
    """
    ALTER TABLE runs ADD COLUMN deferred_until REAL;
    ALTER TABLE runs ADD COLUMN deferred_reason TEXT;
    ALTER TABLE commands ADD COLUMN not_before REAL;
    """,
]


@dataclass(frozen=True)
class Run:
    id: int
    repo: str
    issue_number: int
    kind: str
    attempt: int
    state: Phase
    stage: str | None
    trigger_user: str
    params: dict[str, Any]
    error: str | None
    cancel_requested: bool
    lease_owner: str | None
    lease_until: float | None
    created_at: float
    updated_at: float
    deferred_until: float | None = None  # a GitHub rate limit: not resumed before this epoch second
    deferred_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Run:
        d = dict(row)
        d["params"] = json.loads(d["params"] or "{}")
        d["cancel_requested"] = bool(d["cancel_requested"])
        d["state"] = Phase(d["state"])
        return cls(**d)


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Store:
    def __init__(self, path: str | os.PathLike, clock: Callable[[], float] | None = None):
        """`clock`: the epoch-seconds clock deferrals are compared with (time.time; tests inject one to
        pass a 30-minute rate limit without waiting for it)."""
        self.path = Path(path)
        self.clock: Callable[[], float] = clock or time.time
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self.migrate()

    # connections ------------------------------------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _tx(self) -> _Tx:
        return _Tx(self.conn)

    def migrate(self) -> int:
        with self._tx() as c:
            c.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = c.execute("SELECT version FROM schema_version").fetchone()
            version = row[0] if row else 0
            if row is None:
                c.execute("INSERT INTO schema_version VALUES (0)")
            for i, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in _split_sql(script):
                    c.execute(statement)
                c.execute("UPDATE schema_version SET version = ?", (i,))
            return len(MIGRATIONS)

    @property
    def schema_version(self) -> int:
        return self.conn.execute("SELECT version FROM schema_version").fetchone()[0]

    # deliveries -------------------------------------------------------------------------------------------
    def accept_delivery(
        self,
        delivery_id: str,
        event: str,
        action: str | None,
        status: str,
        detail: str,
        command: dict[str, Any] | None = None,
    ) -> tuple[bool, int | None]:
        """Record a delivery and (optionally) its command in ONE transaction: a process killed mid-way leaves
        neither, so GitHub's redelivery is processed normally. Returns (new, command id); new=False:
        duplicate.

        A command whose `key` (comment id + action) is already recorded is a replay under a fresh delivery id:
        the delivery is recorded as "replay" and no second command is created (returns (True, None))."""
        now = time.time()
        with self._tx() as c:
            if c.execute("SELECT 1 FROM deliveries WHERE id = ?", (delivery_id,)).fetchone():
                return False, None
            command_id = None
            key = (command or {}).get("key")
            earlier = key and c.execute("SELECT id FROM commands WHERE command_key = ?", (key,)).fetchone()
            if earlier:
                status, detail, command = "replay", f"{key} already recorded as command #{earlier[0]}", None
            if command is not None:
                command_id = c.execute(
                    "INSERT INTO commands (delivery_id, kind, repo, issue_number, user, args, created_at,"
                    " command_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        delivery_id,
                        command["kind"],
                        command["repo"],
                        command["issue_number"],
                        command["user"],
                        json.dumps(command.get("args") or {}),
                        now,
                        key,
                    ),
                ).lastrowid
                detail = f"{detail} #{command_id}"
            c.execute(
                "INSERT INTO deliveries (id, event, action, received_at, status, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (delivery_id, event, action, now, status, detail[:2000]),
            )
            return True, command_id

    def delivery(self, delivery_id: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
        return dict(row) if row else None

    def deliveries(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM deliveries ORDER BY received_at DESC LIMIT ?", (limit,))
        return [dict(r) for r in rows]

    # runs -------------------------------------------------------------------------------------------------
    def create_run(
        self,
        repo: str,
        issue_number: int,
        kind: str,
        trigger_user: str,
        params: dict[str, Any] | None = None,
        *,
        lease_owner: str | None = None,
        lease_seconds: float = 60.0,
    ) -> Run:
        """A queued run; with `lease_owner` it is born leased, so nobody else starts it before it is
        announced."""
        now = time.time()
        with self._tx() as c:
            row = c.execute(
                "SELECT COALESCE(MAX(attempt), 0) FROM runs WHERE repo = ? AND issue_number = ?",
                (repo, issue_number),
            ).fetchone()
            attempt = row[0] + 1
            cur = c.execute(
                "INSERT INTO runs (repo, issue_number, kind, attempt, state, trigger_user, params,"
                " created_at, updated_at, lease_owner, lease_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    repo,
                    issue_number,
                    kind,
                    attempt,
                    Phase.QUEUED,
                    trigger_user,
                    json.dumps(params or {}),
                    now,
                    now,
                    lease_owner,
                    now + lease_seconds if lease_owner else None,
                ),
            )
            run_id = cur.lastrowid
            c.execute(
                "INSERT INTO run_events (run_id, ts, kind, message) VALUES (?, ?, 'state', ?)",
                (run_id, now, Phase.QUEUED),
            )
        return self.get_run(run_id)

    def get_run(self, run_id: int) -> Run:
        row = self.conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(f"run {run_id} does not exist")
        return Run.from_row(row)

    def runs_for_issue(self, repo: str, issue_number: int) -> list[Run]:
        rows = self.conn.execute(
            "SELECT * FROM runs WHERE repo = ? AND issue_number = ? ORDER BY id", (repo, issue_number)
        )
        return [Run.from_row(r) for r in rows]

    def active_run(self, repo: str, issue_number: int) -> Run | None:
        for run in reversed(self.runs_for_issue(repo, issue_number)):
            if run.active:
                return run
        return None

    def list_runs(self, limit: int = 100, states: tuple[str, ...] | None = None) -> list[Run]:
        if states:
            marks = ",".join("?" * len(states))
            rows = self.conn.execute(
                f"SELECT * FROM runs WHERE state IN ({marks}) ORDER BY id DESC LIMIT ?", (*states, limit)
            )
        else:
            rows = self.conn.execute("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,))
        return [Run.from_row(r) for r in rows]

    def set_state(
        self, run_id: int, state: Phase, *, stage: str | None = None, error: str | None = None
    ) -> None:
        if state not in STATES:
            raise ValueError(f"unknown run state {state!r}")
        now = time.time()
        with self._tx() as c:
            c.execute(
                "UPDATE runs SET state = ?, stage = COALESCE(?, stage), error = COALESCE(?, error),"
                " updated_at = ? WHERE id = ?",
                (state, stage, error, now, run_id),
            )
            c.execute(
                "INSERT INTO run_events (run_id, ts, kind, message) VALUES (?, ?, 'state', ?)",
                (run_id, now, state if not error else f"{state}: {error[:500]}"),
            )

    def defer_run(self, run_id: int, until: float, reason: str) -> None:
        """Park an active run until `until` (a GitHub rate limit's reset): no worker claims it before."""
        now = time.time()
        with self._tx() as c:
            c.execute(
                "UPDATE runs SET deferred_until = ?, deferred_reason = ?, updated_at = ? WHERE id = ?",
                (until, reason[:500], now, run_id),
            )
            c.execute(
                "INSERT INTO run_events (run_id, ts, kind, message) VALUES (?, ?, 'deferred', ?)",
                (run_id, now, f"deferred until {iso_utc(until)}: {reason[:400]}"),
            )

    def resume_run(self, run_id: int) -> bool:
        """Clear a run's deferral (it is being driven again); True when it was deferred."""
        now = time.time()
        with self._tx() as c:
            cur = c.execute(
                "UPDATE runs SET deferred_until = NULL, deferred_reason = NULL, updated_at = ?"
                " WHERE id = ? AND deferred_until IS NOT NULL",
                (now, run_id),
            )
            if cur.rowcount != 1:
                return False
            c.execute(
                "INSERT INTO run_events (run_id, ts, kind, message) VALUES (?, ?, 'deferred', ?)",
                (run_id, now, "resumed after the rate limit's reset"),
            )
            return True

    def request_cancel(self, run_id: int) -> None:
        self.conn.execute(
            "UPDATE runs SET cancel_requested = 1, updated_at = ? WHERE id = ?", (time.time(), run_id)
        )

    def cancel_requested(self, run_id: int) -> bool:
        row = self.conn.execute("SELECT cancel_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        return bool(row and row[0])

    # leases: one worker drives a run at a time; a dead worker's lease is taken over ------------------------
    def claim_run(self, owner: str, lease_seconds: float = 60.0, run_id: int | None = None) -> Run | None:
        now = time.time()
        marks = ",".join("?" * len(ACTIVE_STATES))
        with self._tx() as c:
            query = (
                f"SELECT * FROM runs WHERE state IN ({marks}) AND (lease_owner IS NULL OR lease_until < ?"
                " OR lease_owner = ?)"
                # a deferred run waits for its reset, unless it is to be cancelled (that needs no GitHub)
                " AND (deferred_until IS NULL OR deferred_until <= ? OR cancel_requested = 1)"
            )
            args: list[Any] = [*ACTIVE_STATES, now, owner, self.clock()]
            if run_id is not None:
                query += " AND id = ?"
                args.append(run_id)
            rows = c.execute(query + " ORDER BY id", args).fetchall()
            for row in rows:
                if row["lease_owner"] and row["lease_owner"] != owner and row["lease_until"] >= now:
                    continue
                c.execute(
                    "UPDATE runs SET lease_owner = ?, lease_until = ? WHERE id = ?",
                    (owner, now + lease_seconds, row["id"]),
                )
                return self.get_run(row["id"])
        return None

    def reclaim_dead_leases(self) -> int:
        """Free leases held by processes of this host that no longer exist (fast resume after kill -9)."""
        host = socket.gethostname()
        freed = 0
        for row in self.conn.execute(
            "SELECT id, lease_owner FROM runs WHERE lease_owner IS NOT NULL"
        ).fetchall():
            owner_host, _, pid = (row["lease_owner"] or "").rpartition(":")
            pid = pid.split("/", 1)[0]  # a run thread's owner is `host:pid/<thread>`
            if owner_host == host and pid.isdigit() and not _pid_alive(int(pid)):
                self.conn.execute(
                    "UPDATE runs SET lease_owner = NULL, lease_until = NULL WHERE id = ?", (row["id"],)
                )
                freed += 1
        return freed

    def renew_lease(self, run_id: int, owner: str, lease_seconds: float = 60.0) -> bool:
        cur = self.conn.execute(
            "UPDATE runs SET lease_until = ? WHERE id = ? AND lease_owner = ?",
            (time.time() + lease_seconds, run_id, owner),
        )
        return cur.rowcount == 1

    def release_run(self, run_id: int, owner: str) -> None:
        self.conn.execute(
            "UPDATE runs SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
            (run_id, owner),
        )

    # events -----------------------------------------------------------------------------------------------
    def add_event(self, run_id: int, kind: str, message: str, data: Any = None) -> None:
        self.conn.execute(
            "INSERT INTO run_events (run_id, ts, kind, message, data) VALUES (?, ?, ?, ?, ?)",
            (run_id, time.time(), kind, message, None if data is None else json.dumps(data)),
        )

    def events(self, run_id: int, kind: str | None = None) -> list[dict[str, Any]]:
        if kind:
            rows = self.conn.execute(
                "SELECT * FROM run_events WHERE run_id = ? AND kind = ? ORDER BY id", (run_id, kind)
            )
        else:
            rows = self.conn.execute("SELECT * FROM run_events WHERE run_id = ? ORDER BY id", (run_id,))
        out = []
        for r in rows:
            d = dict(r)
            d["data"] = json.loads(d["data"]) if d["data"] else None
            out.append(d)
        return out

    # artifacts and side effects ---------------------------------------------------------------------------
    def put_artifact(self, run_id: int, key: str, value: Any) -> None:
        self.conn.execute(
            "INSERT INTO artifacts (run_id, key, value, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(run_id, key) DO UPDATE SET value = excluded.value,"
            " updated_at = excluded.updated_at",
            (run_id, key, json.dumps(value), time.time()),
        )

    def get_artifact(self, run_id: int, key: str, default: Any = None) -> Any:
        row = self.conn.execute(
            "SELECT value FROM artifacts WHERE run_id = ? AND key = ?", (run_id, key)
        ).fetchone()
        return json.loads(row[0]) if row else default

    def artifact_keys(self, run_id: int) -> list[str]:
        return [
            r[0]
            for r in self.conn.execute("SELECT key FROM artifacts WHERE run_id = ? ORDER BY key", (run_id,))
        ]

    def get_side_effect(self, run_id: int, key: str) -> Any:
        row = self.conn.execute(
            "SELECT value FROM side_effects WHERE run_id = ? AND key = ?", (run_id, key)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def side_effects(self, run_id: int, prefix: str = "") -> dict[str, Any]:
        """The recorded side effects of a run whose key starts with `prefix`, by key."""
        rows = self.conn.execute(
            "SELECT key, value FROM side_effects WHERE run_id = ? AND substr(key, 1, ?) = ? ORDER BY key",
            (run_id, len(prefix), prefix),
        )
        return {r[0]: json.loads(r[1]) for r in rows}

    def put_side_effect(self, run_id: int, key: str, value: Any) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO side_effects (run_id, key, value, created_at) VALUES (?, ?, ?, ?)",
            (run_id, key, json.dumps(value), time.time()),
        )

    def once(self, run_id: int, key: str, fn: Callable[[], Any]) -> Any:
        """Run `fn` unless a result for (run, key) is recorded; record and return its result.

        `fn` must itself be safe to repeat if the process dies between doing it and recording it (look the
        effect up first: comment by marker, branch by name, PR by head); `once` saves the look-up afterwards.
        """
        row = self.conn.execute(
            "SELECT value FROM side_effects WHERE run_id = ? AND key = ?", (run_id, key)
        ).fetchone()
        if row is not None:
            return json.loads(row[0])
        value = fn()
        self.put_side_effect(run_id, key, value)
        return value

    # experiments ------------------------------------------------------------------------------------------
    def upsert_experiment(
        self, run_id: int, name: str, executor: str, *, handle: str | None = None, state: str = "pending"
    ) -> dict[str, Any]:
        self.conn.execute(
            "INSERT INTO experiments (run_id, name, executor, handle, state, submitted_at)"
            " VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(run_id, name) DO UPDATE SET handle = COALESCE(excluded.handle, handle),"
            " state = excluded.state",
            (run_id, name, executor, handle, state, time.time() if handle else None),
        )
        return self.experiment(run_id, name)

    def experiment(self, run_id: int, name: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT * FROM experiments WHERE run_id = ? AND name = ?", (run_id, name)
        ).fetchone()
        return dict(row) if row else None

    def experiments(self, run_id: int) -> list[dict[str, Any]]:
        return [
            dict(r)
            for r in self.conn.execute("SELECT * FROM experiments WHERE run_id = ? ORDER BY id", (run_id,))
        ]

    def finish_experiment(
        self, run_id: int, name: str, state: str, vm_seconds: float = 0.0, cost_usd: float = 0.0
    ) -> None:
        self.conn.execute(
            "UPDATE experiments SET state = ?, finished_at = ?, vm_seconds = ?, cost_usd = ?"
            " WHERE run_id = ? AND name = ?",
            (state, time.time(), vm_seconds, cost_usd, run_id, name),
        )

    # usage ------------------------------------------------------------------------------------------------
    def record_usage(
        self,
        run_id: int | None,
        kind: str,
        *,
        tokens_in: int = 0,
        tokens_out: int = 0,
        usd: float = 0.0,
        detail: str = "",
    ) -> None:
        self.conn.execute(
            "INSERT INTO usage (run_id, ts, kind, tokens_in, tokens_out, usd, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, time.time(), kind, tokens_in, tokens_out, usd, detail),
        )

    def usage_totals(self, run_id: int) -> dict[str, float]:
        row = self.conn.execute(
            "SELECT COALESCE(SUM(tokens_in),0), COALESCE(SUM(tokens_out),0), COALESCE(SUM(usd),0)"
            " FROM usage WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        by_kind = {
            r[0]: r[1]
            for r in self.conn.execute(
                "SELECT kind, SUM(usd) FROM usage WHERE run_id = ? GROUP BY kind", (run_id,)
            )
        }
        return {
            "tokens_in": row[0],
            "tokens_out": row[1],
            "usd": row[2],
            "llm_usd": by_kind.get("llm", 0.0),
            "vm_usd": by_kind.get("vm", 0.0),
        }

    # commands: what webhooks asked for, handled by the worker (permission check, then act) ---------------
    def enqueue_command(
        self,
        kind: str,
        repo: str,
        issue_number: int,
        user: str,
        args: dict[str, Any] | None = None,
        delivery_id: str | None = None,
    ) -> int:
        cur = self.conn.execute(
            "INSERT INTO commands (delivery_id, kind, repo, issue_number, user, args, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (delivery_id, kind, repo, issue_number, user, json.dumps(args or {}), time.time()),
        )
        return cur.lastrowid

    def pending_commands(self, limit: int = 50, due_only: bool = True) -> list[dict[str, Any]]:
        """Commands still to handle, oldest first; `due_only`: not those deferred past now."""
        if due_only:
            rows = self.conn.execute(
                "SELECT * FROM commands WHERE state = 'pending' AND (not_before IS NULL OR not_before <= ?)"
                " ORDER BY id LIMIT ?",
                (self.clock(), limit),
            )
        else:
            rows = self.conn.execute(
                "SELECT * FROM commands WHERE state = 'pending' ORDER BY id LIMIT ?", (limit,)
            )
        return [self._command(r) for r in rows]

    def defer_command(self, command_id: int, until: float, detail: str) -> None:
        """Keep a command pending until `until` (a rate limit's reset) without counting a failed attempt."""
        self.conn.execute(
            "UPDATE commands SET not_before = ?, detail = ? WHERE id = ?",
            (until, f"deferred until {iso_utc(until)}: {detail}"[:2000], command_id),
        )

    def commands(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM commands ORDER BY id DESC LIMIT ?", (limit,))
        return [self._command(r) for r in rows]

    def finish_command(
        self, command_id: int, state: str, detail: str = "", run_id: int | None = None
    ) -> None:
        self.conn.execute(
            "UPDATE commands SET state = ?, detail = ?, run_id = COALESCE(?, run_id), done_at = ?"
            " WHERE id = ?",
            (state, detail[:2000], run_id, time.time(), command_id),
        )

    def retry_command(self, command_id: int, detail: str, max_attempts: int = 5) -> bool:
        """Count a failed attempt; the command stays pending until max_attempts. True if it will be
        retried."""
        self.conn.execute(
            "UPDATE commands SET attempts = attempts + 1, detail = ? WHERE id = ?",
            (detail[:2000], command_id),
        )
        row = self.conn.execute("SELECT attempts FROM commands WHERE id = ?", (command_id,)).fetchone()
        if row[0] >= max_attempts:
            self.finish_command(command_id, "failed", f"gave up after {row[0]} attempts: {detail}")
            return False
        return True

    @staticmethod
    def _command(row: sqlite3.Row) -> dict[str, Any]:
        d = dict(row)
        d["args"] = json.loads(d["args"])
        return d

    # notices said at most once ----------------------------------------------------------------------------
    def first_notice(self, key: str) -> bool:
        """Mark `key` as said; True only the first time (e.g. one refusal per person per issue)."""
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO notices (key, created_at) VALUES (?, ?)", (key, time.time())
        )
        return cur.rowcount == 1

    def forget_notice(self, key: str) -> None:
        """Undo `first_notice` (the notice could not be posted; the next attempt should post it)."""
        self.conn.execute("DELETE FROM notices WHERE key = ?", (key,))

    # installations ----------------------------------------------------------------------------------------
    def record_installation(
        self, installation_id: int, account: str | None, action: str, repositories: list[str]
    ) -> None:
        self.conn.execute(
            "INSERT INTO installations (id, account, action, repositories, updated_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(id) DO UPDATE SET account = excluded.account, action = excluded.action,"
            " repositories = excluded.repositories, updated_at = excluded.updated_at",
            (installation_id, account, action, json.dumps(repositories), time.time()),
        )

    def installations(self) -> list[dict[str, Any]]:
        out = []
        for r in self.conn.execute("SELECT * FROM installations ORDER BY id"):
            d = dict(r)
            d["repositories"] = json.loads(d["repositories"])
            out.append(d)
        return out


class _Tx:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")


def iso_utc(ts: float) -> str:
    """An epoch second as `2026-12-07 23:15 UTC` (what deferral messages show)."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _split_sql(script: str) -> Iterator[str]:
    for statement in script.split(";"):
        if statement.strip():
            yield statement


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie still "exists"; treat it as dead
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
