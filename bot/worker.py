"""Background worker: turns queued commands into runs (after the permission check) and drives runs forward.

Runs are leased (owner = host:pid, renewed while a stage works), so after a kill -9 a restarted worker takes the
run over and resumes it at the recorded stage. Stages are idempotent over the store (see bot/pipeline.py).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from .config import Settings
from .forge import NotFound
from .model import Phase
from .store import Run, Store, default_owner

log = logging.getLogger("autoresearch.worker")

ACK_REACTION = "eyes"
REFUSE_REACTION = "confused"


@dataclass
class CommandResult:
    state: str  # done | refused | failed | ignored
    detail: str
    run_id: int | None = None


def _rounds(args: dict) -> dict:
    """The `rounds=N` a slash command asked for, as run params (the benchmark stage applies it)."""
    return {"rounds": int(args["rounds"])} if args.get("rounds") else {}


class Worker:
    """Single-threaded loop: handle pending commands, then advance claimable runs one stage at a time."""

    def __init__(self, settings: Settings, store: Store, pipeline: Any, *, owner: str | None = None,
                 lease_seconds: float = 60.0):
        self.settings = settings
        self.store = store
        self.pipeline = pipeline
        self.forge = pipeline.forge
        self.owner = owner or default_owner()
        self.lease_seconds = lease_seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # loop -------------------------------------------------------------------------------------------------
    def start(self) -> "Worker":
        """Two threads: commands (fast: acknowledgements, stop) never wait behind a long-running run."""
        self.store.reclaim_dead_leases()
        self._threads = [threading.Thread(target=self._loop, args=(self.tick_commands,), daemon=True,
                                          name="autoresearch-commands"),
                         threading.Thread(target=self._loop, args=(self.tick_runs,), daemon=True,
                                          name="autoresearch-runs")]
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

    def tick_runs(self) -> bool:
        run = self.store.claim_run(self.owner, self.lease_seconds)
        if run is None:
            return False
        try:
            self.pipeline.advance(run, owner=self.owner, stop=self._stop.is_set)
        finally:
            self.store.release_run(run.id, self.owner)
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
        except Exception as exc:  # a broken command must never stop the worker; transient ones are retried
            log.warning("command %s failed: %s", cmd["id"], exc)
            detail = f"{type(exc).__name__}: {exc}"
            if self.store.retry_command(cmd["id"], detail):
                return CommandResult("pending", detail)
            return CommandResult("failed", detail)
        self.store.finish_command(cmd["id"], result.state, result.detail, result.run_id)
        return result

    def _handle(self, cmd: dict[str, Any]) -> CommandResult:
        kind, repo, number, user, args = cmd["kind"], cmd["repo"], cmd["issue_number"], cmd["user"], cmd["args"]
        if kind == "installation":
            self.store.record_installation(int(args["installation_id"]), args.get("account"), args.get("action", ""),
                                           [r for r in args.get("repositories", []) if r])
            return CommandResult("done", f"installation {args.get('action')}")
        comment_id = args.get("comment_id")
        mismatch = self._installation_mismatch(repo, args.get("installation"))
        if mismatch:  # a signed event naming a repository of another installation: act nowhere, say nothing
            log.warning("command %s refused: %s", cmd["id"], mismatch)
            return CommandResult("refused", mismatch)
        if not self.forge.has_write(repo, user):
            if kind == "stop" and args.get("quiet"):
                return CommandResult("refused", f"{user} lacks write access (issue closed; nothing to say)")
            said = self._refuse(repo, number, comment_id, user, kind)
            return CommandResult("refused", f"{user} lacks write access to {repo}"
                                            + ("" if said else " (already told on this issue)"))
        if comment_id:
            self._react_comment(repo, comment_id, ACK_REACTION)
        handler = getattr(self, f"_cmd_{kind}", None)
        if handler is None:
            return CommandResult("ignored", f"no handler for {kind}")
        return handler(repo, number, user, args)

    def _cmd_start(self, repo: str, number: int, user: str, args: dict) -> CommandResult:
        self.forge.react_issue(repo, number, ACK_REACTION)
        active = self.store.active_run(repo, number)
        if active:
            return CommandResult("ignored", f"run {active.id} is already active", active.id)
        previous = [r for r in self.store.runs_for_issue(repo, number)
                    if r.state == Phase.DONE and r.kind == "issue"]
        if previous:
            last = previous[-1]
            self.pipeline.post_note(last, f"@{user} this issue was already researched (run {last.id}); its results "
                                          f"stand. Comment `{self.settings.command_prefix} rerun` to start a new "
                                          "attempt.")
            return CommandResult("ignored", f"run {last.id} already done; rerun needed", last.id)
        run = self.store.create_run(repo, number, "issue", user, {"reason": args.get("reason", "")},
                                    lease_owner=self.owner)
        self._announce(run)
        return CommandResult("done", f"run {run.id} queued", run.id)

    def _cmd_rerun(self, repo: str, number: int, user: str, args: dict) -> CommandResult:
        active = self.store.active_run(repo, number)
        if active:
            self.pipeline.post_note(active, f"@{user} run {active.id} is still in progress; "
                                            f"`{self.settings.command_prefix} stop` it first.")
            return CommandResult("ignored", f"run {active.id} still active", active.id)
        run = self.store.create_run(repo, number, "issue", user, {"reason": "rerun", **_rounds(args)},
                                    lease_owner=self.owner)
        self._announce(run)
        return CommandResult("done", f"run {run.id} queued (attempt {run.attempt})", run.id)

    def _cmd_bench(self, repo: str, number: int, user: str, args: dict) -> CommandResult:
        missing = self._missing_branch(repo, args["branch"])
        if missing:
            p = self.settings.command_prefix
            self.pipeline.post_issue_note(repo, number, f"@{user} {missing}, so nothing was measured. "
                                                         f"`{p} bench <branch>` takes a branch of this "
                                                         "repository or `owner:branch` of a fork.")
            return CommandResult("refused", missing)
        run = self.store.create_run(repo, number, "bench", user, {"branch": args["branch"],
                                                                  "is_pull": args.get("is_pull", False),
                                                                  **_rounds(args)},
                                    lease_owner=self.owner)
        self._announce(run)
        return CommandResult("done", f"bench run {run.id} queued for {args['branch']}", run.id)

    def _cmd_rebench(self, repo: str, number: int, user: str, args: dict) -> CommandResult:
        if not args.get("is_pull"):
            self.pipeline.post_issue_note(repo, number, f"@{user} `{self.settings.command_prefix} rebench` works on "
                                                         "pull requests; on issues use `rerun` or `bench <branch>`.")
            return CommandResult("ignored", "rebench outside a pull request")
        run = self.store.create_run(repo, number, "rebench", user, {"pull": number, "is_pull": True, **_rounds(args)},
                                    lease_owner=self.owner)
        self._announce(run)
        return CommandResult("done", f"rebench run {run.id} queued", run.id)

    def _cmd_approved(self, repo: str, number: int, user: str, args: dict) -> CommandResult:
        if not self.pipeline.base_moved(repo, number):
            return CommandResult("ignored", "base did not move since the last measurement (or not the bot's PR)")
        run = self.store.create_run(repo, number, "rebench", user, {"pull": number, "is_pull": True,
                                                                    "reason": "approved; base moved"},
                                    lease_owner=self.owner)
        self._announce(run)
        return CommandResult("done", f"rebench run {run.id} queued after approval", run.id)

    def _cmd_stop(self, repo: str, number: int, user: str, args: dict) -> CommandResult:
        stopped = []
        for run in self.store.runs_for_issue(repo, number):
            if run.active:
                self.store.request_cancel(run.id)
                self.store.add_event(run.id, "cancel", f"stop requested by {user}: {args.get('reason', 'command')}")
                stopped.append(run.id)
        if not stopped and not args.get("quiet"):
            self.pipeline.post_issue_note(repo, number, f"@{user} nothing is running for this issue.")
        return CommandResult("done", f"cancel requested for runs {stopped}" if stopped else "nothing to stop",
                             stopped[0] if stopped else None)

    def _cmd_status(self, repo: str, number: int, user: str, args: dict) -> CommandResult:
        runs = self.store.runs_for_issue(repo, number)
        if not runs:
            self.pipeline.post_issue_note(repo, number, f"@{user} no run for this issue yet. Add the "
                                                         f"`{self.settings.trigger_label}` label to start one.")
            return CommandResult("done", "no runs")
        self.pipeline.refresh_status(runs[-1])
        return CommandResult("done", f"status of run {runs[-1].id} refreshed", runs[-1].id)

    def _cmd_help(self, repo: str, number: int, user: str, args: dict) -> CommandResult:
        p = self.settings.command_prefix
        error = f"{args['error']}\n\n" if args.get("error") else ""
        self.pipeline.post_issue_note(repo, number, (
            f"@{user} {error}Commands: `{p} status`, `{p} stop`, `{p} rerun`, `{p} bench <branch>` "
            f"(or `owner:branch` of a fork), and on pull requests `{p} rebench`. `rerun`, `bench` and `rebench` "
            f"take `rounds=N` (2-100) to measure with more interleaved rounds when a result came back noisy."))
        return CommandResult("done", "help posted")

    # helpers ----------------------------------------------------------------------------------------------
    def _announce(self, run: Run) -> None:
        """Post the run's status comment while the run is still leased to us, then let it start."""
        try:
            self.pipeline.acknowledge(run)
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

    def _missing_branch(self, repo: str, spec: str) -> str | None:
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
    """The one polite refusal for someone without write access, worded for what they asked."""
    p = settings.command_prefix
    if kind == "start":
        what = (f"Adding the `{settings.trigger_label}` label starts the bot only when someone with write "
                "access to this repository adds it, so nothing was started")
    elif kind == "approved":
        what = ("An approving review makes the bot re-measure this pull request only when the reviewer has "
                "write access to this repository, so nothing was started")
    else:
        outcome = {"stop": "nothing was stopped", "status": "nothing was done", "help": "nothing was done"}
        what = (f"Only people with write access to this repository can use `{p} {kind}`, so "
                f"{outcome.get(kind, 'nothing was started')}")
    return (f"thanks for the interest! {what}. A maintainer can do it for you (this note comes once per "
            "person per issue).")


def run_worker(settings: Settings, store: Store, pipeline: Any) -> None:
    worker = Worker(settings, store, pipeline)
    log.info("worker %s started", worker.owner)
    worker.run_forever()


__all__ = ["Worker", "CommandResult", "run_worker", "Run"]
