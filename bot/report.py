"""What maintainers see: the status comment, the PR body and check-run outputs (pure functions, no I/O).

Inputs are the store's artifacts: a decision (`Decision.to_dict()` from bot.experiments.stats), the
candidates list, costs, the dossier markdown and failure records. Untrusted text (titles, hypotheses,
logs, dossier) is cleaned: HTML comments removed (nobody can forge the status marker), table cells
escaped, @mentions defused, Python tracebacks reduced to their message.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from . import commands
from .experiments.stats.words import QUIET
from .model import BASIS_LABEL, CHECKLIST, VERDICTS, Phase, Verdict, checklist_item
from .model import FAILED_VERDICTS as MODEL_FAILED_VERDICTS
from .text import for_comment as clean  # untrusted text for a comment: no markers, pings, hidden text
from .text import inert

# the checklist, the verdicts' labels, icons and sort order: from the run model's tables (bot/model.py)
STAGES: tuple[tuple[str, str], ...] = CHECKLIST
VERDICT_LABEL = {str(v): info.label for v, info in VERDICTS.items()}
VERDICT_ICON = {str(v): info.icon for v, info in VERDICTS.items()}
VERDICT_ORDER = tuple(str(v) for v in Verdict)
FAILED_VERDICTS = {str(v) for v in MODEL_FAILED_VERDICTS}
BASIS = {str(b): label for b, label in BASIS_LABEL.items()}


def verdict_label(r: Mapping[str, Any]) -> str:
    """A row's verdict in words, with what decided it (model.Basis) where the row does not already say it:
    `faster (hardware only)`, `no change (confirmed on hardware)`. The simulated tier (and, without one, wall
    time) is the default that the table's columns show."""
    v = str(r.get("verdict", Verdict.MISSING))
    label = VERDICT_LABEL.get(v, cell(v, 20))
    basis = BASIS.get(str(r.get("basis") or ""))
    if not basis or basis == label or r.get("basis") in ("simulated", "wall"):
        return label
    if str(r.get("note") or "").startswith(basis):
        return label
    return f"{label} ({basis})"


DEFAULT_PREFIX = "/autoresearch"  # Settings.command_prefix's default
DISCLAIMER = (
    "This patch was written or assembled by an automated agent (autoresearch-bot). It must be reviewed "
    "by a maintainer before merging; the bot never merges."
)

_TRACE_START = "Traceback (most recent call last):"
_FRAME_RE = re.compile(r'^\s*File ".*", line \d+')
_EXC_RE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit|Failed|Warning)):\s*(.*)$")
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")


# --------------------------------------------------------------------------- cleaning untrusted text


def marker(run_id: int) -> str:
    """Hidden marker by which the bot finds its own status comment again."""
    return f"<!-- autoresearch:run:{int(run_id)} -->"


def pr_marker(run_id: int) -> str:
    return f"<!-- autoresearch:pr:{int(run_id)} -->"


def cell(text: Any, limit: int = 140) -> str:
    """One markdown table cell from untrusted text."""
    s = " ".join(clean(text).split())
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return inert(s)  # untrusted titles render as text: no links, images or HTML


def strip_traceback(text: str) -> str:
    """Replace Python tracebacks by their final message; drop stray `File "...", line N` frames."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == _TRACE_START:
            i += 1
            while i < len(lines) and (not lines[i].strip() or lines[i][:1].isspace()):
                i += 1
            if i < len(lines):
                m = _EXC_RE.match(lines[i].strip())
                out.append(m.group(3) if m else lines[i])
            i += 1
            continue
        if _FRAME_RE.match(line):
            i += (
                2
                if i + 1 < len(lines) and lines[i + 1][:1].isspace() and not _FRAME_RE.match(lines[i + 1])
                else 1
            )
            continue
        m = _EXC_RE.match(line.strip())
        out.append(m.group(3) if m and "." in m.group(1) else line)
        i += 1
    return "\n".join(out)


def log_tail(text: Any, lines: int = 20) -> str:
    """Last lines of a log, traceback-free and safe inside a fenced block."""
    body = strip_traceback(clean(text)).rstrip()
    kept = [ln.rstrip() for ln in body.splitlines()][-lines:]
    return "\n".join(kept).replace("```", "'''")


def _block(text: str) -> str:
    return f"```text\n{text}\n```" if text.strip() else "_(empty log)_"


def _quote(text: Any) -> str:
    body = clean(text).strip()
    return "\n".join("> " + inert(ln) for ln in body.splitlines()) if body else "> _(none given)_"


# --------------------------------------------------------------------------- formatting numbers

# a metric's unit when the project config gives none: from the name's suffix (`attn_ms`, `tg_tok_s`)
_UNIT_SUFFIXES = (
    ("_tokens_per_s", "tokens/s"),
    ("_tok_s", "tokens/s"),
    ("_t_s", "tokens/s"),
    ("_ms", "ms"),
    ("_us", "µs"),
    ("_ns", "ns"),
    ("_s", "s"),
    ("_cycles", "cycles"),
    ("_bytes", "B"),
)


def metric_unit(decision: Mapping[str, Any] | None, metric: Any) -> str:
    """The metric's unit: the project's `benchmark.metrics[].unit` (bot.stages puts them in the decision as
    `units`), else what its name ends in, else none."""
    given = ((decision or {}).get("units") or {}).get(str(metric))
    if given:
        return " ".join(clean(given).split())[:20]
    for suffix, unit in _UNIT_SUFFIXES:
        if str(metric).lower().endswith(suffix):
            return unit
    return ""


def with_units(decision: Mapping[str, Any] | None, project: Mapping[str, Any] | None) -> dict[str, Any]:
    """The decision with the project's metric units (`{metric: unit}`) for the report to show."""
    metrics = ((project or {}).get("benchmark") or {}).get("metrics") or []
    units = {str(m.get("name")): str(m.get("unit") or "") for m in metrics if isinstance(m, Mapping)}
    return {**(decision or {}), "units": {k: v for k, v in units.items() if v}}


def fmt_speedup(comp: Mapping[str, Any] | None) -> str:
    """`1.23× [1.18–1.29×]`: the wall-time ratio (above 1 is better) and its 95% interval."""
    if not comp or not _finite(comp.get("speedup")):
        return "—"
    lo, hi = comp.get("ci_low"), comp.get("ci_high")
    ci = f" [{lo:.2f}–{hi:.2f}×]" if _finite(lo) and _finite(hi) else ""
    return f"{comp['speedup']:.2f}×{ci}"


def fmt_p(p: Any) -> str:
    if not _finite(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def fmt_value(v: Any) -> str:
    return f"{v:.4g}" if _finite(v) else "—"


def fmt_quantity(v: Any, unit: str) -> str:
    """A measured value with its unit (`74.6 ms`); large counts with an SI prefix (`1.49 G cycles`)."""
    if not _finite(v):
        return "—"
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale and unit in ("cycles", "instructions"):
            return f"{v / scale:.3g}{prefix} {unit}"
    return f"{v:.4g} {unit}".rstrip()


def fmt_usd(v: Any) -> str:
    return f"${v:.2f}" if _finite(v) else "—"


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _pct(a: Any, b: Any) -> float | None:
    """How much smaller b is than a, in percent (positive: fewer)."""
    return 100.0 * (a - b) / a if _finite(a) and _finite(b) and a else None


# --------------------------------------------------------------------------- the tables


def _rows(decision: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    return list((decision or {}).get("rows") or [])


def tally(verdict: Any) -> str:
    """The bucket a verdict counts in on the results line: a failed measurement of any kind is `broken`,
    every other verdict its own label (a new Verdict in bot/model.py's table counts without a change here)."""
    try:
        info = VERDICTS[Verdict(str(verdict))]
    except ValueError:
        return "broken"
    return "broken" if info.failed else info.label


# the results line always names these, zero or not; any other bucket only when it occurs
TALLY_ALWAYS = ("faster", "slower", "no change", "broken", "noisy")


def sort_rows(rows: Iterable[Mapping[str, Any]], target: str = "") -> list[Mapping[str, Any]]:
    """By verdict (faster first, failures last), then by effect (largest speedup first)."""

    def key(r: Mapping[str, Any]) -> tuple:
        v = r.get("verdict", Verdict.MISSING)
        order = VERDICT_ORDER.index(v) if v in VERDICT_ORDER else len(VERDICT_ORDER)
        s = _effect(r)
        return (
            order,
            r.get("metric") != target,
            -(s if _finite(s) else 0.0),
            str(r.get("candidate")),
            str(r.get("arch")),
            str(r.get("metric")),
        )

    return sorted(rows, key=key)


def _effect(r: Mapping[str, Any]) -> float | None:
    """A row's effect for sorting and choosing the best: the simulated ratio (exact) where there is one."""
    sim = (r.get("simulated") or {}).get("speedup")
    return sim if _finite(sim) else (r.get("comparison") or {}).get("speedup")


def _collapse_failures(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """A failed candidate gets one row per arch, not one per metric."""
    seen: set[tuple[str, str]] = set()
    out = []
    for r in rows:
        if r.get("verdict") in FAILED_VERDICTS and not r.get("comparison"):
            k = (str(r.get("candidate")), str(r.get("arch")))
            if k in seen:
                continue
            seen.add(k)
            r = {**r, "metric": "all"}
        out.append(r)
    return out


def target_rows(
    decision: Mapping[str, Any] | None, only: Iterable[str] | None = None
) -> list[Mapping[str, Any]]:
    """One row per candidate × arch: the target metric's, or the failure's for a candidate with none."""
    target = str((decision or {}).get("target") or "")
    keep = set(only) if only is not None else None
    rows = [r for r in _rows(decision) if keep is None or r.get("candidate") in keep]
    have = {(r.get("candidate"), r.get("arch")) for r in rows if r.get("metric") == target}
    out = [r for r in rows if r.get("metric") == target]
    out += [
        r
        for r in _collapse_failures(sort_rows(rows, target))
        if r.get("metric") == "all" and (r.get("candidate"), r.get("arch")) not in have
    ]
    return sort_rows(out, target)


def counts(decision: Mapping[str, Any] | None) -> dict[str, int]:
    """How many candidate × arch results fall in each bucket (target metric)."""
    out = {k: 0 for k in TALLY_ALWAYS}
    for r in target_rows(decision):
        k = tally(r.get("verdict"))
        out[k] = out.get(k, 0) + 1
    return out


def counts_line(decision: Mapping[str, Any] | None) -> str:
    """`**2 faster** · 0 slower · 2 no change · 1 broken · 0 noisy`, in the Verdict table's order."""
    c = counts(decision)
    order = list(dict.fromkeys([*TALLY_ALWAYS, *(tally(v) for v in Verdict), *c]))
    return " · ".join(f"**{c[k]} {k}**" if c[k] else f"{c[k]} {k}" for k in order if k in c)


def correctness_text(corr: Mapping[str, Any] | None, verdict: str = "") -> str:
    c = corr or {}
    if c.get("summary"):
        mark = "✅" if c.get("validation_ok") else "❌"
        return f"{mark} {cell(c['summary'], 80)}"
    if verdict == Verdict.BUILD_FAILED or c.get("build_ok") is False:
        return "not built"
    if c.get("validation_ok"):
        total = c.get("total", 0)
        return f"✅ {c.get('passed', total)}/{total} checks" if total else "✅ built"
    failed = c.get("failed") or []
    if failed:
        return "❌ failed: " + ", ".join(cell(f, 40) for f in failed[:3])
    return "—"


def _branch_url(links: Mapping[str, Any] | None, branch: str | None) -> str | None:
    base = (links or {}).get("repo")
    if not base or not branch:
        return None
    return f"{str(base).rstrip('/')}/tree/{quote(branch, safe='/')}"


def _candidate_cell(
    name: str, by_name: Mapping[str, Mapping[str, Any]], links: Mapping[str, Any] | None
) -> str:
    cand = by_name.get(name) or {}
    label = f"`{cell(name, 60).replace(chr(92) + '`', '')}`"
    url = _branch_url(links, cand.get("branch"))
    return f"[{label}]({url})" if url else label


def _verdict_cell(r: Mapping[str, Any]) -> str:
    v = str(r.get("verdict", Verdict.MISSING))
    text = f"{VERDICT_ICON.get(v, '')} {verdict_label(r)}".strip()
    if v in FAILED_VERDICTS:
        corr = r.get("correctness") or {}
        failed = corr.get("failed") or []
        if failed:
            text += " (" + ", ".join(cell(f, 30) for f in failed[:2]) + ")"
    return text


def _values_cell(c: Mapping[str, Any], unit: str) -> str:
    """`86.86 ms → 74.6 ms`."""
    if not c or not _finite(c.get("baseline_median")):
        return "—"
    return f"{fmt_quantity(c.get('baseline_median'), unit)} → {fmt_quantity(c.get('candidate_median'), unit)}"


def sim_cell(sim: Mapping[str, Any] | None) -> str:
    """The simulated tier's figure, exact so no interval: `10.4% fewer cycles` (estimated by cachegrind)."""
    if not sim:
        return "—"
    if "baseline_cycles" not in sim:
        return f"— ({cell(sim.get('error') or 'unavailable', 60)})"
    fewer = _pct(sim.get("baseline_cycles"), sim.get("candidate_cycles"))
    if fewer is None:
        return "—"
    if abs(fewer) < 0.05:
        return "0.0% cycles"
    return f"{abs(fewer):.1f}% {'fewer' if fewer > 0 else 'more'} cycles"


def summary_table(
    decision: Mapping[str, Any] | None,
    candidates: Sequence[Mapping[str, Any]] = (),
    links: Mapping[str, Any] | None = None,
    only: Iterable[str] | None = None,
) -> str:
    """The table at a glance: one row per candidate (× arch where there are several) on the target metric,
    at most 6 columns, a unit on every number."""
    rows = target_rows(decision, only)
    if not rows:
        return "_No measurements yet._"
    by_name = {str(c.get("name")): c for c in candidates}
    target = str((decision or {}).get("target") or "")
    unit = metric_unit(decision, target)
    several = len({str(r.get("arch")) for r in rows}) > 1
    head = ["candidate", *(["arch"] if several else []), "verdict", f"`{cell(target, 40)}`", "wall time"]
    head.append("simulated")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        c = r.get("comparison") or {}
        cells = [_candidate_cell(str(r.get("candidate")), by_name, links)]
        if several:
            cells.append(cell(r.get("arch"), 20))
        cells += [
            _verdict_cell(r),
            _values_cell(c, unit),
            fmt_speedup(c or None),
            sim_cell(r.get("simulated")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def benchmark_table(
    decision: Mapping[str, Any] | None,
    candidates: Sequence[Mapping[str, Any]] = (),
    costs: Mapping[str, Any] | None = None,
    links: Mapping[str, Any] | None = None,
    only: Iterable[str] | None = None,
) -> str:
    """Every metric: one row per candidate × arch × metric (failed candidates: one row per arch), 6 columns.
    `costs` is accepted for callers of the old 11-column table; the costs are on the cost line now."""
    rows = _rows(decision)
    if only is not None:
        keep = set(only)
        rows = [r for r in rows if r.get("candidate") in keep]
    if not rows:
        return "_No measurements yet._"
    by_name = {str(c.get("name")): c for c in candidates}
    target = str((decision or {}).get("target") or "")
    lines = [
        "| candidate | arch | metric | baseline → candidate | wall time [95% CI] | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for r in _collapse_failures(sort_rows(rows, target)):
        c = r.get("comparison") or {}
        metric = cell(r.get("metric"), 40) + (" 🎯" if r.get("metric") == target else "")
        wall = fmt_speedup(c or None)
        if _finite(c.get("p_adjusted")):
            wall += f", p = {fmt_p(c.get('p_adjusted'))}" if c["p_adjusted"] >= 0.001 else ", p < 0.001"
        lines.append(
            " | ".join(
                [
                    "| " + _candidate_cell(str(r.get("candidate")), by_name, links),
                    cell(r.get("arch"), 20),
                    metric,
                    _values_cell(c, metric_unit(decision, r.get("metric"))),
                    wall,
                    _verdict_cell(r) + " |",
                ]
            )
        )
    return "\n".join(lines)


def row_notes(decision: Mapping[str, Any] | None, only: Iterable[str] | None = None) -> list[str]:
    """What the tiers said about each target row (`fork-x on x86: confirmed on hardware`), for the method
    section: the table has no room for sentences."""
    out = []
    for r in target_rows(decision, only):
        if r.get("note"):
            out.append(
                f"`{cell(r.get('candidate'), 60)}` on {cell(r.get('arch'), 20)}: {cell(r['note'], 300)}"
            )
    return out


def function_diff_section(decision: Mapping[str, Any] | None, only: Iterable[str] | None = None) -> str:
    """Collapsed: per candidate × arch, the functions whose simulated cost changed most."""
    keep = set(only) if only is not None else None
    blocks = []
    for r in _rows(decision):
        sim = r.get("simulated") or {}
        funcs = sim.get("functions") or []
        if not funcs or (keep is not None and r.get("candidate") not in keep):
            continue
        lines = [
            f"**`{cell(r.get('candidate'), 60)}` on {cell(r.get('arch'), 20)}** "
            f"({cell(sim.get('isa') or '', 40)}; {fmt_quantity(sim.get('baseline_cycles'), 'cycles')} → "
            f"{fmt_quantity(sim.get('candidate_cycles'), 'cycles')}, estimated)",
            "",
            "| function | baseline | candidate | change | of the total |",
            "|---|---:|---:|---:|---:|",
        ]
        for f in funcs:
            ch = f.get("change")
            fname = cell(f.get("name"), 60).replace(chr(96), "")
            base, cand = fmt_quantity(f.get("baseline"), "cycles"), fmt_quantity(f.get("candidate"), "cycles")
            change = "new" if ch is None else f"{100 * ch:+.1f}%"
            lines.append(
                f"| `{fname}` | {base} | {cand} | {change} | {100 * float(f.get('share') or 0):+.2f}% |"
            )
        blocks.append("\n".join(lines))
    if not blocks:
        return ""
    return "\n".join(
        [
            "<details><summary>Where the simulated cost moved (per function)</summary>",
            "",
            "\n\n".join(blocks),
            "",
            "</details>",
        ]
    )


def _mermaid_label(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9 ._+/-]", "", text)[:40] or "?"


def speedup_chart(decision: Mapping[str, Any] | None) -> str:
    """Mermaid xychart-beta bars: target-metric speedup per candidate per arch, with the 1.0 line."""
    target = str((decision or {}).get("target") or "")
    rows = [
        r
        for r in sort_rows(_rows(decision), target)
        if r.get("metric") == target and _finite((r.get("comparison") or {}).get("speedup"))
    ]
    if not rows:
        return ""
    labels = [_mermaid_label(f"{r['candidate']} {r['arch']}") for r in rows]
    values = [round(float(r["comparison"]["speedup"]), 3) for r in rows]
    top = max(values + [1.0])
    top = math.ceil(top * 1.15 * 4) / 4
    x_axis = ", ".join(f'"{lb}"' for lb in labels)
    return "\n".join(
        [
            "```mermaid",
            "xychart-beta",
            f'    title "Wall-time speedup on {_mermaid_label(target)} (above 1 is better)"',
            f"    x-axis [{x_axis}]",
            f'    y-axis "speedup" 0 --> {top:g}',
            f"    bar [{', '.join(f'{v:g}' for v in values)}]",
            f"    line [{', '.join('1' for _ in values)}]",
            "```",
        ]
    )


def best_effect(decision: Mapping[str, Any] | None, only: Iterable[str] | None = None) -> str:
    """The best verified effect in words, with its unit and the tier that says so: `fork-x (idea): 10.4%
    fewer estimated cycles on attn_ms (simulated, exact); wall time 1.16× [1.03–1.26×] agrees`."""
    winners = set((decision or {}).get("winners") or [])
    if only is not None:
        winners &= set(only)
    rows = [r for r in target_rows(decision) if r.get("candidate") in winners and r.get("comparison")]
    if not rows:
        return ""
    r = max(rows, key=lambda r: _effect(r) or 0.0)
    return _effect_words(decision, r)


def _effect_words(decision: Mapping[str, Any] | None, r: Mapping[str, Any]) -> str:
    c = r.get("comparison") or {}
    sim = r.get("simulated") or {}
    metric = cell(r.get("metric"), 40)
    wall = fmt_speedup(c or None)
    if _finite(sim.get("speedup")):
        fewer = _pct(sim.get("baseline_cycles"), sim.get("candidate_cycles")) or 0.0
        said = "confirms" if r.get("wall_verdict") == Verdict.FASTER else "agrees (not significant alone)"
        return (
            f"{abs(fewer):.1f}% {'fewer' if fewer >= 0 else 'more'} estimated cycles on `{metric}` "
            f"(simulated, exact); wall time {wall} {said}"
        )
    unit = metric_unit(decision, r.get("metric"))
    return (
        f"`{metric}` {_values_cell(c, unit)}, wall time {wall} (paired wall time, 95% CI; no simulated tier)"
    )


# --------------------------------------------------------------------------- failures


def failures_from_results(results: Mapping[str, Mapping[str, Any]] | None) -> list[dict[str, str]]:
    """Failure records ({title, message, log}) from driver results, one per failed variant per arch."""
    out: list[dict[str, str]] = []
    for arch, res in (results or {}).items():
        for err in res.get("errors") or []:
            out.append({"title": f"{arch}: benchmark run", "message": str(err), "log": ""})
        for name, v in (res.get("variants") or {}).items():
            status = v.get("status")
            if status == "build_failed":
                out.append(
                    {
                        "title": f"{name} on {arch}: build failed",
                        "message": "the build commands exited with an error",
                        "log": (v.get("build") or {}).get("log_tail") or v.get("error", ""),
                    }
                )
            elif status == "validation_failed":
                bad = [c for c in (v.get("validation") or {}).get("checks") or [] if not c.get("ok")]
                names = ", ".join(str(c.get("name")) for c in bad) or "validation"
                out.append(
                    {
                        "title": f"{name} on {arch}: correctness check failed",
                        "message": f"{names} reported wrong results, so it was not benchmarked",
                        "log": "\n".join(str(c.get("detail", "")) for c in bad) or v.get("error", ""),
                    }
                )
            elif status == "bench_failed":
                out.append(
                    {
                        "title": f"{name} on {arch}: benchmark failed",
                        "message": "the benchmark command failed or printed no METRIC line",
                        "log": v.get("error", ""),
                    }
                )
    return out


def failures_section(failures: Sequence[Mapping[str, Any]] | None, lines: int = 20) -> str:
    if not failures:
        return ""
    parts = ["### What failed"]
    for f in failures:
        title = cell(f.get("title") or "failure", 120)
        message = " ".join(strip_traceback(clean(f.get("message") or "")).split())
        parts.append(f"- **{title}**: {cell(message, 300) if message else 'no message'}")
        tail = log_tail(f.get("log") or "", lines)
        if tail.strip():
            parts.append(
                f"\n<details><summary>last {min(lines, len(tail.splitlines()))} lines of the log"
                f"</summary>\n\n{_block(tail)}\n\n</details>\n"
            )
    return "\n".join(parts)


# --------------------------------------------------------------------------- status comment


def steps_done(
    run: Mapping[str, Any],
    dossier_md: str | None,
    decision: Mapping[str, Any] | None,
    candidates: Sequence[Mapping[str, Any]],
    pull: Mapping[str, Any] | None,
) -> dict[str, bool]:
    """Which checklist items happened, from the facts (what a finished run's checklist ticks)."""
    winners = (decision or {}).get("winners") or []
    return {
        "research": bool(dossier_md) or bool(candidates),
        "implement": bool(candidates),
        "benchmark": bool(_rows(decision)),
        "decide": decision is not None,
        "verify": bool(winners),
        "publish": bool((pull or {}).get("number")),
    }


def phase_checklist(
    phase: str | None,
    progress: str | None = None,
    state: str | None = None,
    happened: Mapping[str, bool] | None = None,
) -> str:
    """✅ done, ⏳ current (❌ failed, ⏹ cancelled), ⬜ not yet; a finished run ticks only the steps that
    `happened` says took place and marks the others ➖ (not needed)."""
    stage = checklist_item(phase)
    names = [s for s, _ in STAGES]
    finished = state == Phase.DONE or phase == Phase.DONE
    current = names.index(stage) if stage in names else (len(names) if finished else -1)
    lines = []
    for i, (name, label) in enumerate(STAGES):
        extra = ""
        if finished:
            ok = happened is None or happened.get(name, False)
            icon = "✅" if ok else "➖"
            extra = "" if ok else " (not needed)"
        elif i < current:
            icon = "✅" if happened is None or happened.get(name, True) else "➖"
        elif i == current:
            icon = {Phase.FAILED: "❌", Phase.CANCELLED: "⏹"}.get(state or "", "⏳")
        else:
            icon = "⬜"
        if i == current and progress and not finished:
            extra = f" — {cell(progress, 200)}"
        lines.append(f"- {icon} {label}{extra}")
    return "\n".join(lines)


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _headline(
    run: Mapping[str, Any],
    decision: Mapping[str, Any] | None,
    candidates: Sequence[Mapping[str, Any]] = (),
    pull: Mapping[str, Any] | None = None,
    phase: str | None = None,
    progress: str | None = None,
) -> str:
    """One sentence: what happened, with the best verified effect, its unit and the tier that says so."""
    state = run.get("state", "")
    if state == Phase.FAILED:
        return f"❌ **Stopped:** {cell(strip_traceback(clean(run.get('error') or 'a stage failed')), 200)}"
    if state == Phase.CANCELLED:
        return "⏹ **Stopped on request.**"
    if state != Phase.DONE:
        stage = checklist_item(phase)
        label = dict(STAGES).get(stage or "", "queued")
        return f"⏳ **Working on it:** {label.split(':')[0]}" + (
            f" ({cell(progress, 200)})." if progress else "."
        )
    if not decision:
        why = cell((pull or {}).get("reason") or "", 300)
        return "✅ **Done: no candidate to measure**" + (f": {why}" if why else ".")
    winners = decision.get("winners") or []
    by_name = {str(c.get("name")): c for c in candidates}
    if winners:
        best = best_effect(decision)
        rows = [r for r in target_rows(decision) if r.get("candidate") in winners and r.get("comparison")]
        name = str(max(rows, key=lambda r: _effect(r) or 0.0).get("candidate")) if rows else winners[0]
        title = cell((by_name.get(name) or {}).get("title") or "", 80)
        what = f"`{cell(name, 60)}`" + (f" ({title})" if title else "")
        return f"✅ **{_plural(len(winners), 'verified winner')}.** Best: {what}, {best}."
    return "✅ **Done: no verified winner.** No candidate was both correct and significantly faster."


def _next_step(
    run: Mapping[str, Any],
    decision: Mapping[str, Any] | None,
    pull: Mapping[str, Any] | None,
    failures: Sequence[Mapping[str, Any]] | None,
    prefix: str,
) -> str:
    """What the reader should do next, in one line."""
    state = run.get("state", "")
    if state == Phase.FAILED:
        return f"read **What failed** below; once the cause is fixed, `{prefix} rerun` starts again."
    if state == Phase.CANCELLED:
        return f"`{prefix} rerun` starts it again."
    if state != Phase.DONE:
        return f"nothing yet: this comment is edited as the run goes (`{prefix} stop` cancels it)."
    if (pull or {}).get("number"):
        return f"review the draft pull request #{int(pull['number'])}; the bot never merges."
    if not decision:
        return f"add a concrete idea to the issue (a paper, a fork, a function), then `{prefix} rerun`."
    if decision.get("winners"):
        if (pull or {}).get("reason"):
            return f"no pull request was opened ({cell(pull['reason'], 200)}); `{prefix} rerun` tries again."
        return "the draft pull request is linked here once it is open."
    hints = [n.get("hint") for n in decision.get("notes") or [] if isinstance(n, Mapping) and n.get("hint")]
    rounds = [int(h["rounds"]) for h in hints if h.get("kind") == "rerun" and h.get("rounds")]
    if rounds:
        return f"`{prefix} rerun rounds={max(rounds)}` would resolve the noisy results."
    if any(h.get("kind") == "quiet" for h in hints):
        return (
            "the undecided results need a quieter machine (fewer benchmark threads than cores, no other "
            "load), not more rounds."
        )
    return f"nothing to merge; a new idea in the issue and `{prefix} rerun` tries again."


def hint_text(hint: Mapping[str, Any] | None, prefix: str = DEFAULT_PREFIX) -> str:
    """A decision note's hint (`bot.experiments.stats.Hint.to_dict()`) as the words appended to the note."""
    if not hint:
        return ""
    if hint.get("kind") == "rerun":
        return f" (`{prefix} rerun rounds={int(hint['rounds'])}`)"
    if hint.get("kind") == "quiet":
        return f"; {QUIET}"
    if hint.get("kind") == "vm":
        rounds = hint.get("rounds")
        return f" (`{prefix} rerun" + (f" rounds={int(rounds)}" if rounds else "") + "`)"
    return ""


def note_text(note: Any, prefix: str = DEFAULT_PREFIX) -> str:
    """One of a decision's notes: plain text, or {"text", "hint"} rendered with the command prefix."""
    if isinstance(note, Mapping):
        return str(note.get("text") or "") + hint_text(note.get("hint"), prefix)
    return str(note)


def note_line(note: Any, prefix: str = DEFAULT_PREFIX) -> str:
    """A decision note as markdown: its text made inert like any cell, its hint (the bot's own) a code
    span."""
    if isinstance(note, Mapping):
        return cell(note.get("text"), 300) + hint_text(note.get("hint"), prefix)
    return cell(note, 300)


COMMENT_LIMIT = 65536  # GitHub refuses issue/PR bodies and comments longer than this (characters)
_BUDGET = COMMENT_LIMIT - 1536  # headroom for the truncation notice and multi-byte surprises


def status_comment(
    run: Mapping[str, Any],
    phase: str | None,
    progress: str | None = None,
    budget_spent: float | None = None,
    budget_limit: float | None = None,
    dossier_md: str | None = None,
    decision: Mapping[str, Any] | None = None,
    candidates: Sequence[Mapping[str, Any]] = (),
    costs: Mapping[str, Any] | None = None,
    links: Mapping[str, Any] | None = None,
    failures: Sequence[Mapping[str, Any]] | None = None,
    waves_md: str | None = None,
    extra: Sequence[str] = (),
    prefix: str = DEFAULT_PREFIX,
    pull: Mapping[str, Any] | None = None,
    happened: Mapping[str, bool] | None = None,
) -> str:
    """The one status comment the bot keeps editing on the issue, under GitHub's 65,536-character limit: the
    longest optional sections (dossier, failure logs, per-function diff) give way first, with a link to the
    run page. `extra`: markdown lines (already made safe) just above the commands line. `prefix`: the bot's
    command prefix (Settings.command_prefix), for the commands it suggests. `pull`: the draft pull request
    ({number, url, reason}) or why there is none ({reason}); `happened`: which checklist items took place
    (default: read from the other arguments, steps_done).

    Its first screen: the headline (outcome and best verified effect), the counts, what to do next and the
    target metric's table; the rest (checklist of a finished run, all metrics, dossier, per-function diff,
    method notes, failure logs) is collapsed below."""
    args = dict(
        run=run,
        phase=phase,
        progress=progress,
        budget_spent=budget_spent,
        budget_limit=budget_limit,
        dossier_md=dossier_md,
        decision=decision,
        candidates=candidates,
        costs=costs,
        links=links,
        failures=failures,
        waves_md=waves_md,
        extra=extra,
        prefix=prefix,
        pull=pull,
        happened=happened,
    )
    where = f" (full text: {links['run']})" if (links or {}).get("run") else ""
    text = _status_comment(**args)
    omit: set[str] = set()
    for cut in ("dossier", "failures", "diff"):
        if len(text) <= _BUDGET:
            break
        omit.add(cut)
        text = _status_comment(
            **args,
            omit=omit,
            note=f"_Left out to fit GitHub's comment limit: {', '.join(sorted(omit))}{where}._",
        )
    return text if len(text) <= _BUDGET else truncate(text, where)


def truncate(text: str, where: str = "") -> str:
    """Cut a markdown body to fit a GitHub comment, closing an open code fence."""
    cut = text[:_BUDGET]
    if cut.count("```") % 2:
        cut += "\n```"
    return cut + f"\n\n_… truncated to fit GitHub's comment limit{where}._\n"


def _status_comment(
    run: Mapping[str, Any],
    phase: str | None,
    progress: str | None = None,
    budget_spent: float | None = None,
    budget_limit: float | None = None,
    dossier_md: str | None = None,
    decision: Mapping[str, Any] | None = None,
    candidates: Sequence[Mapping[str, Any]] = (),
    costs: Mapping[str, Any] | None = None,
    links: Mapping[str, Any] | None = None,
    failures: Sequence[Mapping[str, Any]] | None = None,
    waves_md: str | None = None,
    extra: Sequence[str] = (),
    omit: set[str] | frozenset = frozenset(),
    note: str = "",
    prefix: str = DEFAULT_PREFIX,
    pull: Mapping[str, Any] | None = None,
    happened: Mapping[str, bool] | None = None,
) -> str:
    """`waves_md` (wave_section / current_wave_heading) comes between the dossier and the current wave's
    candidates and table."""
    state = run.get("state")
    finished = state in (Phase.DONE, Phase.FAILED, Phase.CANCELLED)
    facts = happened if happened is not None else steps_done(run, dossier_md, decision, candidates, pull)
    parts = [
        marker(run["id"]),
        f"## autoresearch run #{int(run['id'])}"
        + (f" (attempt {int(run['attempt'])})" if int(run.get("attempt") or 1) > 1 else ""),
        _headline(run, decision, candidates, pull, phase, progress),
    ]
    if decision:
        n = len({str(r.get("candidate")) for r in _rows(decision)})
        archs = sorted({str(r.get("arch")) for r in _rows(decision)})
        target = cell(decision.get("target") or "", 40)
        parts += [
            "",
            f"{counts_line(decision)} ({_plural(n, 'candidate')} on {', '.join(cell(a, 20) for a in archs)}, "
            f"target metric `{target}`)",
        ]
    if (pull or {}).get("number"):
        url = str(pull.get("url") or "")
        ref = (
            f"[#{int(pull['number'])}]({url})"
            if re.match(r"^https?://[^\s()<>]+$", url)
            else f"#{pull['number']}"
        )
        parts += ["", f"**Draft pull request:** {ref} ({cell(pull.get('reason') or '', 300)})"]
    elif pull and pull.get("reason") and decision:
        parts += ["", f"**No pull request:** {cell(pull['reason'], 300)}"]
    parts += ["", f"**Next:** {_next_step(run, decision, pull, failures, prefix)}"]
    checklist = phase_checklist(phase, progress, state, facts if finished else None)
    if finished:
        parts += ["", "<details><summary>Steps</summary>", "", checklist, "", "</details>"]
    else:
        parts += ["", checklist]
    if decision:
        parts += ["", summary_table(decision, candidates, links)]
    meta = []
    if budget_limit is not None or budget_spent is not None:
        meta.append(f"**Budget:** {fmt_usd(budget_spent or 0.0)} spent of {fmt_usd(budget_limit)}")
    if (links or {}).get("run"):
        meta.append(f"**Run page:** {links['run']} (paired samples, logs, dossier)")
    if meta:
        parts += ["", " · ".join(meta)]
    if note:
        parts += ["", note]
    if waves_md:
        parts += ["", waves_md]
    if decision:
        parts += ["", details_block("All metrics", benchmark_table(decision, candidates, costs, links))]
        chart = speedup_chart(decision)
        if chart:
            parts += ["", details_block("Chart: wall-time speedup on the target metric", chart)]
        diff = function_diff_section(decision) if "diff" not in omit else ""
        if diff:
            parts += ["", diff]
    if candidates:
        parts += ["", candidates_section(candidates, links)]
    if dossier_md and "dossier" not in omit:
        body = clean(dossier_md).replace("<", "&lt;").strip()  # no raw HTML from researched sources
        parts += ["", details_block("Research dossier", body)]
    if decision:
        method = method_lines(decision, prefix)
        if method:
            parts += ["", details_block("Method and notes", "\n".join(f"- {m}" for m in method))]
    if costs:
        parts += ["", cost_line(costs)]
    fail = failures_section(failures) if "failures" not in omit else ""
    if fail:
        parts += ["", fail]
    if extra:
        parts += ["", *extra]
    parts += ["", commands.footer_text(prefix)]
    return "\n".join(parts).rstrip() + "\n"


def details_block(summary: str, body: str) -> str:
    return "\n".join([f"<details><summary>{summary}</summary>", "", body.strip(), "", "</details>"])


def method_lines(
    decision: Mapping[str, Any], prefix: str = DEFAULT_PREFIX, only: Iterable[str] | None = None
) -> list[str]:
    """How the decision was reached: the two tiers, each target row's note, the decision's own notes."""
    lines = [
        "Two tiers: **simulated** (cachegrind's estimated cycles: deterministic, exact, blind to memory "
        "bandwidth, SIMD width and threads) and **wall time** (interleaved baseline/candidate pairs, ratio "
        "of medians with a 95% bootstrap interval; above 1× is better). A winner is correct, faster on the "
        "simulated tier where there is one and not significantly slower on wall time.",
    ]
    lines += row_notes(decision, only)
    if only is None:
        lines += [note_line(n, prefix) for n in decision.get("notes") or []]
    return lines


def candidates_section(candidates: Sequence[Mapping[str, Any]], links: Mapping[str, Any] | None) -> str:
    by_name = {str(c.get("name")): c for c in candidates}
    lines = [
        f"<details><summary>Candidates ({len(candidates)})</summary>",
        "",
        "| candidate | source | idea |",
        "|---|---|---|",
    ]
    for c in candidates:
        lines.append(
            f"| {_candidate_cell(str(c.get('name')), by_name, links)} | {cell(c.get('source'), 20)} "
            f"| {cell(c.get('title'), 120)} |"
        )
    return "\n".join(lines + ["", "</details>"])


def cost_line(costs: Mapping[str, Any]) -> str:
    bits = [f"{cell(a, 20)} VMs {fmt_usd(v)}" for a, v in sorted((costs.get("archs") or {}).items())]
    if _finite(costs.get("llm_usd")):
        bits.append(f"LLM {fmt_usd(costs['llm_usd'])}")
    total = costs.get("total_usd")
    if not _finite(total):
        total = sum(v for v in (costs.get("archs") or {}).values() if _finite(v)) + (
            costs["llm_usd"] if _finite(costs.get("llm_usd")) else 0.0
        )
    return f"**Cost:** {fmt_usd(total)}" + (f" ({', '.join(bits)})" if bits else "")


# --------------------------------------------------------------------------- waves


def _kept_text(kept: Mapping[str, Any] | None) -> str:
    if not kept:
        return "nothing"
    what = ", ".join(cell(t, 100) for t in kept.get("titles") or kept.get("names") or [])
    s = kept.get("speedup")
    return what + (f" ({s:.3f}× against its base)" if _finite(s) else "")


def wave_section(
    rec: Mapping[str, Any],
    decision: Mapping[str, Any] | None,
    candidates: Sequence[Mapping[str, Any]],
    plan_md: str | None,
    links: Mapping[str, Any] | None,
) -> str:
    """A finished wave (not the current one): one line on what it kept, its plan and table collapsed."""
    n = int(rec["wave"])
    base = cell((rec.get("base") or {}).get("label") or "the baseline", 200)
    lines = [
        f"### Wave {n} (built on {base})",
        "",
        f"{len(rec.get('candidates') or [])} candidate(s), {len(rec.get('winners') or [])} verified "
        "winner(s); "
        f"kept: {_kept_text(rec.get('kept'))}.",
    ]
    inner = []
    if plan_md:
        inner += [clean(plan_md).replace("<", "&lt;").strip(), ""]
    if decision:
        inner += [benchmark_table(decision, candidates, None, links), ""]
        diff = function_diff_section(decision)
        if diff:
            inner += [diff, ""]
    if inner:
        lines += [
            "",
            f"<details><summary>Wave {n}: plan and measurements</summary>",
            "",
            *inner,
            "</details>",
        ]
    return "\n".join(lines)


def current_wave_heading(
    n: int,
    base_label: str,
    plan_md: str | None,
    rec: Mapping[str, Any] | None,
    loop: Mapping[str, Any] | None,
) -> str:
    """The heading of the wave the status comment shows in full, what it kept and why the loop stopped."""
    lines = [f"### Wave {n} (built on {cell(base_label, 200)})"]
    if plan_md:
        lines += [
            "",
            f"<details><summary>Wave {n} plan</summary>",
            "",
            clean(plan_md).replace("<", "&lt;").strip(),
            "",
            "</details>",
        ]
    if rec:
        lines += ["", f"Kept: {_kept_text(rec.get('kept'))}."]
    if loop:
        stopped = int(loop.get("waves") or n)
        lines += ["", f"**Stopped after wave {stopped}:** {cell(loop.get('reason'), 500)}"]
    return "\n".join(lines)


def waves_path(recs: Sequence[Mapping[str, Any]] | None, stop_reason: str | None = None) -> str:
    """The PR's account of how it got here: per wave, what it was built on and what it kept."""
    if not recs:
        return ""
    lines = ["### How this was found", ""]
    for rec in recs:
        n = int(rec["wave"])
        base = cell((rec.get("base") or {}).get("label") or "the baseline", 300)
        kept = rec.get("kept")
        tried = len(rec.get("candidates") or [])
        if n == 1:
            lead = f"- **Wave 1** measured {tried} candidate(s) against the baseline"
        else:
            lead = f"- **Wave {n}** built on {base}: {tried} candidate(s) measured against it"
        lines.append(f"{lead}; kept {_kept_text(kept)}.")
    if stop_reason:
        lines += ["", f"Stopped: {cell(stop_reason, 500)}"]
    return "\n".join(lines)


# --------------------------------------------------------------------------- pull request


def _target_rows(decision: Mapping[str, Any] | None, name: str) -> list[Mapping[str, Any]]:
    target = (decision or {}).get("target")
    return [r for r in _rows(decision) if r.get("candidate") == name and r.get("metric") == target]


def _geo(values: Iterable[Any]) -> float | None:
    vals = [v for v in values if _finite(v) and v > 0]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else None


def title_effect(decision: Mapping[str, Any] | None, name: str) -> str:
    """`attn_ms: simulated 1.12×, wall 1.16×`: each tier's figure named, never one beside the other
    unlabelled (over several archs: geometric means)."""
    rows = _target_rows(decision, name)
    sim = _geo((r.get("simulated") or {}).get("speedup") for r in rows)
    wall = _geo((r.get("comparison") or {}).get("speedup") for r in rows)
    bits = ([f"simulated {sim:.2f}×"] if sim else []) + ([f"wall {wall:.2f}×"] if wall else [])
    target = " ".join(clean((decision or {}).get("target") or "").split())
    return f"{target}: {', '.join(bits)}" if bits else ""


def pr_title(
    choice: Mapping[str, Any],
    candidates: Sequence[Mapping[str, Any]],
    decision: Mapping[str, Any] | None,
    parts: Sequence[str] = (),
) -> str:
    """`perf: <idea> (attn_ms: simulated 1.12×, wall 1.16×)`; a stack names how many verified changes it
    holds."""
    name = str(choice.get("candidate") or "")
    by_name = {str(c.get("name")): c for c in candidates}
    if choice.get("kind") == "stack":
        what = f"stack of {len(parts)} verified changes" if parts else "stacked verified changes"
    else:
        what = " ".join(clean((by_name.get(name) or {}).get("title") or name).split())[:72]
    effect = title_effect(decision, name)
    if not effect and _finite(choice.get("speedup")):
        target = " ".join(clean((decision or {}).get("target") or "").split())
        effect = f"{target}: {choice['speedup']:.2f}×"
    return f"perf: {what}" + (f" ({effect})" if effect else "")


def arch_summary(decision: Mapping[str, Any] | None, name: str) -> str:
    lines = []
    for r in _target_rows(decision, name):
        c = r.get("comparison") or {}
        sim = r.get("simulated") or {}
        simulated = (
            f"simulated {sim_cell(sim)} ({cell(sim.get('isa') or '', 40)}); " if "speedup" in sim else ""
        )
        n = (
            f"{c.get('pairs')} pairs"
            if c.get("pairs")
            else f"n={c.get('n_base', '?')}+{c.get('n_cand', '?')}"
        )
        unit = metric_unit(decision, r.get("metric"))
        note = f" — {cell(r['note'], 160)}" if r.get("note") else ""
        lines.append(
            f"- **{cell(r.get('arch'), 20)}**: {verdict_label(r)}: {simulated}wall time "
            f"{fmt_speedup(c or None)} on `{cell(r.get('metric'), 40)}` "
            f"({_values_cell(c, unit)}, p = {fmt_p(c.get('p_adjusted'))}, {n}){note}"
        )
    return "\n".join(lines) or "- no measurement of the target metric"


def _citation(c: Any) -> str:
    if isinstance(c, Mapping):
        title, url = cell(c.get("title") or c.get("id") or "source", 120), c.get("url")
        if url and re.match(r"^https?://[^\s()<>]+$", str(url)):
            return f"[{title}]({url})"
        return title
    return cell(c, 160)


def hypotheses_section(candidates: Sequence[Mapping[str, Any]], names: Sequence[str]) -> str:
    by_name = {str(c.get("name")): c for c in candidates}
    parts = []
    for n in names:
        c = by_name.get(n) or {"name": n}
        parts.append(
            f"#### {cell(c.get('title') or n, 120)} (`{cell(n, 60)}`, from {cell(c.get('source'), 20)})"
        )
        parts.append(_quote(c.get("hypothesis")))
        parts.append("")
        cites = [_citation(x) for x in c.get("citations") or []]
        if cites:
            parts.append("Sources: " + "; ".join(cites))
        parts.append("")
    return "\n".join(parts).rstrip()


def reproduce_command(baseline_sha: str, candidate_sha: str, archs: Sequence[str]) -> str:
    def sha(s: str) -> str:
        return s if _SHA_RE.match(str(s)) else "<sha>"

    arch = ",".join(a for a in archs if re.fullmatch(r"[A-Za-z0-9_-]+", str(a))) or "x86"
    return (
        f"autoresearch-bot bench --repo . --baseline {sha(baseline_sha)} --candidate {sha(candidate_sha)} "
        f"--arch {arch}"
    )


def pr_body(
    run: Mapping[str, Any],
    decision: Mapping[str, Any] | None,
    candidates: Sequence[Mapping[str, Any]],
    choice: Mapping[str, Any],
    baseline_sha: str,
    head_sha: str,
    stack: Mapping[str, Any] | None = None,
    costs: Mapping[str, Any] | None = None,
    links: Mapping[str, Any] | None = None,
    path_md: str | None = None,
) -> str:
    """The draft PR's description. decision: the measurement of what is published (the stack's
    verification decision for a stack). First the headline (the verified effect, its unit, its tier), the
    table of what is published and how to reproduce it; the rest collapsed."""
    name = str(choice.get("candidate") or "")
    parts_in = list((stack or {}).get("applied") or []) if choice.get("kind") == "stack" else [name]
    shown = [name, *[p for p in parts_in if p != name]]
    archs = list((decision or {}).get("archs") or sorted({str(r.get("arch")) for r in _rows(decision)}))
    issue = run.get("issue_number")
    rows = [r for r in _target_rows(decision, name) if r.get("comparison")]
    effect = (
        " ".join(f"On {cell(r.get('arch'), 20)}: {_effect_words(decision, r)}." for r in rows)
        or "No measurement of the target metric."
    )
    out = [
        pr_marker(run["id"]),
        f"**Suggested title:** {cell(pr_title(choice, candidates, decision, parts_in), 200)}",
        "",
        f"✅ **Verified faster.** {effect}",
        "",
        (f"Requested in #{int(issue)}. " if issue else "")
        + f"**What this is:** {cell(choice.get('reason') or '', 400)}",
        "",
        summary_table(decision, candidates, links, only=shown),
        "",
        "### Hypotheses and sources",
        hypotheses_section(candidates, parts_in),
    ]
    dropped = (stack or {}).get("dropped") or []
    if choice.get("kind") == "stack" and dropped:
        out += ["", "**Left out of the stack:**"] + [
            f"- `{cell(d.get('name'), 60)}`: {cell(d.get('reason'), 200)}" for d in dropped
        ]
    out += [
        "",
        "### Reproduce",
        "Run the same interleaved A/B measurement yourself:",
        "",
        "```sh",
        reproduce_command(baseline_sha, head_sha, archs),
        "```",
        "",
        details_block("All metrics", benchmark_table(decision, candidates, costs, links, only=shown)),
    ]
    chart = speedup_chart(
        {**(decision or {}), "rows": [r for r in _rows(decision) if r.get("candidate") in shown]}
    )
    if chart:
        out += ["", details_block("Chart: wall-time speedup on the target metric", chart)]
    diff = function_diff_section(decision, only=shown)
    if diff:
        out += ["", diff]
    method = [f"Per architecture:\n{arch_summary(decision, name)}", *method_lines(decision or {}, only=shown)]
    out += [
        "",
        details_block(
            "Method and notes", "\n".join(f"- {m}" if not m.startswith("Per") else m for m in method)
        ),
    ]
    if path_md:
        out += ["", path_md]
    if costs:
        out += ["", cost_line(costs)]
    out += ["", "---", f"⚠️ {DISCLAIMER}"]
    text = "\n".join(x for x in out if x is not None).rstrip() + "\n"
    if len(text) > _BUDGET and diff:
        text = text.replace(diff, "_The per-function diff was left out to fit GitHub's limit._")
    return text if len(text) <= _BUDGET else truncate(text)


# --------------------------------------------------------------------------- check runs


def check_run_output(
    kind: str,
    decision: Mapping[str, Any] | None,
    candidate: str,
    candidates: Sequence[Mapping[str, Any]] = (),
    links: Mapping[str, Any] | None = None,
) -> tuple[str, str, str]:
    """(conclusion, title, summary) for a check run on the candidate's head commit."""
    if kind not in ("correctness", "benchmark"):
        raise ValueError(f"kind must be 'correctness' or 'benchmark', got {kind!r}")
    rows = [r for r in _rows(decision) if r.get("candidate") == candidate]
    if not rows:
        return "neutral", f"{kind.capitalize()}: not measured", "No result for this commit."
    table = benchmark_table(decision, candidates, None, links, only=[candidate])
    archs = sorted({str(r.get("arch")) for r in rows})
    if kind == "correctness":
        return _correctness_check(rows, archs, table)
    return _benchmark_check(decision or {}, candidate, rows, table)


def _correctness_check(
    rows: Sequence[Mapping[str, Any]], archs: Sequence[str], table: str
) -> tuple[str, str, str]:
    bad = [r for r in rows if r.get("verdict") in (Verdict.BROKEN, Verdict.BUILD_FAILED)]
    if bad:
        where = sorted({str(r.get("arch")) for r in bad})
        what = VERDICT_LABEL[str(bad[0]["verdict"])]
        failed = sorted({f for r in bad for f in (r.get("correctness") or {}).get("failed") or []})
        detail = f"Failed checks: {', '.join(cell(f, 60) for f in failed)}." if failed else ""
        return "failure", f"Correctness: {what} on {', '.join(where)}", f"{detail}\n\n{table}".strip()
    unknown = [r for r in rows if r.get("verdict") in (Verdict.MISSING, Verdict.BASELINE_FAILED)]
    if unknown:
        return "neutral", "Correctness: not established", f"Some architectures have no result.\n\n{table}"
    corr = rows[0].get("correctness") or {}
    return (
        "success",
        f"Correctness: {corr.get('passed', 0)}/{corr.get('total', 0)} checks pass on {', '.join(archs)}",
        table,
    )


def _benchmark_check(
    decision: Mapping[str, Any], candidate: str, rows: Sequence[Mapping[str, Any]], table: str
) -> tuple[str, str, str]:
    target = decision.get("target")
    trows = [r for r in rows if r.get("metric") == target] or list(rows)
    verdicts = {str(r.get("verdict")) for r in trows}
    summary = arch_summary(decision, candidate) + "\n\n" + table
    effect = title_effect(decision, candidate) or str(target)  # each tier's figure named
    if candidate in (decision.get("winners") or []):
        return "success", f"Benchmark: faster, {effect}", summary
    if verdicts & FAILED_VERDICTS:
        v = sorted(verdicts & FAILED_VERDICTS)[0]
        return "failure", f"Benchmark: {VERDICT_LABEL[v]}", summary
    if Verdict.SLOWER in verdicts:
        return "failure", f"Benchmark: slower, {effect}", summary
    if Verdict.DISAGREE in verdicts:
        return "neutral", "Benchmark: simulated and wall time disagree", summary
    if Verdict.NOISY in verdicts:
        return "neutral", "Benchmark: too noisy to decide", summary
    if Verdict.FASTER in verdicts:
        return "neutral", f"Benchmark: faster on some architectures only, {effect}", summary
    return "neutral", f"Benchmark: no significant change, {effect}", summary
