"""Upstream's own open pull requests and issues on the same code: ideas already in flight."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .. import pathglob
from ..forge.errors import RateLimited
from ..text import clean, one_line
from .cache import JsonCache, with_retries
from .model import Hypothesis, SourceNote

if TYPE_CHECKING:
    from ..forge import Forge

LIST_TTL_S = 3600.0
_GENERIC = set(
    "the and for with from into cpu gpu port fuse fused fusion kernel kernels backend backends "
    "faster speed speedup improve improvement perf performance optimize optimization "
    "add use via exists missing ggml src".split()
)


@dataclass
class InFlight:
    kind: str  # "pull" | "issue"
    number: int
    title: str
    url: str
    body: str
    files: list[str] | None
    head_repo: str = ""
    touches_hot: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _field(obj: Any, name: str, default: Any = None) -> Any:
    return obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)


def terms_of(text: str) -> set[str]:
    """Distinctive lowercase terms: identifiers (rms_norm), op names (RMS_NORM -> rms_norm), words >= 3
    chars."""
    words = set()
    for w in re.findall(r"[A-Za-z][A-Za-z0-9_]{2,}", text):
        w = w.lower().removeprefix("ggml_op_")
        if w not in _GENERIC:
            words.add(w)
            words.update(p for p in w.split("_") if len(p) >= 3 and p not in _GENERIC)
    return words


def _load(
    forge: Forge, repo: str, kind: str, limit: int, cache: JsonCache, attempts: int, wait_s: float
) -> list[dict]:
    key = f"{repo}|{kind}|{limit}"
    rows = cache.get("inflight", key, max_age_s=LIST_TTL_S)
    if rows is not None:
        return rows
    if kind == "pull":
        items = with_retries(lambda: forge.list_open_pulls(repo, limit, with_files=True), attempts, wait_s)
    else:
        items = with_retries(lambda: forge.list_open_issues(repo, limit), attempts, wait_s)
    rows = [
        {
            "kind": kind,
            "number": int(_field(i, "number")),
            "title": one_line(_field(i, "title", ""), 200),
            "url": _field(i, "html_url", "") or "",
            "body": clean(_field(i, "body", ""), 1500),
            "files": _field(i, "files"),
            "head_repo": _field(i, "head_repo", "") or "",
        }
        for i in items
    ]
    cache.put("inflight", key, rows)
    return rows


def find_in_flight(
    forge: Forge,
    repo: str,
    hot_globs: list[str],
    goal_terms: set[str],
    cache: JsonCache,
    limit: int = 30,
    exclude_issue: int | None = None,
    attempts: int = 3,
    wait_s: float = 2.0,
    max_items: int = 10,
) -> tuple[list[InFlight], SourceNote]:
    """Open PRs touching hot paths or sharing goal terms, and open issues sharing goal terms (most related
    first)."""
    found: list[InFlight] = []
    relevance: dict[int, tuple[int, bool]] = {}
    errors = []
    for kind in ("pull", "issue"):
        try:
            rows = _load(forge, repo, kind, limit, cache, attempts, wait_s)
        except RateLimited:  # the run is deferred until the reset, not short of a source
            raise
        except Exception as exc:
            errors.append(f"{kind}s: {type(exc).__name__}: {one_line(str(exc), 160)}")
            continue
        for row in rows:
            if kind == "issue" and row["number"] == exclude_issue:
                continue
            item = InFlight(**row)
            item.touches_hot = any(pathglob.match(f, hot_globs) for f in item.files or [])
            shared = terms_of(f"{item.title} {item.body}") & goal_terms
            if item.touches_hot or len(shared) >= 2:
                found.append(item)
                relevance[id(item)] = (len(shared), item.touches_hot)
    found = sorted(found, key=lambda i: relevance[id(i)], reverse=True)[:max_items]
    status = "failed" if len(errors) == 2 else "ok"
    detail = (
        f"{sum(1 for i in found if i.kind == 'pull')} open pull requests and "
        f"{sum(1 for i in found if i.kind == 'issue')} open issues on the same code or goal"
    )
    if errors:
        detail += "; failed: " + "; ".join(errors)
    return found, SourceNote("upstream", status, detail)


def mark_in_flight(hypotheses: list[Hypothesis], items: list[InFlight]) -> None:
    """Attach the URLs of open PRs/issues that already pursue each hypothesis."""
    for h in hypotheses:
        h_terms = terms_of(h.title)
        for item in items:
            text_terms = terms_of(f"{item.title} {item.body}")
            same_fork = bool(h.fork) and item.head_repo == (h.fork or {}).get("repo")
            overlap = h_terms & text_terms
            needed = min(2, len(h_terms)) or 99
            if ((same_fork and overlap) or len(overlap) >= needed) and item.url not in h.in_flight:
                h.in_flight.append(item.url)
