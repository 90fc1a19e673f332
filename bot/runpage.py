"""The run page's content (GET /runs/<id>, bot/templates/run.html), read from the store: what the status
comment says (rendered like GitHub), per candidate the paired samples as a server-side SVG plot, the
per-function diff, logs, the dossier, events and one link per artifact.

Pure functions over the store's artifacts; every untrusted string reaches the page through Jinja2's
autoescape or through bot.mdrender (GitHub's sanitizer allowlist). The SVG holds only numbers the bot
computed and escaped labels.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

from . import mdrender, report, waves
from .artifacts import (
    CANDIDATES,
    DECISION,
    DOSSIER,
    FAILURE,
    PROJECT,
    PUBLICATION,
    RESULTS_MAIN,
    RunArtifacts,
)
from .model import FINAL_PHASES, Phase
from .store import Run, Store, iso_utc

_TRACE = "Traceback (most recent call last):"


def no_traceback(text: str) -> str:
    """A Python traceback anywhere in `text` (also mid-line, as in "failed: Traceback ...") reduced to its
    final message; stray `File "...", line N` frames dropped."""
    text = str(text)
    if _TRACE not in text and 'File "' not in text:
        return text
    return re.sub(r":[ \t]*\n", ": ", report.strip_traceback(text.replace(_TRACE, "\n" + _TRACE))).strip()


def _safe_url(url: Any) -> str | None:
    u = str(url or "")
    return u if u.startswith(("https://", "http://")) and not any(c in u for c in " <>\"'") else None


def issue_url(web_base: str, run: Run) -> str:
    kind = "issues" if run.kind == "issue" else "pull" if run.params.get("pull") else "issues"
    return f"{web_base.rstrip('/')}/{quote(run.repo, safe='/')}/{kind}/{int(run.issue_number)}"


def run_list(store: Store, web_base: str, limit: int = 200) -> list[dict[str, Any]]:
    out = []
    for r in store.list_runs(limit):
        pub = store.get_artifact(r.id, PUBLICATION.key()) or {}
        decision = store.get_artifact(r.id, DECISION.key()) or {}
        if r.state == Phase.FAILED:
            outcome = "failed: " + _one_line(r.error or "a stage failed", 160)
        elif r.state in FINAL_PHASES:
            winners = decision.get("winners") or []
            outcome = (
                f"{len(winners)} verified winner{'s' if len(winners) != 1 else ''}"
                if decision
                else "no result"
            )
        else:
            outcome = deferred_note(r) or "running"
        out.append(
            {
                "run": r,
                "issue_url": issue_url(web_base, r),
                "pr_url": _safe_url(pub.get("pr_url")),
                "pr_number": pub.get("pr_number"),
                "outcome": outcome,
            }
        )
    return out


def deferred_note(run: Run) -> str:
    """`deferred until <time>` while a GitHub rate limit holds an active run, else ''."""
    if run.deferred_until is not None and run.active:
        return f"deferred until {iso_utc(run.deferred_until)}: GitHub rate limit"
    return ""


def _one_line(text: str, limit: int) -> str:
    s = " ".join(no_traceback(str(text)).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def run_view(store: Store, run: Run, web_base: str, status_url: str | None = None) -> dict[str, Any]:
    """Everything run.html shows for one run."""
    arts = RunArtifacts(store, run.id)
    n = waves.current(arts.raw) if run.kind == "issue" else 1  # the wave the status comment shows
    decision = arts.get(DECISION, n)
    project = arts.get(PROJECT) or {}
    if decision:
        decision = report.with_units(decision, project)
    candidates = arts.get(CANDIDATES, n)
    results = arts.get(RESULTS_MAIN, n) or {}
    dossier = (arts.get(DOSSIER) or {}).get("markdown")
    pub = arts.get(PUBLICATION) or {}
    failure = arts.get(FAILURE)
    failures = report.failures_from_results(results) if results else []
    if failure:
        failures = [
            {
                "title": f"Run stopped during {failure.get('stage')}",
                "message": failure.get("message") or "",
                "log": failure.get("log_tail") or "",
            }
        ] + failures
    pull = None
    if pub.get("pr_number"):
        pull = {"number": pub["pr_number"], "url": pub.get("pr_url"), "reason": pub.get("reason") or ""}
    elif pub.get("kind") == "none":
        pull = {"reason": pub.get("reason") or ""}
    progress = [e["message"] for e in store.events(run.id, "progress")]
    links = {"repo": f"{web_base.rstrip('/')}/{run.repo}", "run": None}
    summary = report.status_comment(
        {
            "id": run.id,
            "state": run.state,
            "attempt": run.attempt,
            "error": no_traceback(run.error or ""),
            "kind": run.kind,
        },
        run.state,
        progress[-1] if progress else None,
        dossier_md=None,  # shown in full below
        decision=decision,
        candidates=candidates,
        links=links,
        failures=None,  # shown in full below
        pull=pull,
    )
    summary = summary.split("\n", 2)[2]  # no hidden marker, no heading (the page has its own)
    summary = summary.rsplit("\n\n<sub>Commands", 1)[0]
    target = str((decision or {}).get("target") or "")
    unit = report.metric_unit(decision, target)
    metrics = (project.get("benchmark") or {}).get("metrics") or []
    hib = next((bool(m.get("higher_is_better")) for m in metrics if m.get("name") == target), False)
    plots = []
    for arch, res in sorted(results.items()):
        variants = res.get("variants") or {}
        for c in candidates:
            v = variants.get(c.get("name")) or {}
            pairs = [
                p
                for p in v.get("pairs") or []
                if target in (p.get("base") or {}) and target in (p.get("cand") or {})
            ]
            row = next(
                (
                    r
                    for r in (decision or {}).get("rows") or []
                    if r.get("candidate") == c.get("name")
                    and r.get("arch") == arch
                    and r.get("metric") == target
                ),
                {},
            )
            plots.append(
                {
                    "name": c.get("name"),
                    "title": c.get("title") or "",
                    "arch": arch,
                    "status": v.get("status") or "missing",
                    "verdict": report.VERDICT_LABEL.get(
                        str(row.get("verdict")), str(row.get("verdict") or "")
                    ),
                    "svg": paired_svg(pairs, target, unit, hib) if len(pairs) >= 1 else None,
                    "pairs": len(pairs),
                    "wall": report.fmt_speedup(row.get("comparison") or None),
                    "simulated": report.sim_cell(row.get("simulated")) if row.get("simulated") else "",
                    "log": _variant_log(v),
                }
            )
    diff = report.function_diff_section(decision) if decision else ""
    return {
        "run": run,
        "running": run.state not in FINAL_PHASES,
        "deferred": deferred_note(run),
        "issue_url": issue_url(web_base, run),
        "pr_url": _safe_url(pub.get("pr_url")),
        "pr_number": pub.get("pr_number"),
        "status_url": _safe_url(status_url),
        "summary_html": Markup(mdrender.render(summary)),
        "candidates": candidates,
        "no_candidates_reason": pub.get("reason") if not candidates else None,
        "plots": plots,
        "target": target,
        "unit": unit,
        "diff_html": Markup(mdrender.render(diff)) if diff else None,
        "dossier_html": Markup(mdrender.render(report.clean(dossier))) if dossier else None,
        "failures": [
            {
                "title": f.get("title") or "failure",
                "message": no_traceback(str(f.get("message") or "")),
                "log": report.log_tail(f.get("log") or "", 60),
            }
            for f in failures
        ],
        "events": [{**e, "message": no_traceback(str(e.get("message") or ""))} for e in store.events(run.id)],
        "artifacts": store.artifact_keys(run.id),
        "css": Markup(mdrender.CSS),
    }


def _variant_log(v: Mapping[str, Any]) -> str:
    parts = []
    build = (v.get("build") or {}).get("log_tail")
    if build:
        parts.append("# build\n" + str(build))
    for c in (v.get("validation") or {}).get("checks") or []:
        if c.get("detail"):
            parts.append(f"# check {c.get('name')}: {'ok' if c.get('ok') else 'FAILED'}\n{c.get('detail')}")
    if v.get("error"):
        parts.append("# error\n" + str(v["error"]))
    return report.log_tail("\n".join(parts), 40) if parts else ""


# --------------------------------------------------------------------------- the paired-samples plot


def _nice(lo: float, hi: float) -> tuple[float, float, float]:
    """Axis bounds and tick step covering [lo, hi] with 4-6 round ticks."""
    span = hi - lo or abs(hi) or 1.0
    raw = span / 5
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return math.floor(lo / step) * step, math.ceil(hi / step) * step, step


def paired_svg(
    pairs: Sequence[Mapping[str, Any]], metric: str, unit: str, higher_is_better: bool, width: int = 860
) -> Markup:
    """Each pair as a baseline dot and a candidate dot joined by a line (green where the candidate was
    better, red where worse), in run order, with both medians as dashed lines: the raw samples the wall-time
    verdict comes from, drawn on the server (SVG, no JavaScript)."""
    base = [float(p["base"][metric]) for p in pairs]
    cand = [float(p["cand"][metric]) for p in pairs]
    n = len(base)
    h, left, right, top, bottom = 220, 64, 150, 14, 36
    lo, hi, step = _nice(min(base + cand), max(base + cand))
    pw, ph = width - left - right, h - top - bottom

    def x(i: int) -> float:
        return left + (pw * (i + 0.5) / n)

    def y(v: float) -> float:
        return top + ph * (1 - (v - lo) / ((hi - lo) or 1.0))

    u = f" {unit}" if unit else ""
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {h}" width="100%" role="img" '
        f'aria-label="{escape(metric)}: {n} baseline/candidate pairs" class="pairs">',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fff" stroke="#d1d9e0"/>',
    ]
    t = lo
    while t <= hi + step / 2:
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#eef1f4"/>'
            f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end" font-size="11">'
            f"{t:g}{escape(u)}</text>"
        )
        t += step
    for i, (b, c) in enumerate(zip(base, cand, strict=True)):
        better = c > b if higher_is_better else c < b
        color = "#1a7f37" if better else "#cf222e" if c != b else "#8c959f"
        out.append(
            f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{y(b):.1f}" y2="{y(c):.1f}" stroke="{color}" '
            f'stroke-width="2"/><circle cx="{x(i):.1f}" cy="{y(b):.1f}" r="3.5" fill="#8c959f">'
            f"<title>pair {i + 1}: baseline {b:.4g}{escape(u)}</title></circle>"
            f'<circle cx="{x(i):.1f}" cy="{y(c):.1f}" r="3.5" fill="#0969da">'
            f"<title>pair {i + 1}: candidate {c:.4g}{escape(u)}</title></circle>"
        )
    mb, mc = statistics.median(base), statistics.median(cand)
    yb, yc = y(mb) + 4, y(mc) + 4
    if abs(yb - yc) < 13:  # labels apart, the lower one lower
        mid = (yb + yc) / 2
        yb, yc = (mid - 7, mid + 7) if yb <= yc else (mid + 7, mid - 7)
    for m, ty, color, label in ((mb, yb, "#8c959f", "baseline"), (mc, yc, "#0969da", "candidate")):
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y(m):.1f}" y2="{y(m):.1f}" stroke="{color}" '
            f'stroke-dasharray="5 4"/><text x="{left + pw + 6}" y="{ty:.1f}" font-size="11" '
            f'fill="{color}">{label} median {m:.4g}{escape(u)}</text>'
        )
    out.append(
        f'<text x="{left + pw / 2:.1f}" y="{h - 8}" text-anchor="middle" font-size="11">pair (run order), '
        f"{n} pairs; {'higher' if higher_is_better else 'lower'} is better</text></svg>"
    )
    return Markup("".join(out))
