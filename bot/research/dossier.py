"""The research stage: gather sources, turn them into ranked hypotheses, render a cited dossier.

Sources: arXiv (goal + hot code), forks and related projects (commits ahead touching hot paths, checked
against the baseline with git), other ggml backends (fusions/ops the CPU backend lacks) and upstream's open
PRs/issues. With an LLM the synthesis (summary + hypotheses) is written through prompts/dossier.md and
validated item by item; without one, hypotheses come from fork commits and backend gaps only. No source
failure is fatal: each leaves a `SourceNote`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema

from .. import pathglob
from ..config import GENERIC_DEFAULTS
from ..gitutil import run
from ..text import clean, md_cell, one_line, quote, slugify
from . import arxiv as arxiv_source
from . import backends as backend_source
from . import profile as profile_source
from .cache import JsonCache
from .forks import ForkCommit, ForkOptions, scan_forks
from .inflight import InFlight, find_in_flight, mark_in_flight, terms_of
from .model import RISKS, Hypothesis, Source, SourceNote

if TYPE_CHECKING:
    from ..forge import Forge

__all__ = [
    "Dossier",
    "Hypothesis",
    "ResearchOptions",
    "Source",
    "SourceNote",
    "build_dossier",
    "HYPOTHESIS_ITEM_SCHEMA",
    "SYNTHESIS_SCHEMA",
    "validate_llm_hypotheses",
]

PROMPT_TEMPLATE = "dossier"
MAX_MARKDOWN_CHARS = 40_000

HYPOTHESIS_ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["title", "rationale", "target_files", "expected_effect", "risk", "citations"],
    "properties": {
        "title": {"type": "string", "minLength": 5, "maxLength": 200},
        "rationale": {"type": "string", "minLength": 10, "maxLength": 4000},
        "target_files": {
            "type": "array",
            "minItems": 1,
            "maxItems": 20,
            "items": {"type": "string", "minLength": 1, "maxLength": 300},
        },
        "expected_effect": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {"type": "string", "maxLength": 600},
        },
        "risk": {"enum": list(RISKS)},
        "citations": {
            "type": "array",
            "minItems": 1,
            "maxItems": 12,
            "items": {"type": "string", "minLength": 1, "maxLength": 200},
        },
        "hot_functions": {
            "type": "array",
            "maxItems": 8,
            "items": {"type": "string", "minLength": 1, "maxLength": 200},
        },
    },
}

SYNTHESIS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["summary", "hypotheses"],
    "properties": {
        "summary": {"type": "string", "maxLength": 4000},
        "source_notes": {
            "type": "array",
            "maxItems": 40,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["source", "suggests"],
                "properties": {
                    "source": {"type": "string", "maxLength": 200},
                    "suggests": {"type": "string", "maxLength": 600},
                },
            },
        },
        "hypotheses": {"type": "array", "maxItems": 12, "items": HYPOTHESIS_ITEM_SCHEMA},
    },
}

_BASE_SCORE = {"fork_commit": 3.0, "llm": 2.5, "backend_gap": 2.0}
_RISK_BONUS = {"low": 0.3, "medium": 0.0, "high": -0.3}
_SHARE_WEIGHT = 1.5  # a hypothesis on a function holding 60% of the cost gains 0.9
_ROOFLINE_PENALTY = 0.5  # compute-only on memory-bound decode: the bandwidth caps it below its Amdahl bound
_BELOW_EFFECT_PENALTY = 3.0  # one that cannot reach min_effect even at zero cost sinks below every other kind


@dataclass
class ResearchOptions:
    arxiv: arxiv_source.ArxivOptions = field(default_factory=arxiv_source.ArxivOptions)
    forks: ForkOptions = field(default_factory=ForkOptions)
    inflight_limit: int = 30
    max_gap_hypotheses: int = 4
    max_gap_sources: int = 8
    max_fork_sources: int = 15
    max_inflight_sources: int = 10
    max_hypotheses: int = 8
    attempts: int = 3
    retry_wait_s: float = 2.0


@dataclass
class Dossier:
    goal: str
    repo: str
    baseline: str | None
    sources: list[Source] = field(default_factory=list)
    hypotheses: list[Hypothesis] = field(default_factory=list)
    notes: list[SourceNote] = field(default_factory=list)
    summary: str = ""
    queries: list[str] = field(default_factory=list)
    profile: dict[str, Any] | None = None  # the `profile` artifact (bot/research/profile.py)
    profile_md: str = ""  # "Where the time goes", rendered with the code map
    wave: int = 1
    heading: str = "Research dossier"

    def citation_number(self, source_id: str) -> int | None:
        for i, s in enumerate(self.sources, 1):
            if s.id == source_id:
                return i
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "markdown": self.markdown(),
            "goal": self.goal,
            "repo": self.repo,
            "baseline": self.baseline,
            "summary": self.summary,
            "queries": self.queries,
            "sources": [s.to_dict() for s in self.sources],
            "hypotheses": [h.to_dict() for h in self.hypotheses],
            "notes": [n.to_dict() for n in self.notes],
            "wave": self.wave,
            "profile": self.profile,
        }

    def _cite(self, ids: list[str]) -> str:
        refs = []
        for sid in ids:
            n = self.citation_number(sid)
            if n is not None:
                url = self.sources[n - 1].url
                refs.append(f"[[{n}]]({url})" if url else f"[{n}]")
        return " ".join(refs) or "—"

    def markdown(self) -> str:
        """Headings, hypotheses table, numbered sources [n] with links, notes; untrusted text neutralized."""
        lines = [f"### {self.heading}: {md_cell(self.goal, 200)}", ""]
        if self.baseline:
            lines += [f"Baseline `{self.baseline[:12]}` of `{self.repo}`.", ""]
        if self.profile_md:
            lines += [self.profile_md.rstrip(), ""]
        if self.summary:
            lines += [md_cell(self.summary, 2000).replace("\\|", "|"), ""]
        lines += ["#### Hypotheses", ""]
        if self.hypotheses:
            lines += [
                # 5 columns, so the table fits GitHub's 914 px comment column
                "| # | hypothesis (kind, risk) | where: hot function (share → at most), files "
                "| expected effect | sources |",
                "|---|---|---|---|---|",
            ]
            for i, h in enumerate(self.hypotheses, 1):
                effects = list(h.expected_effect.items())
                if len(effects) > 1 and len({t for _, t in effects}) == 1:
                    effects = [("all", effects[0][1])]
                effect = "; ".join(f"{md_cell(a, 20)}: {md_cell(t, 100)}" for a, t in effects)
                files = ", ".join(f"`{md_cell(f, 80)}`" for f in h.target_files[:4])
                if len(h.target_files) > 4:
                    files += f" +{len(h.target_files) - 4}"
                flight = " ".join(f"[{j}]({u})" for j, u in enumerate(h.in_flight, 1))
                where = hot_cell(h) + (f"; {files}" if files else "")
                cites = self._cite(h.citations) + (f"; in flight: {flight}" if flight else "")
                lines.append(
                    f"| {i} | **{md_cell(h.title, 140)}** ({h.kind}, {h.risk} risk) | {where} | {effect} "
                    f"| {cites} |"
                )
            notes = [
                (i, h.rank_note) for i, h in enumerate(self.hypotheses, 1) if h.rank_note.startswith("ranked")
            ]
            if notes:
                lines += ["", "Ranking by the profile:"] + [f"- #{i}: {md_cell(n, 400)}" for i, n in notes]
        else:
            lines.append("No hypotheses: the sources below did not yield a testable change.")
        lines += ["", "#### Sources", ""]
        for i, s in enumerate(self.sources, 1):
            title = f"[{md_cell(s.title, 160)}]({s.url})" if s.url else md_cell(s.title, 160)
            lines.append(
                f"{i}. {title} — {s.kind}: {md_cell(s.summary, 220)}"
                + (f" *Suggests:* {md_cell(s.suggests, 220)}" if s.suggests else "")
            )
        if not self.sources:
            lines.append("No sources found.")
        lines += ["", "#### Notes", ""]
        lines += [f"- **{n.source}**: {n.status} — {md_cell(n.detail, 600)}" for n in self.notes]
        text = "\n".join(lines) + "\n"
        if len(text) > MAX_MARKDOWN_CHARS:  # GitHub comments hold 65536 characters, shared with the status
            text = (
                text[:MAX_MARKDOWN_CHARS].rsplit("\n", 1)[0]
                + "\n\n*(dossier truncated; the full one is in the run's artifacts)*\n"
            )
        return text


def hot_cell(h: Hypothesis) -> str:
    """`matmul` 69.1% → ≤ 3.24× (Amdahl); — without a profile."""
    if h.hot_share is None:
        return "— (no profile)"
    name = f"`{md_cell(h.hot_function, 60).replace(chr(96), '')}`" if h.hot_function else "none profiled"
    bound = f"≤ {h.amdahl_max:.2f}×" if (h.amdahl_max or 0) < 100 else "unbounded"
    if h.roofline_max is not None:
        bound += f" (Amdahl), ≤ {h.roofline_max:.2f}× (roofline)"
    return f"{name} {100 * h.hot_share:.1f}% → {bound}"


# ---------------------------------------------------------------- sources -> Source / Hypothesis


def profile_sources(profile: dict[str, Any] | None, n: int = profile_source.TOP) -> list[Source]:
    """The profile's top functions as citable sources (`profile:<function>`)."""
    if not profile or not profile.get("available"):
        return []
    out = []
    for f in profile_source.top(profile, n):
        name = profile_source.base_name(f["name"])
        out.append(
            Source(
                id=f"profile:{name}",
                kind="profile",
                title=f"{name}: {100 * f['share']:.1f}% of the baseline's estimated cycles",
                url=None,
                summary=f"simulated self cost {int(f['cycles']):,} of "
                f"{int(profile['estimated_cycles']):,} estimated cycles "
                f"({profile.get('tool', 'cachegrind')}, "
                f"{profile.get('isa', '')})",
                suggests="",
                data={"function": f},
            )
        )
    return out


