"""Background worker: turns queued commands into runs (after the permission check) and drives runs forward.

Runs are leased (owner = host:pid, renewed while a stage works), so after a kill -9 a restarted worker takes
the run over and resumes it at the recorded stage. Stages are idempotent over the store (see bot/pipeline.py).
With `max_concurrent_runs` N the worker has N run threads; each claims runs under its own lease owner
(`host:pid/<i>`), so the store's atomic claim hands every run to one thread at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from . import commands
from .commands import CommandResult
from .config import Settings
from .forge import NotFound, RateLimited
from .store import Run, Store, default_owner, iso_utc

log = logging.getLogger("autoresearch.worker")

ACK_REACTION = "eyes"
REFUSE_REACTION = "confused"


class Worker:
    """A commands thread and `max_concurrent_runs` run threads; each run thread claims one run at a time."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        pipeline: Any,
        *,
        owner: str | None = None,
        lease_seconds: float = 60.0,
    ):
        self.settings = settings
        self.store = store
        self.pipeline = pipeline
        self.forge = pipeline.forge
        self.owner = owner or default_owner()
        self.lease_seconds = lease_seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # loop -------------------------------------------------------------------------------------------------
    def run_owners(self) -> list[str]:
        """The lease owner of each run thread: the worker's own with one thread, `<owner>/<i>` with more
        (a thread re-claims its own leases, so two threads must never share an owner)."""
        n = int(self.settings.max_concurrent_runs)
        return [self.owner] if n <= 1 else [f"{self.owner}/{i}" for i in range(n)]

    def start(self) -> Worker:
        """Commands (fast: acknowledgements, stop) never wait behind a long-running run; each run thread
        drives its own runs."""
        self.store.reclaim_dead_leases()
        self._threads = [
            threading.Thread(
                target=self._loop, args=(self.tick_commands,), daemon=True, name="autoresearch-commands"
            )
        ]
        for i, owner in enumerate(self.run_owners()):
            self._threads.append(
                threading.Thread(
                    target=self._loop,
                    args=(lambda owner=owner: self.tick_runs(owner),),
                    daemon=True,
                    name=f"autoresearch-runs-{i}",
                )
            )
        for t in self._threads:
            t.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for t in getattr(self, "_threads", []):
            t.join(timeout)

    def run_forever(self) -> None:
        self.start()
        try:
            while not self._stop.is_set():
                self._stop.wait(1.0)
        finally:
            self.stop()

    def _loop(self, step: Callable[[], bool]) -> None:
        while not self._stop.is_set():
            try:
                busy = step()
            except Exception:  # keep serving; the failure is logged and the next tick tries again
                log.exception("worker step failed")
                busy = False
            if not busy:
                self._stop.wait(self.settings.worker_poll_seconds)

    def tick(self) -> bool:
        """One pass over commands and runs; True if anything was done."""
        did_commands = self.tick_commands()
        return self.tick_runs() or did_commands

    def tick_commands(self) -> bool:
        did = False
        for cmd in self.store.pending_commands():
            if self.handle_command(cmd).state != "pending":
                did = True
        return did

    def tick_runs(self, owner: str | None = None) -> bool:
        owner = owner or self.owner
        run = self.store.claim_run(owner, self.lease_seconds)
        if run is None:
            return False
        try:
            self.pipeline.advance(run, owner=owner, stop=self._stop.is_set)
        finally:
            self.store.release_run(run.id, owner)
        return True

    def drain(self, timeout: float = 600.0, until: Callable[[], bool] | None = None) -> None:
        """Run ticks until nothing is left to do (tests, the demo's foreground mode)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if until is not None and until():
                return
            if not self.tick() and until is None:
                return
            if until is not None:
                time.sleep(0.05)
        raise TimeoutError("worker did not finish in time")

    # commands ---------------------------------------------------------------------------------------------
    def handle_command(self, cmd: dict[str, Any]) -> CommandResult:
        try:
            result = self._handle(cmd)
        except RateLimited as exc:  # kept, not dropped: handled again after the reset, no attempt counted
            until = exc.until(self.store.clock())
            detail = f"GitHub rate limit ({exc.status}: {exc.message})"
            log.warning("command %s deferred until %s: %s", cmd["id"], iso_utc(until), detail)
            self.store.defer_command(cmd["id"], until, detail)
            return CommandResult("pending", detail)
        except Exception as exc:  # a broken command must never stop the worker; transient ones are retried
            log.warning("command %s failed: %s", cmd["id"], exc)
            detail = f"{type(exc).__name__}: {exc}"
            if self.store.retry_command(cmd["id"], detail):
                return CommandResult("pending", detail)
            return CommandResult("failed", detail)
        self.store.finish_command(cmd["id"], result.state, result.detail, result.run_id)
        return result

    def _handle(self, cmd: dict[str, Any]) -> CommandResult:
        kind, repo, number, user, args = (
            cmd["kind"],
            cmd["repo"],
            cmd["issue_number"],
            cmd["user"],
            cmd["args"],
        )
        if kind == "installation":
            self.store.record_installation(
                int(args["installation_id"]),
                args.get("account"),
                args.get("action", ""),
                [r for r in args.get("repositories", []) if r],
            )
            return CommandResult("done", f"installation {args.get('action')}")
        comment_id = args.get("comment_id")
        mismatch = self._installation_mismatch(repo, args.get("installation"))
        if mismatch:  # a signed event naming a repository of another installation: act nowhere, say nothing
            log.warning("command %s refused: %s", cmd["id"], mismatch)
            return CommandResult("refused", mismatch)
        spec = commands.get(kind)
        if (spec is None or spec.needs_write) and not self.forge.has_write(repo, user):
            if args.get("quiet"):  # e.g. the issue was closed: nothing to say
                return CommandResult("refused", f"{user} lacks write access (issue closed; nothing to say)")
            said = self._refuse(repo, number, comment_id, user, kind)
            return CommandResult(
                "refused",
                f"{user} lacks write access to {repo}" + ("" if said else " (already told on this issue)"),
            )
        if comment_id:
            self._react_comment(repo, comment_id, ACK_REACTION)
        if spec is None:
            return CommandResult("ignored", f"no handler for {kind}")
        return spec.handle(self, repo, number, user, args)

    # helpers (the command handlers of bot/commands.py use the public ones) ---------------------------------
    def acknowledge_issue(self, repo: str, number: int) -> None:
        self.forge.react_issue(repo, number, ACK_REACTION)

    def announce(self, run: Run) -> None:
        """Post the run's status comment while the run is still leased to us, then let it start."""
        try:
            self.pipeline.acknowledge(run)
        except RateLimited as exc:  # the run exists: it waits for the reset, the command is done
            self.pipeline.defer(run, exc)
        finally:
            self.store.release_run(run.id, self.owner)

    # --------------------------------------------------------------------------------------------
    def _refuse(self, repo: str, number: int, comment_id: int | None, user: str, kind: str) -> bool:
        """React on the comment; explain in a comment at most once per person per issue. True if explained."""
        if comment_id:
            self._react_comment(repo, comment_id, REFUSE_REACTION)
        key = f"refusal:{repo}#{number}:{user.lower()}"
        if not self.store.first_notice(key):
            return False
        try:
            self.pipeline.post_issue_note(repo, number, f"@{user} {refusal_sentence(kind, self.settings)}")
        except Exception:
            self.store.forget_notice(key)  # not said: the retry says it
            raise
        return True

    def _installation_mismatch(self, repo: str, payload_installation: Any) -> str | None:
        """Why a command must not act on `repo` (its installation is not the payload's), or None.

        With App auth the payload's installation.id must be the repository's installation (GET
        /repos/{o}/{r}/installation, cached by the forge). With token auth there are no installations: the
        token itself limits where the bot can act, so nothing is compared."""
        lookup = getattr(self.forge, "repo_installation_id", None)
        if lookup is None:
            return None
        try:
            expected = lookup(repo)
        except NotFound:
            return f"the App is not installed on {repo}"
        if expected is None:
            return None
        if payload_installation is None or int(payload_installation) != int(expected):
            return f"installation {payload_installation} of the event is not {repo}'s installation {expected}"
        return None

    def missing_branch(self, repo: str, spec: str) -> str | None:
        """Plain words when `bench <branch>` names a fork or branch that does not exist, else None."""
        target, branch = repo, spec
        if ":" in spec:
            owner, branch = spec.split(":", 1)
            target = f"{owner}/{repo.split('/', 1)[1]}"
            try:
                self.forge.default_branch(target)
            except NotFound:
                return f"fork `{target}` not found"
        if self.forge.branch_sha(target, branch) is None:
            return f"branch `{branch}` not found in `{target}`"
        return None

    def _react_comment(self, repo: str, comment_id: int, content: str) -> None:
        try:
            self.forge.react_comment(repo, int(comment_id), content)
        except Exception as exc:  # a reaction is a courtesy; never fail the command for it
            log.warning("reaction on comment %s failed: %s", comment_id, exc)


def refusal_sentence(kind: str, settings: Settings) -> str:
    """The one polite refusal for someone without write access, worded for what they asked
    (bot/commands.py)."""
    return commands.refusal_sentence(kind, settings.command_prefix, settings.trigger_label)


def run_worker(settings: Settings, store: Store, pipeline: Any) -> None:
    worker = Worker(settings, store, pipeline)
    log.info("worker %s started", worker.owner)
    worker.run_forever()


__all__ = ["Worker", "CommandResult", "run_worker", "Run"]
