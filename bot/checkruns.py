"""Check runs with GitHub's lifecycle: `queued` when a run starts benchmarking, `in_progress` (the output
updated as the phases go by) while it measures and decides, `completed` with a conclusion and a summary.

Which commit: a check run needs a commit of the repository, and GitHub shows it wherever that commit shows
(its page, the branch list, and every pull request whose head it is). Before a pull request exists the only
commits a run has are its candidates' heads, pushed as branches (`autoresearch/...`), so each measured
candidate gets its two check runs (`autoresearch / correctness`, `autoresearch / benchmark`) on its own head
commit: a single winner's commit is then the pull request's head, and its check runs are already there
when the PR opens. A stack of several winners is a new commit, made in verification: its check runs start
there (in_progress while the stack is re-measured). A rebench measures the PR's head, a bench the branch's.
A commit the repository does not have (a candidate pushed to the bot's fork, a fork's branch) gets no check
run until a pull request brings it in; that is recorded, not an error.

Every check run carries `external_id` `autoresearch:run=<id>:issue=<n>:kind=<kind>` (GitHub's Re-run button
sends it back in `check_run.rerequested`, bot/events.py) and `details_url` the bot's run page when
`public_url` is set. Each is recorded as a side effect `check_run:<kind>:<sha>` of its run (created once,
whatever restarts), with its status, so a failed or cancelled run completes the ones it left open.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .forge.errors import ForgeError, RateLimited
from .model import Phase, title

if TYPE_CHECKING:
    from .store import Run

Pipeline = Any  # bot.pipeline.Pipeline (which imports this module): its settings, store and forge

log = logging.getLogger("autoresearch.checks")

KINDS = ("correctness", "benchmark")
PREFIX = "check_run:"
EXTERNAL_RE = re.compile(r"autoresearch:run=(\d{1,15}):issue=(\d{1,15}):kind=(correctness|benchmark)")


def check_name(kind: str) -> str:
    return f"autoresearch / {kind}"


def external_id(run: Run, kind: str) -> str:
    return f"autoresearch:run={int(run.id)}:issue={int(run.issue_number)}:kind={kind}"


def parse_external_id(value: Any) -> tuple[int, int, str] | None:
    """(run id, issue number, kind) of a check run this bot created, else None."""
    m = EXTERNAL_RE.fullmatch(value) if isinstance(value, str) else None
    return (int(m.group(1)), int(m.group(2)), m.group(3)) if m else None


def details_url(pipeline: Pipeline, run_id: int) -> str | None:
    base = (pipeline.settings.public_url or "").rstrip("/")
    return f"{base}/runs/{int(run_id)}" if base else None


def _key(kind: str, sha: str) -> str:
    return f"{PREFIX}{kind}:{sha}"


def supported(pipeline: Pipeline) -> bool:
    """Whether the forge makes check runs (a test's minimal forge may not)."""
    return hasattr(pipeline.forge, "create_check_run") and hasattr(pipeline.forge, "update_check_run")


def records(pipeline: Pipeline, run_id: int) -> dict[str, dict[str, Any]]:
    """The run's check runs by side-effect key (an older bot recorded the bare id: completed then)."""
    out = {}
    for key, value in pipeline.store.side_effects(run_id, PREFIX).items():
        if isinstance(value, int):
            kind, _, sha = key[len(PREFIX) :].partition(":")
            value = {"id": value, "kind": kind, "sha": sha, "status": "completed"}
        out[key] = value
    return out


DOING = {  # what an open check run says the run is doing, per phase
    Phase.BENCHMARKING: "Benchmarking",
    Phase.DECIDING: "Deciding (statistics)",
    Phase.VERIFYING: "Verifying (the winners stacked and measured again)",
    Phase.REVIEWING: "Reviewing the wave",
    Phase.PUBLISHING: "Publishing",
}


def _phase_output(run: Run, record: Mapping[str, Any]) -> tuple[str, str]:
    what = record.get("candidate") or "this commit"
    doing = DOING.get(run.state, title(run.state))
    return (
        f"{doing}: {what}",
        f"Run #{int(run.id)} (issue #{int(run.issue_number)}): {doing.lower()}. This check completes "
        "with the verdict when the run has measured this commit; the Details link shows the run live.",
    )


# ---------------------------------------------------------------------------------------------- lifecycle


def open_checks(pipeline: Pipeline, run: Run, targets: Sequence[Mapping[str, Any]]) -> None:
    """Create `queued` check runs for each target ({"sha", "candidate", "wave", "experiment"}) that has
    none yet. A commit the repository lacks is recorded as skipped (retried by `finish`)."""
    if not supported(pipeline):
        return
    store, forge = pipeline.store, pipeline.forge
    existing = records(pipeline, run.id)
    for t in targets:
        for kind in KINDS:
            key = _key(kind, t["sha"])
            rec = existing.get(key)
            if rec is not None and rec.get("id") is not None:
                continue
            base = {
                "kind": kind,
                "sha": t["sha"],
                "candidate": t.get("candidate"),
                "wave": int(t.get("wave") or 1),
                "experiment": t.get("experiment"),
            }
            try:
                cid = forge.create_check_run(
                    run.repo,
                    t["sha"],
                    check_name(kind),
                    "queued",
                    title=f"Queued: {t.get('candidate') or 'this commit'}",
                    summary=f"Run #{int(run.id)} measures this commit next.",
                    details_url=details_url(pipeline, run.id),
                    external_id=external_id(run, kind),
                )
            except RateLimited:
                raise
            except ForgeError as exc:  # e.g. 422: the commit is only in a fork; no check run for it yet
                store.put_side_effect(run.id, key, {**base, "id": None, "skipped": forge.redact(exc.message)})
                store.add_event(run.id, "checks", f"no {kind} check run on {t['sha'][:10]}: {exc.message}")
                continue
            store.put_side_effect(run.id, key, {**base, "id": cid, "status": "queued", "phase": None})


def on_phase(pipeline: Pipeline, run: Run, status: str = "in_progress") -> None:
    """The run entered a phase (or its batch started): every open check run says so (once per phase)."""
    if run.state not in DOING:
        return
    for key, rec in records(pipeline, run.id).items():
        if rec.get("id") is None or rec.get("status") == "completed":
            continue
        if rec.get("phase") == run.state and rec.get("status") == status:
            continue
        head, summary = _phase_output(run, rec)
        pipeline.forge.update_check_run(run.repo, int(rec["id"]), status=status, title=head, summary=summary)
        pipeline.store.put_side_effect(run.id, key, {**rec, "status": status, "phase": str(run.state)})


def finish(
    pipeline: Pipeline,
    run: Run,
    target: Mapping[str, Any],
    decision: Mapping[str, Any] | None,
    candidates: Sequence[Mapping[str, Any]],
    results: Mapping[str, Any] | None,
) -> None:
    """Complete the two check runs of `target` ({"sha", "candidate"}) from the decision that measured it:
    created first when there are none (a stack made in verification, a fork's commit a PR brought in)."""
    from . import report

    if not supported(pipeline):
        return
    open_checks(pipeline, run, [target])
    recs = records(pipeline, run.id)
    for kind in KINDS:
        key = _key(kind, target["sha"])
        rec = recs.get(key) or {}
        if rec.get("id") is None or rec.get("status") == "completed":
            continue
        if rec.get("status") == "queued":  # GitHub's order: queued -> in_progress -> completed
            pipeline.forge.update_check_run(run.repo, int(rec["id"]), status="in_progress")
        conclusion, head, summary = report.check_run_output(kind, decision, target["candidate"], candidates)
        if kind == "correctness":
            summary = correctness_summary(decision, results, target["candidate"])
        pipeline.forge.update_check_run(
            run.repo, int(rec["id"]), conclusion=conclusion, title=head, summary=summary
        )
        pipeline.store.put_side_effect(run.id, key, {**rec, "status": "completed", "conclusion": conclusion})


def finish_open(pipeline: Pipeline, run: Run, conclusion: str, head: str, summary: str) -> None:
    """Complete every check run the run left open (it failed, was cancelled, or measured nothing more)."""
    if not supported(pipeline):
        return
    for key, rec in records(pipeline, run.id).items():
        if rec.get("id") is None or rec.get("status") == "completed":
            continue
        try:
            if rec.get("status") == "queued":
                pipeline.forge.update_check_run(run.repo, int(rec["id"]), status="in_progress")
            pipeline.forge.update_check_run(
                run.repo, int(rec["id"]), conclusion=conclusion, title=head, summary=summary
            )
        except RateLimited:
            raise
        except ForgeError as exc:  # deleted meanwhile, or no permission any more: nothing left to complete
            log.warning("run %s: check run %s not completed: %s", run.id, rec["id"], exc)
        pipeline.store.put_side_effect(run.id, key, {**rec, "status": "completed", "conclusion": conclusion})


def finish_measured(ctx: Any, decisions: Mapping[int, Mapping[str, Any] | None]) -> None:
    """Complete the open check runs of candidates from their wave's decision (`decisions`: wave -> main
    decision) and that wave's main results."""
    from .artifacts import CANDIDATES
    from .waves import key as wave_key

    pipeline, run = ctx.pipeline, ctx.run
    for rec in list(records(pipeline, run.id).values()):
        if rec.get("id") is None or rec.get("status") == "completed" or rec["kind"] != "benchmark":
            continue
        wave = int(rec.get("wave") or 1)
        decision = decisions.get(wave)
        if decision is None:
            continue
        results = ctx.artifacts.results(rec.get("experiment") or wave_key("main", wave))
        cands = ctx.artifacts.get(CANDIDATES, wave)
        finish(pipeline, run, rec, decision, cands, results)


# ---------------------------------------------------------------------------------------------- output


def correctness_summary(
    decision: Mapping[str, Any] | None, results: Mapping[str, Any] | None, candidate: str
) -> str:
    """The checks that ran on the candidate, per architecture: the build, then each validation command."""
    archs = sorted((results or {}).keys())
    table: dict[str, dict[str, str]] = {}
    order: list[str] = []

    def put(check: str, arch: str, mark: str) -> None:
        if check not in table:
            table[check] = {}
            order.append(check)
        table[check][arch] = mark

    for arch in archs:
        variant = ((results or {}).get(arch) or {}).get("variants", {}).get(candidate)
        if not variant:
            put("build", arch, "not run")
            continue
        build = variant.get("build") or {}
        built = bool(build.get("ok", variant.get("status") != "build_failed"))
        put("build", arch, "✅ pass" if built else "❌ fail")
        checks = (variant.get("validation") or {}).get("checks") or []
        if not checks and built:
            put("validation", arch, "none configured")
        for c in checks:
            put(f"`{_cell(c.get('name'))}`", arch, "✅ pass" if c.get("ok") else "❌ fail")
    if not table:
        return "No result for this commit."
    lines = [
        "| check | " + " | ".join(archs) + " |",
        "|---|" + "---|" * len(archs),
    ]
    lines += [f"| {name} | " + " | ".join(table[name].get(a, "-") for a in archs) + " |" for name in order]
    return "Checks run on this commit (build, then each `validate` command):\n\n" + "\n".join(lines)


def _cell(value: Any) -> str:
    text = str(value or "?").replace("|", "/").replace("`", "'").replace("\n", " ")
    return text[:80]