def paper_source(p: arxiv_source.Paper) -> Source:
    authors = ", ".join(p.authors[:3]) + (" et al." if len(p.authors) > 3 else "")
    abstract = one_line(p.abstract, 400)
    return Source(
        id=f"arxiv:{p.id}",
        kind="arxiv",
        title=p.title,
        url=p.links.get("abs"),
        summary=f"{authors} ({p.published[:4]}). {abstract}",
        suggests="",
        data={"paper": p.to_dict()},
    )


def fork_source(c: ForkCommit) -> Source:
    where = c.repo + (f" (also in {', '.join(c.also_in)})" if c.also_in else "")
    state = {
        True: "applies cleanly to the baseline",
        False: f"does not apply ({c.apply_detail})",
        None: f"not checked ({c.apply_detail})",
    }[c.applies]
    return Source(
        id=f"fork:{c.repo}@{c.sha[:7]}",
        kind="fork_commit",
        title=f"{c.repo}@{c.sha[:7]}: {c.subject}",
        url=c.url,
        summary=f"{where}; {c.stat_text()} ({', '.join(c.hot_files[:4])}); {state}",
        suggests=f"port this commit: {c.subject}" if c.applies else "",
        data={"commit": c.to_dict()},
    )


def gap_source(g: backend_source.BackendGap) -> Source:
    evidence = ", ".join(e.text() for e in g.evidence[:4])
    what = "fusion" if g.kind == "fusion" else "op"
    return Source(
        id=f"backend:{g.name}",
        kind="backend_gap",
        title=f"{what} {g.name}: in {', '.join(g.present_in)}, not in cpu",
        url=None,
        summary=f"evidence: {evidence}",
        suggests=f"implement the {g.name} {what} in the CPU backend",
        data={"gap": g.to_dict()},
    )


