"""The run state machine: stage sequence, per-stage context, the single status comment.

A run's `state` names the stage in progress. Before a stage runs, its start is recorded; when it returns, the
next state is recorded. After a kill -9 the stage that was in progress runs again, so every stage is
idempotent over the store: it reads its inputs from artifacts, skips work whose output is already stored, and
performs side effects through look-ups (`Forge.upsert_marked_comment`, branch by name, PR by head) or
`Store.once()`.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import checkruns, waves
from .artifacts import (
    BASELINE,
    CANDIDATES,
    CHOICE,
    COSTS,
    DECISION,
    DOSSIER,
    FAILURE,
    LOOP,
    PROFILE,
    PROJECT,
    PUBLICATION,
    RESULTS_MAIN,
    SKIPPED,
    VERIFICATION,
    RunArtifacts,
)
from .config import PROJECT_CONFIG_FILE, ConfigError, ProjectConfig, Settings
from .forge.errors import ForgeError, RateLimited
from .model import FINAL_PHASES, SEQUENCES, Baseline, Cancelled, Phase, Publication, StageFailed, title
from .report import marker as status_marker  # re-exported: finds a run's status comment
from .store import Run, Store, iso_utc
from .text import md_cell

if TYPE_CHECKING:
    from .forge import Forge

log = logging.getLogger("autoresearch.pipeline")


def web_url(api_url: str | None) -> str:
    """The web host of a GitHub API base URL: api.github.com -> github.com, GHES https://host/api/v3 -> https://host."""
    api = (api_url or "https://api.github.com").rstrip("/")
    if api in ("https://api.github.com", "http://api.github.com"):
        return "https://github.com"
    for suffix in ("/api/v3", "/api"):
        if api.endswith(suffix):
            return api[: -len(suffix)]
    return api


