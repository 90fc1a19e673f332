"""arXiv: queries built from the goal and the project's hot code, fetched with the `arxiv` package, ranked by
BM25.

Every query result is cached on disk (keyed by the query) so a rerun costs no requests; the client keeps
arXiv's rate limit (one request per `delay_seconds`, 3 s in production).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import arxiv

from .. import pathglob
from ..gitutil import run
from ..text import clean, one_line
from .cache import JsonCache, with_retries
from .model import SourceNote

DEFAULT_QUERY_URL = "https://export.arxiv.org/api/query"

# identifier token(s) -> concept phrase searched on arXiv
_CODE_CONCEPTS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"soft_?max"), "softmax"),
    (re.compile(r"rms_?norm"), "RMS normalization"),
    (re.compile(r"(?:^|_)(?:mul_?mat|matmul|gemm|gemv|sgemm|mmq?)(?:_|$)"), "matrix multiplication"),
    (re.compile(r"vec_?dot"), "dot product"),
    (re.compile(r"(?:^|_)(?:i?q[1-8]_[0-9k]|q[1-8]k|quant\w*|dequant\w*)(?:_|$)"), "quantization"),
    (re.compile(r"(?:^|_)rope(?:_|$)"), "rotary position embedding"),
    (re.compile(r"flash_?attn|attention|(?:^|_)attn(?:_|$)"), "attention"),
    (re.compile(r"(?:^|_)(?:simd|avx\w*|neon|sve\w*|sse\w*|amx)(?:_|$)"), "SIMD"),
    (re.compile(r"(?:^|_)(?:silu|gelu|swiglu|geglu)(?:_|$)"), "activation function"),
    (re.compile(r"(?:^|_)conv\w*"), "convolution"),
    (re.compile(r"(?:^|_)(?:fp16|f16|bf16|half)(?:_|$)"), "half precision"),
    (re.compile(r"kv_?cache"), "KV cache"),
    (re.compile(r"thread\w*|barrier"), "multithreading"),
    (re.compile(r"(?:^|_)(?:tile|tiling|block\w*)(?:_|$)"), "cache blocking"),
]

# goal phrase in the issue -> phrase searched on arXiv
_GOAL_CONCEPTS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"token generation|decod\w+|text generation|tg\b", re.I), "LLM inference"),
    (re.compile(r"prompt processing|prefill|\bpp\b", re.I), "prefill"),
    (re.compile(r"\bcpus?\b|x86|arm\b|aarch64", re.I), "CPU"),
    (re.compile(r"quantiz\w+", re.I), "quantization"),
    (re.compile(r"mat(?:rix)?[ -]?mul\w*|gemm|gemv", re.I), "matrix multiplication"),
    (re.compile(r"latency", re.I), "latency"),
    (re.compile(r"throughput", re.I), "throughput"),
    (re.compile(r"memory bandwidth|memory-bound", re.I), "memory bandwidth"),
    (re.compile(r"softmax", re.I), "softmax"),
    (re.compile(r"attention", re.I), "attention"),
]

_STOPWORDS = set(
    "a an and are as at be by can could do does for from how in into is it its make more of on or our "
    "please should so than that the this to up use using we what when which with without would faster "
    "speed speedup improve improvement better performance fast slow issue".split()
)
_SOURCE_EXT = (".c", ".h", ".cc", ".cpp", ".hpp", ".cu", ".m", ".metal", ".py", ".rs", ".go", ".inc")
_C_DEF = re.compile(
    r"^(?!\s)(?!(?:if|for|while|switch|return|else|do)\b)[A-Za-z_][\w\s\*&:<>,]*?\b([A-Za-z_]\w{2,})\s*\("
)
_PY_DEF = re.compile(r"^\s*def ([A-Za-z_]\w{2,})\s*\(")
_GGML_OP = re.compile(r"\bGGML_OP_([A-Z0-9_]+)")


@dataclass
class ArxivOptions:
    """Knobs for the arXiv source; production defaults respect arXiv's terms of use."""

    base_url: str | None = None  # query endpoint; None -> export.arxiv.org
    delay_seconds: float = 3.0  # between requests (arXiv asks for >= 3 s)
    max_results: int = 8  # per query
    max_queries: int = 3
    max_papers: int = 8  # kept after ranking
    attempts: int = 3
    retry_wait_s: float = 3.0


@dataclass
class QueryPlan:
    queries: list[str]
    rank_terms: list[str]
    concepts: list[str] = field(default_factory=list)


@dataclass
class Paper:
    id: str
    title: str
    authors: list[str]
    published: str
    abstract: str
    links: dict[str, str]
    categories: list[str] = field(default_factory=list)
    score: float = 0.0
    queries: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_result(cls, r: arxiv.Result, query: str) -> Paper:
        links = {"abs": r.entry_id}
        if r.pdf_url:
            links["pdf"] = r.pdf_url
        return cls(
            id=r.get_short_id(),
            title=one_line(r.title, 300),
            authors=[one_line(a.name, 80) for a in r.authors],
            published=r.published.date().isoformat() if r.published else "",
            abstract=clean(r.summary, 3000),
            links=links,
            categories=list(r.categories),
            queries=[query],
        )


# ---------------------------------------------------------------- hot code -> concepts


def list_hot_files(clone_dir: str | Path, hot_globs: list[str], limit: int = 400) -> list[str]:
    """Tracked source files of the clone matching the hot globs (bot.pathglob), at most `limit`."""
    out = run(clone_dir, "ls-files", "-z", check=False)
    if out.returncode != 0:
        return []
    files = [f for f in out.stdout.decode("utf-8", "replace").split("\0") if f]
    hot = [f for f in files if f.endswith(_SOURCE_EXT) and pathglob.match(f, hot_globs)]
    return hot[:limit]


def code_identifiers(clone_dir: str | Path, files: list[str], max_bytes: int = 400_000) -> Counter[str]:
    """Function names defined in the files and GGML op names they mention, counted."""
    names: Counter[str] = Counter()
    for rel in files:
        try:
            text = (Path(clone_dir) / rel).read_text(encoding="utf-8", errors="replace")[:max_bytes]
        except OSError:
            continue
        for line in text.splitlines():
            m = _C_DEF.match(line) or _PY_DEF.match(line)
            if m and not line.rstrip().endswith(";"):
                names[m.group(1).lower()] += 1
        for op in _GGML_OP.findall(text):
            names[op.lower()] += 1
    return names


def concepts_from_identifiers(names: Counter[str], limit: int = 6) -> list[str]:
    """Map identifiers (e.g. `ggml_vec_dot_q4_0_q8_0`) to arXiv-searchable concepts, most frequent first."""
    weights: Counter[str] = Counter()
    for name, count in names.items():
        for pattern, concept in _CODE_CONCEPTS:
            if pattern.search(name):
                weights[concept] += count
    return [c for c, _ in weights.most_common(limit)]


def goal_concepts(goal_text: str) -> tuple[list[str], list[str]]:
    """(concepts recognised in the goal, remaining plain keywords)."""
    text = clean(goal_text, 4000)
    concepts = [c for p, c in _GOAL_CONCEPTS if p.search(text)]
    words = [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z0-9+\-]{2,}", text)]
    keywords = [w for w in dict.fromkeys(words) if w not in _STOPWORDS][:8]
    return list(dict.fromkeys(concepts)), keywords


def plan_queries(goal_text: str, code_concepts: list[str], max_queries: int = 3) -> QueryPlan:
    """arXiv queries pairing each hot-code concept with the goal's context (e.g. CPU, LLM inference)."""
    goals, keywords = goal_concepts(goal_text)
    context = [g for g in goals if g not in code_concepts] or ["LLM inference"]
    topics = list(dict.fromkeys([c for c in goals if c in {p for _, p in _CODE_CONCEPTS}] + code_concepts))
    if not topics:
        topics = keywords[:max_queries] or ["performance optimization"]
    queries: list[str] = []
    for topic in topics[:max_queries]:
        ctx = " OR ".join(f'all:"{c}"' for c in context[:2])
        queries.append(f'all:"{topic}" AND ({ctx})')
    rank_terms = tokenize(" ".join(topics + context + keywords))
    return QueryPlan(queries=queries, rank_terms=list(dict.fromkeys(rank_terms)), concepts=topics)


