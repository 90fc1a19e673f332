"""arXiv source through the real `arxiv` package against a local Atom feed double."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.research import arxiv as ax
from bot.research.cache import JsonCache

GOAL = "Speed up token generation on CPU\nQuantized matmul is the bottleneck."


def _options(url: str, **kw) -> ax.ArxivOptions:
    return ax.ArxivOptions(base_url=url, delay_seconds=0, retry_wait_s=0, **kw)


def _plan() -> ax.QueryPlan:
    return ax.plan_queries(GOAL, ["matrix multiplication", "softmax", "quantization"], max_queries=3)


def test_production_client_respects_rate_limit() -> None:
    client = ax.make_client(ax.ArxivOptions())
    assert client.delay_seconds >= 3
    assert client.query_url_format.startswith("https://export.arxiv.org/api/query?")


def test_hot_code_identifiers_become_concepts(tmp_path: Path) -> None:
    (tmp_path / "ops.c").write_text(
        "void ggml_vec_dot_q4_0_q8_0(int n, float * s) {\n}\n"
        "static void ggml_compute_forward_soft_max_f32(const struct ggml_tensor * t) {\n}\n"
        "void ggml_compute_forward_rms_norm(void) {\n}\n"
        "int helper(void);\n"
        "    case GGML_OP_SOFT_MAX: break;\n"
    )
    names = ax.code_identifiers(tmp_path, ["ops.c"])
    assert names["ggml_vec_dot_q4_0_q8_0"] == 1 and names["soft_max"] == 1
    assert "helper" not in names  # a declaration, not a definition
    concepts = ax.concepts_from_identifiers(names)
    assert concepts[0] == "softmax"
    assert {"dot product", "quantization", "RMS normalization"} <= set(concepts)


def test_plan_pairs_code_concepts_with_goal_context() -> None:
    plan = _plan()
    # topics named in the goal come first, then the hot code's
    assert [q.split(" AND ")[0] for q in plan.queries] == [
        'all:"quantization"',
        'all:"matrix multiplication"',
        'all:"softmax"',
    ]
    assert all('all:"CPU"' in q and 'all:"LLM inference"' in q for q in plan.queries)
    assert {"cpu", "softmax", "quantization", "token", "generation"} <= set(plan.rank_terms)


def test_bm25_prefers_documents_with_more_query_terms() -> None:
    docs = ["softmax on the CPU", "protein folding", "CPU softmax softmax kernels for LLM inference"]
    scores = ax.bm25_scores(docs, ["softmax", "cpu", "inference"])
    assert scores[1] == 0
    assert scores[2] > scores[0] > 0


def test_search_ranks_papers_and_keeps_metadata(arxiv, tmp_path: Path) -> None:
    papers, note = ax.search(_plan(), JsonCache(tmp_path), _options(arxiv.url))
    assert len(arxiv.requests) == 3  # one page per query
    assert note.status == "ok" and "0 from cache" in note.detail
    assert [p.id for p in papers][0] == "2402.00001v1"
    assert "2405.00004v1" not in {p.id for p in papers}  # the protein paper matched nothing
    top = papers[0]
    assert top.title == "Fast Quantized Matrix Multiplication for LLM Inference on CPUs"
    assert top.authors == ["A. Author", "B. Author"] and top.published == "2024-02-01"
    assert top.links == {
        "abs": "http://arxiv.org/abs/2402.00001v1",
        "pdf": "http://arxiv.org/pdf/2402.00001v1",
    }
    assert "SIMD kernels" in top.abstract
    assert papers == sorted(papers, key=lambda p: -p.score)
    assert len(top.queries) >= 2  # found by several queries, merged once


def test_second_run_is_served_from_cache(arxiv, tmp_path: Path) -> None:
    first, _ = ax.search(_plan(), JsonCache(tmp_path), _options(arxiv.url))
    before = len(arxiv.requests)
    second, note = ax.search(_plan(), JsonCache(tmp_path), _options(arxiv.url))
    assert len(arxiv.requests) == before  # zero HTTP requests on the rerun
    assert [p.to_dict() for p in second] == [p.to_dict() for p in first]
    assert "3 from cache" in note.detail


def test_transient_503_is_retried(arxiv, tmp_path: Path) -> None:
    arxiv.fail_with(503, 1)
    papers, note = ax.search(_plan(), JsonCache(tmp_path), _options(arxiv.url, attempts=3))
    assert len(arxiv.requests) == 4
    assert note.status == "ok" and papers


def test_persistent_503_gives_failed_note_and_caches_nothing(arxiv, tmp_path: Path) -> None:
    arxiv.fail_with(503, 1000)
    papers, note = ax.search(_plan(), JsonCache(tmp_path), _options(arxiv.url, attempts=2))
    assert len(arxiv.requests) == 3 * 2
    assert papers == [] and note.status == "failed"
    assert "HTTP 503" in note.detail
    arxiv.fail_with(503, 0)
    papers, note = ax.search(_plan(), JsonCache(tmp_path), _options(arxiv.url, attempts=2))
    assert note.status == "ok" and papers


def test_unreachable_server_is_a_failed_note(tmp_path: Path) -> None:
    papers, note = ax.search(
        _plan(), JsonCache(tmp_path), _options("http://127.0.0.1:9/api/query", attempts=1)
    )
    assert papers == [] and note.status == "failed" and "ConnectionError" in note.detail


@pytest.mark.parametrize("goal", ["", "<!-- hidden -->"])
def test_empty_goal_still_plans_queries(goal: str) -> None:
    plan = ax.plan_queries(goal, [], max_queries=2)
    assert plan.queries and all("all:" in q for q in plan.queries)
