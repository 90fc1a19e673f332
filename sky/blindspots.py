"""Where the simulated tier is blind: which of a candidate's changes act through something cachegrind's run
cannot see. Stdlib only: the VM driver (sky/driver.py) scans each candidate's diff with it, and the bot
(bot/experiments/stats/policy.py, through bot.resources.sky_module) scans the per-function profile diff.

The simulated run is ONE thread (`llama-bench -t 1`), one ISA (x86-64-v3 / armv8.2-a+dotprod: valgrind runs
no AVX-512, AMX or SVE) and a cache model with a fixed latency per miss (no prefetcher, no bandwidth limit).
So three kinds of change are invisible to it, and a simulated "no change" says nothing about them:

* ``threads``: work splitting, chunking, barriers, the thread pool (at -t 1 one thread does all the work
  either way, so moving work between threads, or waiting less, costs the same estimated cycles);
* ``isa``: code that only the native build runs (AVX-512, AMX, SVE, VNNI-512 paths);
* ``bandwidth``: prefetching, non-temporal stores, huge pages, NUMA placement (the cache model has no
  prefetcher and no DRAM bandwidth, only a latency weight per LL miss).

A scan reads only the changed lines (added or removed, ``-U0`` hunks); a mention in an unchanged context line
does not count. Each finding says which tokens it matched so a reader can check it.
"""

from __future__ import annotations

import re

# kind -> (what the simulator cannot see, token patterns on changed lines of C/C++ sources)
RULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "threads": (
        "the simulation runs one thread: splitting work between threads, chunking and waiting cost the same",
        (
            r"\bggml_barrier\b",
            r"\bthreadpool\w*",
            r"\bggml_graph_compute_thread\b",
            r"\bggml_threadpool_chunk_\w+",
            r"\bn_threads\b",
            r"\bnth\b",
            r"\bith\b",
            r"\bnchunk\w*",
            r"\bchunk_size\w*",
            r"\bcurrent_chunk\b",
            r"\bpthread_\w+",
            r"#\s*pragma\s+omp\b",
            r"\bomp_\w+",
            r"\batomic_(?:fetch_\w+|load\w*|store\w*|compare_exchange\w*)\b",
            r"\bstd::thread\b",
        ),
    ),
    "isa": (
        "the simulated build targets x86-64-v3 / armv8.2-a (valgrind runs no AVX-512, AMX or SVE)",
        (
            r"__AVX512\w*",
            r"\b_mm512_\w+",
            r"__AMX\w*",
            r"\b_tile_\w+",
            r"\bamx\w*",
            r"__ARM_FEATURE_SVE\w*",
            r"\bsv\w+_[suf](?:8|16|32|64)\b",
            r"__AVXVNNI\w*",
            r"\bGGML_AVX512\w*",
        ),
    ),
    "bandwidth": (
        "the cache model has no prefetcher and no DRAM bandwidth limit, only a latency per LL miss",
        (
            r"\b_mm_prefetch\b",
            r"\b__builtin_prefetch\b",
            r"\b_mm\d*_stream_\w+",
            r"\bMADV_\w+",
            r"\bmadvise\b",
            r"\bMAP_HUGETLB\b",
            r"\bnuma\w*",
            r"\bmlock\b",
        ),
    ),
}
SOURCE_RE = re.compile(r"\.(c|cc|cpp|cxx|h|hh|hpp|inc|cu|m|mm|s|S)$")
# function names (a cachegrind per-function diff) that belong to a kind, for a result without a diff scan
FUNCTION_RULES: dict[str, tuple[str, ...]] = {
    "threads": (
        r"ggml_barrier",
        r"ggml_graph_compute_thread",
        r"threadpool",
        r"ggml_graph_compute_secondary",
        r"pthread_",
        r"gomp_|GOMP_",
    ),
}
_COMPILED = {kind: [re.compile(p) for p in pats] for kind, (_, pats) in RULES.items()}
_FN_COMPILED = {kind: [re.compile(p) for p in pats] for kind, pats in FUNCTION_RULES.items()}
MAX_TOKENS = 6


def changed_lines(diff: str) -> list[tuple[str, str]]:
    """[(path, text)] of every added or removed line of a unified diff, in source files only."""
    out: list[tuple[str, str]] = []
    path = ""
    for line in diff.splitlines():
        if line.startswith("+++ ") or line.startswith("--- "):
            name = line[4:].strip()
            if name != "/dev/null":
                path = name[2:] if name[:2] in ("a/", "b/") else name
            continue
        if line.startswith("diff --git "):
            path = ""
            continue
        if line[:1] in "+-" and path and SOURCE_RE.search(path):
            out.append((path, line[1:]))
    return out


def scan(diff: str) -> list[dict]:
    """The blind spots a unified diff's changed lines touch: [{"kind", "why", "tokens", "files"}], by kind."""
    found: dict[str, dict] = {}
    for path, text in changed_lines(diff):
        code = text.split("//", 1)[0]  # a comment mentioning a token is no change to what runs
        for kind, pats in _COMPILED.items():
            for pat in pats:
                for m in pat.finditer(code):
                    rec = found.setdefault(
                        kind, {"kind": kind, "why": RULES[kind][0], "tokens": [], "files": []}
                    )
                    if m.group(0) not in rec["tokens"] and len(rec["tokens"]) < MAX_TOKENS:
                        rec["tokens"].append(m.group(0))
                    if path not in rec["files"]:
                        rec["files"].append(path)
    return [found[k] for k in RULES if k in found]


def scan_functions(names: list[str]) -> list[dict]:
    """Blind spots named by the functions whose simulated cost moved (a fallback when no diff was scanned)."""
    found: dict[str, dict] = {}
    for name in names:
        for kind, pats in _FN_COMPILED.items():
            if any(p.search(name) for p in pats):
                rec = found.setdefault(kind, {"kind": kind, "why": RULES[kind][0], "tokens": [], "files": []})
                if name not in rec["tokens"] and len(rec["tokens"]) < MAX_TOKENS:
                    rec["tokens"].append(name)
    return [found[k] for k in RULES if k in found]


def summary(spots: list[dict]) -> str:
    """One line: `threads (nth, ggml_barrier), isa (_mm512_add_ps)`."""
    return ", ".join(
        f"{s.get('kind')} ({', '.join(str(t) for t in s.get('tokens') or [])})"
        if s.get("tokens")
        else str(s.get("kind"))
        for s in spots
    )
