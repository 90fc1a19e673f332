"""The multi-wave loop's bookkeeping: per-wave artifact keys, wave records, feedback for the next wave, the
path.

A run of kind "issue" goes research -> candidates -> benchmarks -> decision -> verification -> review, and the
review either starts the next wave (back to research) or ends the loop (on to publishing). Wave n's candidates
are built on the running best (the verified stack of the waves before it) and measured against it: hill
climbing on verified steps. Everything a wave produces is stored under its own keys, so a worker killed at any
point resumes the wave where it was (see bot/pipeline.py):

- wave 1 keeps the historical keys (`dossier`, `candidates`, `decision`, `results:main`, `stack`, ...);
- wave n >= 2 uses `<key>@<n>` (`dossier@2`, `results:main@2`, experiment `main@2`, ...);
- `wave:<n>` is the review of wave n (written once): what was kept, the running best, continue or stop and
  why;
- `loop` records why the loop stopped.

The current wave is derived from the store (1 + the number of reviews that said "continue"), never counted in
memory. Pure functions only; the stages in bot/stages.py do the I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .artifacts import wave_key as key  # noqa: F401  (waves.key: per-wave names)
from .artifacts import wave_review_key

STOP_CODES = ("no_improvement", "max_waves", "no_llm", "budget")
MIN_WAVE_TOKENS = 20_000  # a wave needs at least a synthesis and a coding session


def current(get: Callable[[str], Any]) -> int:
    """1 + the number of consecutive reviews that said "continue" (get: artifact getter)."""
    n = 1
    while (get(wave_review_key(n)) or {}).get("next") == "continue":
        n += 1
    return n


def records(get: Callable[[str], Any]) -> list[dict[str, Any]]:
    """The stored wave reviews, in order."""
    out, n = [], 1
    while (rec := get(wave_review_key(n))) is not None:
        out.append(rec)
        n += 1
    return out


def best_after(recs: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The running best after the last review: {"sha", "branch", "wave", "label", "path"}; None when no wave
    kept anything (the baseline is still the best)."""
    best = (recs[-1].get("best") if recs else None) or None
    return dict(best) if best and best.get("wave") else None


def kept_of(
    choice: Mapping[str, Any] | None, stack: Mapping[str, Any] | None, candidates: Sequence[Mapping[str, Any]]
) -> dict[str, Any] | None:
    """What a wave keeps from its verification choice: the stack's parts or the single winner."""
    choice = choice or {}
    by_name = {c["name"]: c for c in candidates}
    if choice.get("kind") == "stack" and stack and stack.get("sha"):
        names = list(stack.get("applied") or [])
        titles = [str(by_name.get(n, {}).get("title") or n) for n in names]
        return {
            "kind": "stack",
            "names": names,
            "titles": titles,
            "sha": stack["sha"],
            "branch": stack.get("branch"),
            "speedup": choice.get("speedup"),
        }
    if choice.get("kind") == "single" and choice.get("candidate") in by_name:
        c = by_name[choice["candidate"]]
        return {
            "kind": "single",
            "names": [c["name"]],
            "titles": [str(c.get("title") or c["name"])],
            "sha": c["sha"],
            "branch": c.get("branch"),
            "speedup": choice.get("speedup"),
        }
    return None


def describe_kept(wave: int, kept: Mapping[str, Any]) -> str:
    titles = "; ".join(kept.get("titles") or kept.get("names") or [])
    return f"wave {wave}'s {titles}"


# ---------------------------------------------------------------- feedback for the next wave


def _fmt(v: Any, digits: int = 3) -> str:
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) and math.isfinite(v) else "?"