@dataclass
class StageContext:
    pipeline: Pipeline
    run: Run
    owner: str
    project: ProjectConfig | None = None
    _should_stop: Callable[[], bool] = field(default=lambda: False)

    @property
    def store(self) -> Store:
        return self.pipeline.store

    @property
    def forge(self) -> Forge:
        return self.pipeline.forge

    @property
    def settings(self) -> Settings:
        return self.pipeline.settings

    @property
    def workdir(self) -> Path:
        path = self.settings.data_path / "runs" / str(self.run.id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def artifacts(self) -> RunArtifacts:
        """The run's artifacts, typed (bot/artifacts.py)."""
        return RunArtifacts(self.store, self.run.id)

    def artifact(self, key: str, default: Any = None) -> Any:
        """An artifact by key string (a getter for bot.waves' pure functions)."""
        return self.store.get_artifact(self.run.id, key, default)

    def put(self, key: str, value: Any) -> None:
        self.store.put_artifact(self.run.id, key, value)

    def event(self, kind: str, message: str, data: Any = None) -> None:
        self.store.add_event(self.run.id, kind, message, data)

    def progress(self, message: str, data: Any = None) -> None:
        """Record progress and (throttled) refresh the status comment."""
        self.event("progress", message, data)
        self.pipeline.refresh_status(self.run, throttle=True)

    def heartbeat(self) -> None:
        """Renew the lease and raise Cancelled when a stop was requested (call it from long loops)."""
        self.store.renew_lease(self.run.id, self.owner, self.pipeline.lease_seconds)
        if self.store.cancel_requested(self.run.id):
            raise Cancelled()
        if self._should_stop():
            raise InterruptedError("worker is shutting down")


Stage = Callable[[StageContext], "str | None"]
StatusRenderer = Callable[["Pipeline", Run], str]


def config_problems(exc: ConfigError, limit: int = 10) -> str:
    """A broken project config as the issue comment says it: one problem, or a short list of them (each
    with its line in the file where known; `autoresearch-bot config validate` prints the same)."""

    def one(e: ConfigError) -> str:
        where = f" (line {e.line})" if e.line and " at line " not in e.problem else ""
        field = "" if e.field in ("", PROJECT_CONFIG_FILE) else f"**{inline(e.field, 130)}**: "
        return f"{field}{inline(e.problem, 240)}{where}"

    def inline(text: str, limit: int) -> str:  # values quoted from the file: inert, no @mention; `>` as is
        return md_cell(text, limit).replace("&gt;", ">")

    errors = sorted(exc.errors, key=lambda e: e.line or 0)
    if len(errors) == 1:
        return f"The project configuration `{PROJECT_CONFIG_FILE}` has a problem: {one(errors[0])}"
    items = "\n".join(f"- {one(e)}" for e in errors[:limit])
    more = f"\n- ... and {len(errors) - limit} more" if len(errors) > limit else ""
    return f"The project configuration `{PROJECT_CONFIG_FILE}` has {len(errors)} problems:\n{items}{more}"


class Pipeline:
    """Drives runs. The composition root injects `stages` (phase -> stage function; bot.stages.DEFAULT_STAGES)
    and `status_renderer` (bot.stages.render_status): the pipeline imports neither."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        forge: Forge,
        *,
        stages: dict[Phase, Stage],
        status_renderer: StatusRenderer,
        services: dict[str, Any] | None = None,
        lease_seconds: float = 60.0,
    ):
        missing = [p for seq in SEQUENCES.values() for p in seq if p not in stages]
        if missing:
            raise ValueError(f"no stage for phase(s) {', '.join(sorted(set(missing)))}")
        self.settings = settings
        self.store = store
        self.forge = forge
        self.services = services or {}
        self.lease_seconds = lease_seconds
        self.stages = stages
        self.status_renderer = status_renderer
        self._last_refresh: dict[int, float] = {}
        self._status_locks: dict[int, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # driving ----------------------------------------------------------------------------------------------
    def advance(self, run: Run, *, owner: str, stop: Callable[[], bool] = lambda: False) -> Run:
        ctx = StageContext(self, run, owner, _should_stop=stop)
        if run.deferred_until is not None:  # claimed again: the rate limit's reset has passed
            self.store.resume_run(run.id)
            ctx.run = run = self.store.get_run(run.id)
        try:
            if run.cancel_requested:
                raise Cancelled()
            ctx.project = self._project(ctx)
            sequence = SEQUENCES[run.kind]
            if run.state == Phase.QUEUED:
                self._enter(ctx, sequence[0])
            while ctx.run.state in sequence:
                state = ctx.run.state
                ctx.heartbeat()
                self.store.add_event(run.id, "stage", f"{state} started")
                jump = self.stages[state](ctx)
                self.store.add_event(run.id, "stage", f"{state} finished")
                index = sequence.index(state)
                if isinstance(jump, str) and jump in sequence:
                    self._enter(ctx, Phase(jump))
                else:
                    self._enter(ctx, sequence[index + 1] if index + 1 < len(sequence) else Phase.DONE)
        except Cancelled:
            self._cancel(ctx)
        except InterruptedError:
            log.info("run %s interrupted by shutdown at %s; it resumes later", run.id, ctx.run.state)
        except RateLimited as exc:
            self.defer(ctx.run, exc)
        except ConfigError as exc:
            self._fail(ctx, config_problems(exc), "")
        except StageFailed as exc:
            self._fail(ctx, exc.message, exc.log_tail)
        except Exception as exc:  # never show a stack trace to users; keep it in the run's events
            self.store.add_event(
                run.id, "error", f"{type(exc).__name__}: {exc}", {"traceback": traceback.format_exc()}
            )
            self._fail(
                ctx,
                f"The bot hit an internal error during {title(ctx.run.state)} "
                f"({type(exc).__name__}). The maintainers of the bot can find details in run {run.id}'s "
                "log.",
                "",
            )
        final = self.store.get_run(run.id)
        if final.state in FINAL_PHASES:
            self._release(final)
            try:
                self.mention_ending(final)
            except Exception as exc:  # a courtesy; the status comment already says how the run ended
                log.warning("run %s: the closing mention failed: %s", run.id, exc)
        return final

    def mention_ending(self, run: Run) -> None:
        """@-mention whoever asked, once per run, when it ends without a pull request (failed, cancelled, a
        bench run, no winner): editing the status comment notifies nobody, a mention does."""
        from .report import cell

        user = run.trigger_user
        if not user or not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?", user):
            return
        arts = RunArtifacts(self.store, run.id)
        pub = arts.get(PUBLICATION) or {}
        rid = int(run.id)
        if run.state == Phase.FAILED:
            where = title(run.stage) if run.stage else "start-up"
            text = f"run #{rid} failed during {where}: {cell(run.error or 'see the log', 300)}"
        elif run.state == Phase.CANCELLED:
            text = f"run #{rid} was stopped; nothing more will be started"
        elif pub.get("pr_url") or pub.get("kind") == "rebench":
            return  # the pull request (or, for a rebench, its status comment) is the answer
        elif run.kind == "bench":
            decision = arts.get(DECISION) or {}
            target = decision.get("target")
            verdicts = sorted(
                {str(r.get("verdict")) for r in decision.get("rows") or [] if r.get("metric") == target}
            )
            said = ", ".join(cell(v.replace("_", " "), 40) for v in verdicts) or "nothing measured"
            text = f"bench run #{rid} of `{cell(run.params.get('branch', '?'), 120)}` finished: {said}"
        else:
            reason = cell(pub.get("reason") or "no verified winner", 300)
            text = f"run #{rid} finished without a pull request: {reason}"
        has_table = bool((arts.get(DECISION) or {}).get("rows"))
        where = " The benchmark table is in the status comment above." if has_table else ""
        marker = f"<!-- autoresearch:run:{rid}:no-pr -->"
        body = f"{marker}\n@{user} {text}.{where}"
        self.store.once(
            run.id,
            "notify:no-pr",
            lambda: self.forge.upsert_marked_comment(run.repo, run.issue_number, marker, body).id,
        )

    def defer(self, run: Run, exc: RateLimited) -> None:
        """GitHub rate-limited the bot: park the run until the reset (in the store, so a restart keeps it);
        the worker resumes it at the recorded stage then. Stages record their side effects (a submitted
        batch's handle, a pushed branch, a created comment), so resuming repeats none of them."""
        until = exc.until(self.store.clock())
        reason = f"GitHub rate limit ({exc.status}: {exc.message})"
        self.store.defer_run(run.id, until, reason)
        log.warning("run %s deferred until %s: %s", run.id, iso_utc(until), reason)
        try:  # says so where it can: a secondary limit may let this one edit through; the page shows it
            self.refresh_status(self.store.get_run(run.id))
        except Exception as err:  # the limit holds: the comment is brought up to date on resume
            log.info("run %s: status comment not updated while rate-limited: %s", run.id, err)

    def _release(self, run: Run) -> None:
        """The run is over: the executor gives up what it kept for the run (SkyPilot: the run's clusters,
        reused across its batches); the VM time since the last batch is recorded as usage."""
        executor = self.services.get("executor")
        if executor is None:
            return
        try:
            for arch, tail in (executor.release(run.id) or {}).items():
                self.store.record_usage(
                    run.id,
                    "vm",
                    usd=float(tail["usd"]),
                    detail=f"teardown/{arch}: {float(tail['seconds']):.0f} s",
                )
        except Exception:  # the reconciler downs what is left: the run is over in the store
            log.exception("run %s: releasing its executor resources failed", run.id)

    def _enter(self, ctx: StageContext, state: Phase) -> None:
        self.store.set_state(ctx.run.id, state, stage=state if state != Phase.DONE else None)
        ctx.run = self.store.get_run(ctx.run.id)
        self.refresh_status(ctx.run)
        if state == Phase.DONE:  # publish completed what it measured; anything else measured nothing more
            self._finish_checks(ctx.run, "neutral", "Not measured to the end", "The run ended first.")
        else:
            self._checks(lambda: checkruns.on_phase(self, ctx.run))

    def _checks(self, step: Callable[[], None]) -> None:
        """A check-run update: a rate limit defers the run like any GitHub call; another GitHub error (the
        check run was deleted, the token may not write checks) is logged, never fails the run."""
        try:
            step()
        except RateLimited:
            raise
        except ForgeError as exc:
            log.warning("check run update failed: %s", exc)

    def _finish_checks(self, run: Run, conclusion: str, head: str, summary: str) -> None:
        self._checks(lambda: checkruns.finish_open(self, run, conclusion, head, summary))

    def _project(self, ctx: StageContext) -> ProjectConfig:
        stored = ctx.artifacts.get(PROJECT)
        if stored is not None:
            return ProjectConfig.from_stored(stored, list(self.settings.architectures))
        repo = ctx.run.repo
        branch = self.forge.default_branch(repo)
        text = self.forge.get_file(repo, PROJECT_CONFIG_FILE, ref=branch)
        if text is None:
            raise ConfigError(
                PROJECT_CONFIG_FILE,
                f"not found on the default branch `{branch}`; add one (see the bot's README for an example)",
            )
        project = ProjectConfig.from_yaml(text, list(self.settings.architectures))
        rounds = ctx.run.params.get("rounds")
        if (
            rounds
        ):  # `rerun|bench|rebench rounds=N`: more interleaved rounds for a noisy machine, this run only
            raw = project.to_dict()
            was, raw["benchmark"]["rounds"] = raw["benchmark"]["rounds"], int(rounds)
            project = ProjectConfig.from_dict(raw, list(self.settings.architectures))
            self.store.add_event(
                ctx.run.id, "config", f"benchmark.rounds {was} -> {rounds} (asked for in the command)"
            )
        ctx.artifacts.put(PROJECT, project.to_dict())
        baseline = Baseline(branch=branch, sha=self.forge.branch_sha(repo, branch))
        ctx.artifacts.put(BASELINE, baseline.to_dict())
        return project

    def _cancel(self, ctx: StageContext) -> None:
        # a running benchmark batch is cancelled (VMs torn down) by run_experiment when heartbeat() raises
        ctx.event("cancel", "run cancelled; no further work will be started")
        self.store.set_state(ctx.run.id, Phase.CANCELLED)
        ctx.run = self.store.get_run(ctx.run.id)
        self.refresh_status(ctx.run)
        self._finish_checks(
            ctx.run,
            "cancelled",
            "Cancelled",
            f"Run #{ctx.run.id} was stopped before it measured this commit.",
        )

    def _fail(self, ctx: StageContext, message: str, log_tail: str) -> None:
        ctx.artifacts.put(FAILURE, {"stage": ctx.run.state, "message": message, "log_tail": log_tail[-4000:]})
        self.store.set_state(ctx.run.id, Phase.FAILED, error=message)
        ctx.run = self.store.get_run(ctx.run.id)
        self.refresh_status(ctx.run)
        where = title(ctx.run.stage) if ctx.run.stage else "start-up"
        self._finish_checks(ctx.run, "failure", f"Run failed during {where}", message)

    def report_inputs(self, run: Run) -> dict[str, Any]:
        """Everything the status comment, the PR body and the check runs show, read from the store."""
        run = self.store.get_run(run.id)
        arts = RunArtifacts(self.store, run.id)
        recs = waves.records(arts.raw) if run.kind == "issue" else []
        n = waves.current(arts.raw) if run.kind == "issue" else 1  # per-wave artifacts below: wave n's
        prev_best = waves.best_after(recs[: n - 1]) if n > 1 else None
        project = arts.get(PROJECT) or {}
        usage = self.store.usage_totals(run.id)
        budget = (project.get("budget") or {}).get("usd", self.settings.budget_usd)
        progress = [e["message"] for e in self.store.events(run.id, "progress")][-5:]
        return {
            "run": {
                "id": run.id,
                "repo": run.repo,
                "issue": run.issue_number,
                "kind": run.kind,
                "attempt": run.attempt,
                "state": run.state,
                "trigger_user": run.trigger_user,
                "params": run.params,
                "error": run.error,
            },
            "phases": list(SEQUENCES[run.kind]),
            "progress": progress,
            "budget": {
                "spent_usd": usage["usd"],
                "limit_usd": min(float(budget), self.settings.budget_usd),
                "llm_usd": usage["llm_usd"],
                "vm_usd": usage["vm_usd"],
                "tokens": usage["tokens_in"] + usage["tokens_out"],
            },
            "project": project,
            "baseline": arts.get(BASELINE),
            "dossier": arts.get(DOSSIER),
            "candidates": arts.get(CANDIDATES, n),
            "skipped": arts.get(SKIPPED, n),
            "decision": arts.get(DECISION, n),
            "results": arts.get(RESULTS_MAIN, n),
            "verification": arts.get(VERIFICATION, n),
            "choice": arts.get(CHOICE, n),
            "profile": arts.get(PROFILE),
            "wave": n,
            "waves": recs,
            "wave_plan": arts.get(DOSSIER, n) if n > 1 else None,
            "wave_base": prev_best["label"] if prev_best else "the baseline",
            "loop": arts.get(LOOP),
            "publication": arts.get(PUBLICATION),
            "failure": arts.get(FAILURE),
            "experiments": self.store.experiments(run.id),
            "costs": arts.get(COSTS),
            "executor": self.settings.executor,
            "links": {
                "status_page": f"{self.settings.public_url.rstrip('/')}/runs/{run.id}"
                if self.settings.public_url
                else None,
                "repo_web": self.repo_web(run.repo),
            },
        }

    def repo_web(self, repo: str) -> str:
        """The repository's web address: the API's `html_url` (right for github.com, GHE.com and GitHub
        Enterprise Server); derived from the API base URL only for a forge that cannot say."""
        lookup = getattr(self.forge, "repo_html_url", None)
        if lookup is not None:
            try:
                return str(lookup(repo)).rstrip("/")
            except RateLimited:
                raise
            except ForgeError as exc:
                log.warning("html_url of %s unknown (%s); derived from the API base URL", repo, exc)
        base = self.services.get("repo_web_url") or web_url(self.settings.github_base_url)
        return f"{base.rstrip('/')}/{repo}"

    # GitHub-facing helpers --------------------------------------------------------------------------------
    def acknowledge(self, run: Run) -> None:
        """First status comment right after the permission check (the reaction came before)."""
        self.refresh_status(run)

    def refresh_status(self, run: Run, throttle: bool = False) -> None:
        now = time.monotonic()
        if throttle and now - self._last_refresh.get(run.id, 0.0) < 5.0:
            return
        self._last_refresh[run.id] = now
        with self._locks_guard:
            lock = self._status_locks.setdefault(run.id, threading.Lock())
        with lock:  # one writer per run in this process: never two "first" comments
            run = self.store.get_run(run.id)
            body = self.status_renderer(self, run)
            comment = self.forge.upsert_marked_comment(
                run.repo, run.issue_number, status_marker(run.id), body
            )
            self.store.put_side_effect(run.id, "status_comment", {"id": comment.id, "url": comment.html_url})

    def post_note(self, run: Run, text: str) -> None:
        self.post_issue_note(run.repo, run.issue_number, text)

    def post_issue_note(self, repo: str, number: int, text: str) -> None:
        self.forge.create_comment(repo, number, text)

    def base_moved(self, repo: str, number: int) -> bool:
        """After an approving review: did the PR's base move since the bot last measured it?"""
        measured = None
        for run in reversed(self.store.list_runs(500)):
            stored = RunArtifacts(self.store, run.id).get(PUBLICATION)
            pub = Publication.from_dict(stored) if stored else None
            if run.repo == repo and pub and pub.pr_number == number:
                measured = pub.base_sha
        if measured is None:
            return False
        return measured != self.forge.branch_sha(repo, self.forge.default_branch(repo))