# ---------------------------------------------------------------- ranking


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens with a light plural/suffix folding (no external stemmer)."""
    out = []
    for w in re.findall(r"[a-z0-9]+", text.lower()):
        if len(w) > 4 and w.endswith("ies"):
            w = w[:-3] + "y"
        elif len(w) > 4 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]
        if w not in _STOPWORDS:
            out.append(w)
    return out


def bm25_scores(docs: list[str], query_terms: list[str], k1: float = 1.5, b: float = 0.75) -> list[float]:
    """Okapi BM25 of each document against the query terms (IDF over `docs`, kept positive)."""
    toks = [tokenize(d) for d in docs]
    n = len(toks)
    if n == 0:
        return []
    avgdl = sum(len(t) for t in toks) / n or 1.0
    df = Counter(term for t in toks for term in set(t))
    terms = [t for t in dict.fromkeys(query_terms)]
    scores = []
    for t in toks:
        tf = Counter(t)
        s = 0.0
        for term in terms:
            f = tf.get(term, 0)
            if not f:
                continue
            idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
            s += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * len(t) / avgdl))
        scores.append(s)
    return scores


def rank_papers(papers: list[Paper], rank_terms: list[str]) -> list[Paper]:
    """Sort by BM25 over title (counted twice) + abstract; ties keep arXiv's order."""
    scores = bm25_scores([f"{p.title} {p.title} {p.abstract}" for p in papers], rank_terms)
    for p, s in zip(papers, scores, strict=True):
        p.score = round(s, 4)
    return sorted(papers, key=lambda p: -p.score)


# ---------------------------------------------------------------- fetching


def make_client(options: ArxivOptions) -> arxiv.Client:
    """An arxiv.Client honouring the rate limit; retries are ours (tenacity), not the package's."""
    client = arxiv.Client(
        page_size=max(1, options.max_results), delay_seconds=options.delay_seconds, num_retries=0
    )
    client.query_url_format = (options.base_url or DEFAULT_QUERY_URL) + "?{}"
    return client


def _fetch(client: arxiv.Client, query: str, options: ArxivOptions) -> list[dict[str, Any]]:
    search = arxiv.Search(query=query, max_results=options.max_results, sort_by=arxiv.SortCriterion.Relevance)
    results = with_retries(lambda: list(client.results(search)), options.attempts, options.retry_wait_s)
    return [Paper.from_result(r, query).to_dict() for r in results]


def search(plan: QueryPlan, cache: JsonCache, options: ArxivOptions) -> tuple[list[Paper], SourceNote]:
    """Run the planned queries (cache first), merge duplicates, rank, keep the best `max_papers`."""
    client: arxiv.Client | None = None
    by_id: dict[str, Paper] = {}
    failed: list[str] = []
    cached = 0
    for query in plan.queries:
        key = f"{query}|max={options.max_results}"
        rows = cache.get("arxiv", key)
        if rows is None:
            client = client or make_client(options)
            try:
                rows = _fetch(client, query, options)
            except Exception as exc:  # network, HTTP status, malformed feed: a note, not a crash
                failed.append(f"{query!r}: {type(exc).__name__}: {one_line(str(exc), 160)}")
                continue
            cache.put("arxiv", key, rows)
        else:
            cached += 1
        for row in rows:
            paper = Paper(**row)
            base_id = re.sub(r"v\d+$", "", paper.id)
            if base_id in by_id:
                by_id[base_id].queries = list(dict.fromkeys(by_id[base_id].queries + paper.queries))
            else:
                by_id[base_id] = paper
    ranked = [p for p in rank_papers(list(by_id.values()), plan.rank_terms) if p.score > 0][
        : options.max_papers
    ]
    ok = len(plan.queries) - len(failed)
    detail = f"{len(ranked)} relevant papers from {ok}/{len(plan.queries)} queries ({cached} from cache)"
    if failed:
        detail += "; failed: " + "; ".join(failed)
    status = "failed" if plan.queries and ok == 0 else "ok"
    return ranked, SourceNote("arxiv", status, detail)