def measured_table(decision: Mapping[str, Any] | None, candidates: Sequence[Mapping[str, Any]]) -> str:
    """Plain text: per candidate x arch on the target metric, the verdict and both tiers' figures."""
    decision = decision or {}
    target = decision.get("target")
    by_name = {c["name"]: c for c in candidates}
    lines = []
    for r in decision.get("rows") or []:
        if r.get("metric") != target:
            continue
        c = r.get("comparison") or {}
        sim = r.get("simulated") or {}
        title = by_name.get(r["candidate"], {}).get("title") or r["candidate"]
        simtxt = (
            f"simulated {_fmt(sim.get('speedup'))}x estimated cycles "
            f"({sim.get('baseline_cycles')} -> {sim.get('candidate_cycles')})"
            if "speedup" in sim
            else f"simulated: {sim.get('error') or 'not measured'}"
        )
        walltxt = (
            f"wall {_fmt(c.get('speedup'))}x [{_fmt(c.get('ci_low'))}, {_fmt(c.get('ci_high'))}]"
            if c
            else "wall: not measured"
        )
        corr = r.get("correctness") or {}
        lines.append(
            f"- {r['candidate']} ({title}) on {r.get('arch')}: {r.get('verdict')}; {simtxt}; "
            f"{walltxt}; "
            f"checks {corr.get('passed', 0)}/{corr.get('total', 0)}"
            + (f"; note: {r['note']}" if r.get("note") else "")
        )
    winners = decision.get("winners") or []
    lines.append(f"Verified winners: {', '.join(winners) if winners else 'none'}.")
    return "\n".join(lines)


def function_diffs(decision: Mapping[str, Any] | None) -> str:
    """Plain text: where each candidate's simulated cost moved, per function (the differential profile)."""
    decision = decision or {}
    out = []
    for r in decision.get("rows") or []:
        funcs = (r.get("simulated") or {}).get("functions") or []
        if r.get("metric") != decision.get("target") or not funcs:
            continue
        out.append(f"{r['candidate']} on {r.get('arch')}:")
        for f in funcs:
            ch = f.get("change")
            out.append(
                f"  {f['name']}: {f['baseline']} -> {f['candidate']} estimated cycles "
                f"({'new' if ch is None else f'{100 * ch:+.1f}%'}; "
                f"{100 * float(f.get('share') or 0):+.2f}% "
                "of the whole)"
            )
    return "\n".join(out) or "(no per-function figures: the simulated tier did not run)"


def failures_text(failures: Sequence[Mapping[str, Any]], lines: int = 25) -> str:
    """Build and validation failures with the tail of their logs."""
    out = []
    for f in failures:
        log = "\n".join(str(f.get("log") or "").splitlines()[-lines:])
        out.append(f"{f.get('title')}: {f.get('message')}" + (f"\n{log}" if log.strip() else ""))
    return "\n\n".join(out) or "(none: every candidate built and passed the checks)"


def path_text(recs: Sequence[Mapping[str, Any]]) -> str:
    """The running best as a sentence per wave."""
    lines = []
    for rec in recs:
        kept = rec.get("kept")
        on = (rec.get("base") or {}).get("label") or "the baseline"
        if kept:
            lines.append(
                f"Wave {rec['wave']} (built on {on}) kept {', '.join(kept['titles'])} "
                f"({_fmt(kept.get('speedup'))}x against its base)."
            )
        else:
            lines.append(f"Wave {rec['wave']} (built on {on}) kept nothing.")
    return "\n".join(lines) or "(first wave)"


def stop_reasons(
    *, wave: int, kept: bool, choice_reason: str, max_waves: int, has_llm: bool, budget_problem: str | None
) -> tuple[str | None, str]:
    """(stop code or None to continue, the reason in words). All reasons that apply are named."""
    found: list[tuple[str, str]] = []
    if not kept:
        found.append(("no_improvement", f"wave {wave} brought no verified improvement ({choice_reason})"))
    if wave >= max_waves:
        found.append(("max_waves", f"research.max_waves ({max_waves}) reached"))
    if not has_llm:
        found.append(
            (
                "no_llm",
                "no LLM is configured (set ANTHROPIC_API_KEY): a next wave needs new "
                "hypotheses "
                "written from the measured results, and the fork commits and branches were "
                "measured in this wave",
            )
        )
    if budget_problem:
        found.append(("budget", budget_problem))
    if not found:
        return None, f"wave {wave} kept a verified improvement; wave {wave + 1} builds on it"
    return found[0][0], "; ".join(r for _, r in found)
