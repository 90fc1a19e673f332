"""A local stand-in for export.arxiv.org/api/query: serves Atom XML built from fixture entries, counts
requests.

Matching is lexical like arXiv's `all:` field: an entry matches when any quoted phrase or bare word of the
query occurs in its title or summary. `fail_with(503, n)` answers the next n requests with that status.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse
from xml.sax.saxutils import escape


@dataclass
class Entry:
    id: str
    title: str
    summary: str
    authors: list[str]
    published: str = "2024-03-01T00:00:00Z"
    categories: list[str] = field(default_factory=lambda: ["cs.LG"])


FIXTURE_ENTRIES = [
    Entry(
        "2402.00001v1",
        "Fast Quantized Matrix Multiplication for LLM Inference on CPUs",
        "We present SIMD kernels for 4-bit quantized matrix multiplication that speed up token generation "
        "on x86 and ARM CPUs by reorganising weights for AVX2 and NEON dot product instructions.",
        ["A. Author", "B. Author"],
        "2024-02-01T10:00:00Z",
    ),
    Entry(
        "2403.00002v2",
        "Online Normalizer Calculation for Softmax",
        "A single-pass softmax that computes the normalizer online, reducing memory accesses; "
        "applicable to CPU and GPU attention kernels.",
        ["C. Author"],
        "2018-05-08T00:00:00Z",
    ),
    Entry(
        "2404.00003v1",
        "Kernel Fusion of RMS Normalization and Elementwise Multiply",
        "Fusing RMS normalization with the following elementwise multiplication removes a pass over "
        "activations, improving LLM inference latency on memory-bound CPU workloads.",
        ["D. Author", "E. Author", "F. Author"],
        "2024-04-02T00:00:00Z",
    ),
    Entry(
        "2405.00004v1",
        "Protein Folding with Diffusion Models",
        "We study diffusion models for protein structure prediction.",
        ["G. Author"],
        "2024-05-03T00:00:00Z",
        ["q-bio.BM"],
    ),
]


def atom_feed(entries: list[Entry], start: int, total: int) -> bytes:
    """An Atom document in the shape the arXiv API returns."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" '
        'xmlns:arxiv="http://arxiv.org/schemas/atom">',
        "<title>arXiv Query</title><id>http://arxiv.org/api/double</id><updated>2024-06-01T00:00:00Z</updated>",
        f"<opensearch:totalResults>{total}</opensearch:totalResults>",
        f"<opensearch:startIndex>{start}</opensearch:startIndex>",
        f"<opensearch:itemsPerPage>{len(entries)}</opensearch:itemsPerPage>",
    ]
    for e in entries:
        authors = "".join(f"<author><name>{escape(a)}</name></author>" for a in e.authors)
        cats = "".join(
            f'<category term="{escape(c)}" scheme="http://arxiv.org/schemas/atom"/>' for c in e.categories
        )
        parts.append(
            f"<entry><id>http://arxiv.org/abs/{e.id}</id><updated>{e.published}</updated>"
            f"<published>{e.published}</published><title>{escape(e.title)}</title>"
            f"<summary>{escape(e.summary)}</summary>{authors}"
            f'<link href="http://arxiv.org/abs/{e.id}" rel="alternate" type="text/html"/>'
            f'<link title="pdf" href="http://arxiv.org/pdf/{e.id}" rel="related" type="application/pdf"/>'
            f'<arxiv:primary_category term="{escape(e.categories[0])}" scheme="http://arxiv.org/schemas/atom"/>'
            f"{cats}</entry>"
        )
    parts.append("</feed>")
    return "\n".join(parts).encode("utf-8")


def query_terms(search_query: str) -> list[str]:
    """Quoted phrases and bare words of an arXiv `search_query`, minus field prefixes and operators."""
    phrases = re.findall(r'"([^"]+)"', search_query)
    rest = re.sub(r'"[^"]+"', " ", search_query)
    words = [w.split(":", 1)[-1] for w in re.findall(r"[\w:]+", rest)]
    words = [w for w in words if w and w not in {"AND", "OR", "ANDNOT", "all", "ti", "abs"}]
    return [t.lower() for t in phrases + words]


class ArxivDouble:
    """Threaded HTTP server; use as a context manager; `url` is the query endpoint."""

    def __init__(self, entries: list[Entry] | None = None):
        self.entries = list(FIXTURE_ENTRIES if entries is None else entries)
        self.requests: list[str] = []
        self._fail_status = 0
        self._fail_left = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api/query"

    def fail_with(self, status: int, times: int) -> None:
        with self._lock:
            self._fail_status, self._fail_left = status, times

    def __enter__(self) -> ArxivDouble:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, path: str) -> tuple[int, bytes]:
        with self._lock:
            self.requests.append(path)
            if self._fail_left > 0:
                self._fail_left -= 1
                return self._fail_status, b"Service Unavailable"
        url = urlparse(path)
        if url.path != "/api/query":
            return 404, b"not found"
        qs = parse_qs(url.query)
        terms = query_terms(qs.get("search_query", [""])[0])
        start = int(qs.get("start", ["0"])[0])
        size = int(qs.get("max_results", ["10"])[0])
        hits = [e for e in self.entries if any(t in f"{e.title} {e.summary}".lower() for t in terms)]
        return 200, atom_feed(hits[start : start + size], start, len(hits))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                status, body = double._answer(self.path)
                self.send_response(status)
                self.send_header("Content-Type", "application/atom+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler
