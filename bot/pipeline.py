"""The run state machine: stage sequence, per-stage context, the single status comment.

A run's `state` names the stage in progress. Before a stage runs, its start is recorded; when it returns, the
next state is recorded. After a kill -9 the stage that was in progress runs again, so every stage is idempotent
over the store: it reads its inputs from artifacts, skips work whose output is already stored, and performs
side effects through look-ups (`Forge.upsert_marked_comment`, branch by name, PR by head) or `Store.once()`.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .config import PROJECT_CONFIG_FILE, ConfigError, ProjectConfig, Settings
from .store import Run, Store

log = logging.getLogger("autoresearch.pipeline")

# stage sequences per run kind: (state name, stage key in the stage table). A stage may return the name of an
# earlier state to go back to: "reviewing" returns "researching" to start the next wave (bot/stages.py).
SEQUENCES: dict[str, list[str]] = {
    "issue": ["researching", "implementing", "benchmarking", "deciding", "verifying", "reviewing",
              "publishing"],
    "bench": ["implementing", "benchmarking", "deciding", "publishing"],
    "rebench": ["implementing", "benchmarking", "deciding", "publishing"],
}

PHASE_TITLES = {
    "queued": "Queued",
    "researching": "Research",
    "implementing": "Candidates",
    "benchmarking": "Benchmarks",
    "deciding": "Decision",
    "verifying": "Verification",
    "reviewing": "Wave review",
    "publishing": "Publishing",
}



def web_url(api_url: str | None) -> str:
    """The web host of a GitHub API base URL: api.github.com -> github.com, GHES https://host/api/v3 -> https://host."""
    api = (api_url or "https://api.github.com").rstrip("/")
    if api in ("https://api.github.com", "http://api.github.com"):
        return "https://github.com"
    for suffix in ("/api/v3", "/api"):
        if api.endswith(suffix):
            return api[: -len(suffix)]
    return api

class StageFailed(Exception):
    """A stage could not do its job; `message` is plain words for maintainers, `log_tail` optional evidence."""

    def __init__(self, message: str, log_tail: str = ""):
        super().__init__(message)
        self.message = message
        self.log_tail = log_tail


class Cancelled(Exception):
    pass


@dataclass
class StageContext:
    pipeline: "Pipeline"
    run: Run
    owner: str
    project: ProjectConfig | None = None
    _should_stop: Callable[[], bool] = field(default=lambda: False)

    @property
    def store(self) -> Store:
        return self.pipeline.store

    @property
    def forge(self) -> Any:
        return self.pipeline.forge

    @property
    def settings(self) -> Settings:
        return self.pipeline.settings

    @property
    def workdir(self) -> Path:
        path = self.settings.data_path / "runs" / str(self.run.id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def artifact(self, key: str, default: Any = None) -> Any:
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


class Pipeline:
    """Drives runs. `stages` maps state name -> stage function (bot.stages.DEFAULT_STAGES by default)."""

    def __init__(self, settings: Settings, store: Store, forge: Any, *, stages: dict[str, Stage] | None = None,
                 services: dict[str, Any] | None = None, lease_seconds: float = 60.0,
                 status_renderer: Callable[["Pipeline", Run], str] | None = None):
        self.settings = settings
        self.store = store
        self.forge = forge
        self.services = services or {}
        self.lease_seconds = lease_seconds
        if stages is None:
            from .stages import DEFAULT_STAGES

            stages = DEFAULT_STAGES
        self.stages = stages
        if status_renderer is None:
            from .stages import render_status

            status_renderer = render_status
        self.status_renderer = status_renderer
        self._last_refresh: dict[int, float] = {}
        self._status_locks: dict[int, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # driving ----------------------------------------------------------------------------------------------
    def advance(self, run: Run, *, owner: str, stop: Callable[[], bool] = lambda: False) -> Run:
        ctx = StageContext(self, run, owner, _should_stop=stop)
        try:
            if run.cancel_requested:
                raise Cancelled()
            ctx.project = self._project(ctx)
            sequence = SEQUENCES[run.kind]
            if run.state == "queued":
                self._enter(ctx, sequence[0])
            while ctx.run.state in sequence:
                state = ctx.run.state
                ctx.heartbeat()
                self.store.add_event(run.id, "stage", f"{state} started")
                jump = self.stages[state](ctx)
                self.store.add_event(run.id, "stage", f"{state} finished")
                index = sequence.index(state)
                if isinstance(jump, str) and jump in sequence:
                    self._enter(ctx, jump)
                else:
                    self._enter(ctx, sequence[index + 1] if index + 1 < len(sequence) else "done")
        except Cancelled:
            self._cancel(ctx)
        except InterruptedError:
            log.info("run %s interrupted by shutdown at %s; it resumes later", run.id, ctx.run.state)
        except ConfigError as exc:
            self._fail(ctx, f"The project configuration `{PROJECT_CONFIG_FILE}` has a problem: "
                            f"**{exc.field or 'file'}**: {exc.problem}", "")
        except StageFailed as exc:
            self._fail(ctx, exc.message, exc.log_tail)
        except Exception as exc:  # never show a stack trace to users; keep it in the run's events
            self.store.add_event(run.id, "error", f"{type(exc).__name__}: {exc}", {"traceback": traceback.format_exc()})
            self._fail(ctx, f"The bot hit an internal error during {PHASE_TITLES.get(ctx.run.state, ctx.run.state)} "
                            f"({type(exc).__name__}). The maintainers of the bot can find details in run {run.id}'s "
                            "log.", "")
        final = self.store.get_run(run.id)
        if final.state in ("done", "failed", "cancelled"):
            self._release(final)
        return final

    def _release(self, run: Run) -> None:
        """The run is over: the executor gives up what it kept for the run (SkyPilot: the run's clusters,
        reused across its batches); the VM time since the last batch is recorded as usage."""
        release = getattr(self.services.get("executor"), "release", None)
        if release is None:
            return
        try:
            for arch, tail in (release(run.id) or {}).items():
                self.store.record_usage(run.id, "vm", usd=float(tail["usd"]),
                                        detail=f"teardown/{arch}: {float(tail['seconds']):.0f} s")
        except Exception:  # the reconciler downs what is left: the run is over in the store
            log.exception("run %s: releasing its executor resources failed", run.id)

    def _enter(self, ctx: StageContext, state: str) -> None:
        self.store.set_state(ctx.run.id, state, stage=state if state != "done" else None)
        ctx.run = self.store.get_run(ctx.run.id)
        self.refresh_status(ctx.run)

    def _project(self, ctx: StageContext) -> ProjectConfig:
        stored = ctx.artifact("project")
        if stored is not None:
            return ProjectConfig.from_dict(stored, list(self.settings.architectures))
        repo = ctx.run.repo
        branch = self.forge.default_branch(repo)
        text = self.forge.get_file(repo, PROJECT_CONFIG_FILE, ref=branch)
        if text is None:
            raise ConfigError(PROJECT_CONFIG_FILE, f"not found on the default branch `{branch}`; add one (see the "
                                                   "bot's README for an example)")
        project = ProjectConfig.from_yaml(text, list(self.settings.architectures))
        rounds = ctx.run.params.get("rounds")
        if rounds:  # `rerun|bench|rebench rounds=N`: more interleaved rounds for a noisy machine, this run only
            raw = project.to_dict()
            was, raw["benchmark"]["rounds"] = raw["benchmark"]["rounds"], int(rounds)
            project = ProjectConfig.from_dict(raw, list(self.settings.architectures))
            self.store.add_event(ctx.run.id, "config", f"benchmark.rounds {was} -> {rounds} (asked for in the command)")
        ctx.put("project", project.to_dict())
        ctx.put("baseline", {"branch": branch, "sha": self.forge.branch_sha(repo, branch)})
        return project

    def _cancel(self, ctx: StageContext) -> None:
        # a running benchmark batch is cancelled (VMs torn down) by run_experiment when heartbeat() raises
        ctx.event("cancel", "run cancelled; no further work will be started")
        self.store.set_state(ctx.run.id, "cancelled")
        ctx.run = self.store.get_run(ctx.run.id)
        self.refresh_status(ctx.run)

    def _fail(self, ctx: StageContext, message: str, log_tail: str) -> None:
        ctx.put("failure", {"stage": ctx.run.state, "message": message, "log_tail": log_tail[-4000:]})
        self.store.set_state(ctx.run.id, "failed", error=message)
        ctx.run = self.store.get_run(ctx.run.id)
        self.refresh_status(ctx.run)

    def report_inputs(self, run: Run) -> dict[str, Any]:
        """Everything the status comment, the PR body and the check runs show, read from the store."""
        run = self.store.get_run(run.id)
        get = lambda key, default=None: self.store.get_artifact(run.id, key, default)  # noqa: E731
        from . import waves

        recs = waves.records(get) if run.kind == "issue" else []
        n = waves.current(get) if run.kind == "issue" else 1
        wk = lambda key, default=None: get(waves.key(key, n), default)  # noqa: E731  (the current wave's)
        prev_best = waves.best_after(recs[: n - 1]) if n > 1 else None
        project = get("project") or {}
        usage = self.store.usage_totals(run.id)
        budget = (project.get("budget") or {}).get("usd", self.settings.budget_usd)
        progress = [e["message"] for e in self.store.events(run.id, "progress")][-5:]
        return {
            "run": {"id": run.id, "repo": run.repo, "issue": run.issue_number, "kind": run.kind,
                    "attempt": run.attempt, "state": run.state, "trigger_user": run.trigger_user,
                    "params": run.params, "error": run.error},
            "phases": SEQUENCES[run.kind],
            "progress": progress,
            "budget": {"spent_usd": usage["usd"], "limit_usd": min(float(budget), self.settings.budget_usd),
                       "llm_usd": usage["llm_usd"], "vm_usd": usage["vm_usd"],
                       "tokens": usage["tokens_in"] + usage["tokens_out"]},
            "project": project,
            "baseline": get("baseline"),
            "dossier": get("dossier"),
            "candidates": wk("candidates", []),
            "skipped": wk("skipped", []),
            "decision": wk("decision"),
            "results": wk("results:main"),
            "verification": wk("verification"),
            "choice": wk("choice"),
            "profile": get("profile"),
            "wave": n,
            "waves": recs,
            "wave_plan": wk("dossier") if n > 1 else None,
            "wave_base": prev_best["label"] if prev_best else "the baseline",
            "loop": get("loop"),
            "publication": get("publication"),
            "failure": get("failure"),
            "experiments": self.store.experiments(run.id),
            "costs": get("costs", {}),
            "executor": self.settings.executor,
            "links": {"status_page": f"{self.settings.public_url.rstrip('/')}/runs/{run.id}"
                      if self.settings.public_url else None,
                      "repo_web": (self.services.get("repo_web_url") or web_url(self.settings.github_base_url))
                      .rstrip("/") + "/" + run.repo},
        }

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
            comment = self.forge.upsert_marked_comment(run.repo, run.issue_number, status_marker(run.id), body)
            self.store.put_side_effect(run.id, "status_comment", {"id": comment.id, "url": comment.html_url})

    def post_note(self, run: Run, text: str) -> None:
        self.post_issue_note(run.repo, run.issue_number, text)

    def post_issue_note(self, repo: str, number: int, text: str) -> None:
        self.forge.create_comment(repo, number, text)

    def base_moved(self, repo: str, number: int) -> bool:
        """After an approving review: did the PR's base move since the bot last measured it?"""
        measured = None
        for run in reversed(self.store.list_runs(500)):
            pub = self.store.get_artifact(run.id, "publication") or {}
            if run.repo == repo and pub.get("pr_number") == number:
                measured = pub.get("base_sha")
        if measured is None:
            return False
        return measured != self.forge.branch_sha(repo, self.forge.default_branch(repo))


def status_marker(run_id: int) -> str:
    """The hidden marker of a run's status comment (the one report.status_comment writes)."""
    from .report import marker

    return marker(run_id)