def inflight_source(item: InFlight) -> Source:
    kind = "pull" if item.kind == "pull" else "issue"
    hot = " (touches hot paths)" if item.touches_hot else ""
    return Source(
        id=f"{kind}:{item.number}",
        kind=kind,
        title=f"#{item.number} {item.title}",
        url=item.url,
        summary=f"open {'pull request' if kind == 'pull' else 'issue'} upstream{hot}",
        suggests="",
        data={"item": item.to_dict()},
    )


def _risk_for_size(lines_changed: int | None) -> str:
    if lines_changed is None:
        return "medium"
    return "low" if lines_changed <= 60 else "medium" if lines_changed <= 400 else "high"


def _arch_hint(text: str, arch: str) -> bool:
    hints = {"x86": r"avx|sse|x86|amd64|intel|amd\b", "arm": r"neon|sve|arm|aarch64|apple|graviton"}
    return bool(re.search(hints.get(arch, re.escape(arch)), text, re.I))


def fork_hypothesis(c: ForkCommit, archs: list[str]) -> Hypothesis:
    text = f"{c.message} {' '.join(c.files)}"
    specific = [a for a in archs if _arch_hint(text, a)]
    effect = {
        a: (
            "targets this architecture (per its message/files); measure"
            if a in specific
            else "no architecture-specific code seen; measure"
        )
        for a in archs
    }
    if specific and len(specific) < len(archs):
        for a in archs:
            if a not in specific:
                effect[a] = "likely neutral: the change targets other architectures"
    rationale = (
        f"Commit {c.sha[:12]} in {c.repo} is ahead of upstream and touches hot code "
        f"({', '.join(c.hot_files[:5])}; {c.stat_text()}). It applies cleanly to the baseline, so it can "
        f"be benchmarked as is. Message: {one_line(c.message, 300)}"
    )
    lines = None if c.additions is None else c.additions + (c.deletions or 0)
    return Hypothesis(
        id=f"fork-{c.sha[:10]}",
        title=f"Port {c.repo}@{c.sha[:7]}: {c.subject}",
        rationale=rationale,
        target_files=list(c.hot_files),
        expected_effect=effect,
        risk=_risk_for_size(lines),
        citations=[f"fork:{c.repo}@{c.sha[:7]}"],
        kind="fork_commit",
        fork={"repo": c.repo, "sha": c.sha, **({"port_sha": c.port_sha} if c.port_sha else {})},
    )


def gap_hypothesis(g: backend_source.BackendGap, clone_dir: str, archs: list[str]) -> Hypothesis:
    ops = g.name.split("+")
    evidence = ", ".join(e.text() for e in g.evidence[:3])
    rationale = (
        f"The {' -> '.join(ops)} sequence is fused in {', '.join(g.present_in)} ({evidence}) but the CPU "
        f"backend runs it as {len(ops)} separate ops. Fusing it on the CPU saves {len(ops) - 1} pass(es) "
        f"over the intermediate tensor, which matters when token generation is memory-bound. "
        f"Validate outputs against the unfused path."
    )
    effect = {
        a: f"fewer memory passes in {g.name}; gain proportional to that op chain's share of the graph"
        for a in archs
    }
    return Hypothesis(
        id=f"gap-{slugify(g.name, limit=80)}",
        title=f"Fuse {g.name} in the CPU backend",
        rationale=rationale,
        target_files=backend_source.cpu_target_files(clone_dir),
        expected_effect=effect,
        risk="medium" if len(ops) <= 3 else "high",
        citations=[f"backend:{g.name}"],
        kind="backend_gap",
    )


# ---------------------------------------------------------------- LLM synthesis


def _path_ok(path: str, allowed: list[str], protected: list[str]) -> bool:
    if not path or path.startswith(("/", "~")) or ".." in Path(path).parts or "\\" in path:
        return False
    return pathglob.match(path, allowed) and not pathglob.protected(path, protected)


def validate_llm_hypotheses(
    items: Any, known_sources: set[str], project: dict[str, Any]
) -> tuple[list[Hypothesis], list[str]]:
    """Schema-check each LLM item; drop unknown citations, disallowed paths, unknown architectures.

    Returns (valid hypotheses, problems). An item that fails the schema, cites nothing known or targets no
    allowed file is rejected with a problem line; nothing raises."""
    paths = project.get("paths", {})
    allowed, protected = list(paths.get("allowed", ["**"])), list(paths.get("protected", []))
    archs = list(project.get("architectures", ["x86"]))
    validator = jsonschema.Draft202012Validator(HYPOTHESIS_ITEM_SCHEMA)
    good: list[Hypothesis] = []
    problems: list[str] = []
    if not isinstance(items, list):
        return [], [f"hypotheses is {type(items).__name__}, not a list"]
    for i, item in enumerate(items, 1):
        errors = sorted(validator.iter_errors(item), key=lambda e: list(e.path))
        if errors:
            where = "/".join(map(str, errors[0].path)) or "(item)"
            problems.append(f"hypothesis {i} rejected: {where}: {one_line(errors[0].message, 160)}")
            continue
        cites = [c for c in item["citations"] if c in known_sources]
        files = [f for f in item["target_files"] if _path_ok(f, allowed, protected)]
        if not cites:
            problems.append(
                f"hypothesis {i} rejected: cites no known source ({', '.join(item['citations'][:3])})"
            )
            continue
        if not files:
            problems.append(f"hypothesis {i} rejected: no target file inside paths.allowed")
            continue
        if len(cites) < len(item["citations"]) or len(files) < len(item["target_files"]):
            problems.append(f"hypothesis {i}: dropped unknown citations / disallowed files")
        effect = {a: clean(item["expected_effect"].get(a, "not estimated"), 600) for a in archs}
        named = [{"name": one_line(n, 200)} for n in item.get("hot_functions") or []]
        good.append(
            Hypothesis(
                id=f"llm-{i}",
                title=one_line(item["title"], 200),
                rationale=clean(item["rationale"], 4000),
                target_files=files,
                expected_effect=effect,
                risk=item["risk"],
                citations=list(dict.fromkeys(cites)),
                kind="llm",
                hot_functions=named,
            )
        )
    return good, problems


def research_material(
    sources: list[Source], hot_files: list[str], profile: dict[str, Any] | None = None
) -> str:
    parts = []
    if profile is not None:
        parts.append(
            "Where the time goes (simulated self cost per function of the baseline; cite a function "
            "as profile:<name>; name the functions a hypothesis changes in hot_functions):\n"
            + profile_source.material(profile)
        )
    for s in sources:
        parts.append(
            f"[{s.id}] ({s.kind}) {s.title}\n{s.summary}"
            + (f"\nSuggests: {s.suggests}" if s.suggests else "")
        )
        paper = s.data.get("paper")
        if paper:
            parts[-1] += f"\nAbstract: {clean(paper.get('abstract'), 1500)}"
    if hot_files:
        parts.append(
            "Hot files of the repository (what the maintainers want faster):\n" + "\n".join(hot_files[:40])
        )
    return "\n\n".join(parts) or "(no material found)"


def synthesize(
    llm: Any,
    issue: dict[str, Any],
    repo: str,
    project: dict[str, Any],
    sources: list[Source],
    hot_files: list[str],
    max_hypotheses: int,
    profile: dict[str, Any] | None = None,
) -> tuple[str, list[Hypothesis], dict[str, str], list[SourceNote]]:
    """(summary, hypotheses, suggests by source id, notes) from the LLM; failures become notes."""
    variables = {
        "repo": repo,
        "issue": quote(f"{issue.get('title', '')}\n\n{issue.get('body') or ''}", "issue text", 6000),
        "material": quote(research_material(sources, hot_files, profile), "research material", 40000),
        "source_ids": ", ".join(s.id for s in sources) or "(none)",
        "architectures": ", ".join(project.get("architectures", ["x86"])),
        "allowed_paths": ", ".join(project.get("paths", {}).get("allowed", ["**"])),
        "max_hypotheses": str(max_hypotheses),
    }
    try:
        out = llm.structured(PROMPT_TEMPLATE, variables, SYNTHESIS_SCHEMA)
    except Exception as exc:  # BudgetExceeded, LLMError, transport errors: the dossier still ships
        budget = type(exc).__name__ == "BudgetExceeded"
        status = "skipped" if budget else "failed"
        return (
            "",
            [],
            {},
            [
                SourceNote(
                    "llm",
                    status,
                    f"LLM synthesis {'skipped' if budget else 'failed'}: "
                    f"{type(exc).__name__}: {one_line(str(exc), 300)}",
                )
            ],
        )
    if not isinstance(out, dict):
        return "", [], {}, [SourceNote("llm", "failed", f"LLM returned {type(out).__name__}, not an object")]
    known = {s.id for s in sources}
    hyps, problems = validate_llm_hypotheses(out.get("hypotheses", []), known, project)
    suggests = {}
    for n in out.get("source_notes") or []:
        if isinstance(n, dict) and n.get("source") in known and isinstance(n.get("suggests"), str):
            suggests[n["source"]] = one_line(n["suggests"], 300)
    summary = clean(out.get("summary") if isinstance(out.get("summary"), str) else "", 3000)
    detail = f"{len(hyps)} hypotheses accepted"
    if problems:
        detail += "; " + "; ".join(problems[:10])
    return summary, hyps[:max_hypotheses], suggests, [SourceNote("llm", "ok", detail)]


# ---------------------------------------------------------------- ranking


def rank(
    hypotheses: list[Hypothesis],
    goal_terms: set[str],
    min_effect: float = GENERIC_DEFAULTS["decision"]["min_effect"],
) -> list[Hypothesis]:
    """Deterministic score: kind, goal relevance, corroboration, risk, in-flight penalty, LLM order kept, and
    with a profile the share of the cost a hypothesis can move (one that cannot reach `min_effect` even if
    its functions cost nothing sinks, with that reason in `rank_note`)."""
    llm_items = [h for h in hypotheses if h.kind == "llm"]
    for h in hypotheses:
        score = _BASE_SCORE.get(h.kind, 2.0) + _RISK_BONUS.get(h.risk, 0.0)
        terms = terms_of(f"{h.title} {h.rationale}")
        if goal_terms:
            score += len(terms & goal_terms) / max(1, len(goal_terms))
        score += 0.1 * (len(h.citations) - 1)
        if h.kind == "llm":
            score += 0.5 * (len(llm_items) - llm_items.index(h)) / len(llm_items)
        if h.in_flight:
            score -= 0.5
        if h.hot_share is not None:
            score += _SHARE_WEIGHT * h.hot_share
            if (h.amdahl_max or 1.0) < 1.0 + min_effect:
                score -= _BELOW_EFFECT_PENALTY
        if h.roofline_max is not None:  # compute-only on memory-bound decode (profile.roofline_bound)
            if h.roofline_max < 1.0 + min_effect:
                score -= _BELOW_EFFECT_PENALTY
            elif h.roofline_max < (h.amdahl_max or math.inf):
                score -= _ROOFLINE_PENALTY
        h.score = round(score, 3)
    return sorted(hypotheses, key=lambda h: -h.score)


# ---------------------------------------------------------------- orchestration


def _issue_dict(issue: Any) -> dict[str, Any]:
    if isinstance(issue, dict):
        return {
            "title": issue.get("title", ""),
            "body": issue.get("body") or "",
            "number": issue.get("number"),
        }
    return {
        "title": getattr(issue, "title", ""),
        "body": getattr(issue, "body", "") or "",
        "number": getattr(issue, "number", None),
    }


def _baseline_sha(clone_dir: str) -> str | None:
    proc = run(clone_dir, "rev-parse", "HEAD", text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def code_map_for(clone: str | None, project: dict[str, Any]) -> profile_source.CodeMap:
    paths = project.get("paths", {})
    globs = list(dict.fromkeys(list(paths.get("hot", ["**"])) + list(paths.get("allowed", ["**"]))))
    return profile_source.build_code_map(clone, globs) if clone else profile_source.CodeMap()


def annotate_hypotheses(
    hypotheses: list[Hypothesis],
    profile: dict[str, Any] | None,
    cmap: profile_source.CodeMap,
    clone: str | None,
    baseline: str | None,
    min_effect: float,
) -> None:
    """Every hypothesis gets the hot function it targets, the share it can move and its Amdahl bound."""
    usable = bool(profile and profile.get("available"))
    known = set(cmap.funcs) | set(profile_source.shares(profile))
    for h in hypotheses:
        if not usable:
            profile_source.annotate(h, None, min_effect)
            continue
        if h.kind == "fork_commit" and h.fork and clone:
            port = h.fork.get("port_sha")
            names = (
                profile_source.changed_functions(clone, baseline, port)
                if port and baseline
                else profile_source.changed_functions(clone, f"{h.fork['sha']}^", h.fork["sha"])
            )
        elif h.kind == "backend_gap":
            gap = next((c.split(":", 1)[1] for c in h.citations if c.startswith("backend:")), "")
            names = {
                n
                for n in profile_source.shares(profile)
                if any(
                    profile_source.op_share(op, {"functions": [{"name": n, "share": 1.0}]})
                    for op in gap.split("+")
                    if op
                )
            }
        else:
            named = [d["name"] for d in h.hot_functions if d.get("name") in known]
            names = set(named) or profile_source.functions_in(h.target_files, cmap)
        profile_source.annotate(h, profile_source.attribute(names, profile, cmap), min_effect)
        profile_source.roofline_bound(h, profile, min_effect)


def build_dossier(
    issue: Any,
    project: dict[str, Any],
    clone_dir: str | Path | None,
    forge: Forge,
    llm: Any,
    cache_dir: str | Path,
    repo: str,
    options: ResearchOptions | None = None,
    profile: dict[str, Any] | None = None,
) -> Dossier:
    """Run every research source, then synthesize (LLM) or fall back to fork commits + backend gaps.

    `profile` (the `profile` artifact, bot/research/profile.py) is the first input: the dossier opens with it,
    arXiv concepts, backend gaps and fork commits are ordered by the share of the cost they concern, and every
    hypothesis carries its hot function and Amdahl bound. None: research runs without it and says so."""
    options = options or ResearchOptions()
    issue_d = _issue_dict(issue)
    goal = one_line(issue_d["title"], 200)
    goal_text = f"{issue_d['title']}\n{clean(issue_d['body'], 4000)}"
    cache = JsonCache(cache_dir)
    clone = str(clone_dir) if clone_dir else None
    baseline = _baseline_sha(clone) if clone else None
    archs = list(project.get("architectures", ["x86"]))
    hot_globs = list(project.get("paths", {}).get("hot", ["**"]))
    research = project.get("research", {})
    dossier = Dossier(goal=goal, repo=repo, baseline=baseline)
    hot_files = arxiv_source.list_hot_files(clone, hot_globs) if clone else []
    default_effect = GENERIC_DEFAULTS["decision"]["min_effect"]
    min_effect = float(project.get("decision", {}).get("min_effect", default_effect))
    cmap = code_map_for(clone, project)
    dossier.profile = dict(profile) if profile else profile_source.unavailable("no profiling batch was run")
    dossier.profile_md = profile_source.markdown(dossier.profile, cmap)
    usable = bool(dossier.profile.get("available"))
    weights = profile_source.term_weights(dossier.profile)

    # arXiv: concepts of the hot code, those of the costliest functions first
    identifiers = arxiv_source.code_identifiers(clone, hot_files) if clone else None
    if identifiers is not None and usable:
        for name in list(identifiers):  # a function holding 60% of the cost outweighs a thousand mentions
            identifiers[name] += int(
                10_000 * (weights.get(name, 0.0) + profile_source.op_share(name, dossier.profile))
            )
    concepts = arxiv_source.concepts_from_identifiers(identifiers) if identifiers is not None else []
    plan = arxiv_source.plan_queries(goal_text, concepts, options.arxiv.max_queries)
    goal_terms = terms_of(goal_text) | set(plan.rank_terms)
    papers: list[arxiv_source.Paper] = []
    if research.get("arxiv", True):
        dossier.queries = plan.queries
        papers, note = arxiv_source.search(plan, cache, options.arxiv)
        dossier.notes.append(note)
    else:
        dossier.notes.append(SourceNote("arxiv", "skipped", "research.arxiv is false"))

    # forks and related projects
    commits: list[ForkCommit] = []
    if forge is None or not clone or not baseline:
        why = "no forge" if forge is None else "no local clone of the baseline"
        dossier.notes.append(SourceNote("forks", "skipped", why))
    else:
        commits, notes = scan_forks(forge, repo, project, clone, baseline, cache, options.forks)
        dossier.notes.extend(notes)

    # other backends (ggml trees)
    gaps: list[backend_source.BackendGap] = []
    if clone and (
        project.get("preset") == "llama.cpp" or (Path(clone) / backend_source.BACKENDS_DIR).is_dir()
    ):
        scan, note = backend_source.scan_tree(clone)
        gaps = scan.gaps
        dossier.notes.append(note)
    else:
        dossier.notes.append(
            SourceNote("backends", "skipped", "not a ggml tree (no ggml/src) and preset is not llama.cpp")
        )
    if usable:  # the other-backends scan ranked by the hot ops: a fusion of costly ops first
        gaps.sort(
            key=lambda g: (
                g.kind != "fusion",
                -round(sum(profile_source.op_share(op, dossier.profile) for op in g.name.split("+")), 4),
            )
        )
    fusion_gaps = [g for g in gaps if g.kind == "fusion"]
    shown_gaps = (fusion_gaps + [g for g in gaps if g.kind == "op"])[: options.max_gap_sources]

    # upstream's own open work
    in_flight: list[InFlight] = []
    if forge is None:
        dossier.notes.append(SourceNote("upstream", "skipped", "no forge"))
    else:
        in_flight, note = find_in_flight(
            forge,
            repo,
            hot_globs,
            goal_terms,
            cache,
            options.inflight_limit,
            issue_d.get("number"),
            options.attempts,
            options.retry_wait_s,
            options.max_inflight_sources,
        )
        dossier.notes.append(note)

    fork_share: dict[str, float] = {}
    if usable and clone:  # fork commits ranked by the share of the cost in the functions they change
        for c in commits:
            names = (
                profile_source.changed_functions(clone, baseline, c.port_sha)
                if c.port_sha and baseline
                else profile_source.changed_functions(clone, f"{c.sha}^", c.sha)
            )
            fork_share[c.sha] = profile_source.attribute(names, dossier.profile, cmap).share
    shown_commits = sorted(
        commits, key=lambda c: (c.applies is not True, -round(fork_share.get(c.sha, 0.0), 4), -len(c.also_in))
    )[: options.max_fork_sources]
    if len(shown_commits) < len(commits):
        dossier.notes.append(
            SourceNote(
                "forks",
                "ok",
                f"{len(commits) - len(shown_commits)} more hot fork commits "
                f"not listed (they do not apply or are less corroborated)",
            )
        )
    sources = (
        profile_sources(dossier.profile)
        + [paper_source(p) for p in papers]
        + [fork_source(c) for c in shown_commits]
        + [gap_source(g) for g in shown_gaps]
        + [inflight_source(i) for i in in_flight]
    )
    dossier.sources = sources

    hypotheses = [fork_hypothesis(c, archs) for c in shown_commits if c.applies]
    hypotheses += [gap_hypothesis(g, clone or ".", archs) for g in fusion_gaps[: options.max_gap_hypotheses]]
    if llm is None:
        dossier.notes.append(SourceNote("llm", "skipped", "LLM synthesis skipped: no API key"))
    else:
        summary, llm_hyps, suggests, notes = synthesize(
            llm, issue_d, repo, project, sources, hot_files, options.max_hypotheses, dossier.profile
        )
        dossier.summary = summary
        dossier.notes.extend(notes)
        for s in sources:
            if s.id in suggests:
                s.suggests = suggests[s.id]
        hypotheses += llm_hyps
    mark_in_flight(hypotheses, in_flight)
    for h in hypotheses:  # cite the open PRs/issues a hypothesis overlaps with
        for item in in_flight:
            sid = f"{'pull' if item.kind == 'pull' else 'issue'}:{item.number}"
            if item.url in h.in_flight and sid not in h.citations:
                h.citations.append(sid)
    annotate_hypotheses(hypotheses, dossier.profile, cmap, clone, baseline, min_effect)
    dossier.notes.append(
        SourceNote(
            "profile",
            "ok" if usable else "skipped",
            f"ranked by the baseline's simulated profile ({len(dossier.profile['functions'])} functions)"
            if usable
            else f"no simulated profile ({dossier.profile.get('reason')}); research continued without it",
        )
    )
    dossier.hypotheses = rank(hypotheses, goal_terms, min_effect)[: max(options.max_hypotheses, 1)]
    return dossier
