"""Profile-guided research: the code map over real git, what a change can move (Amdahl bound), and the dossier
ordered by where the time goes. The profile is a fixed record in the shape the simulated tier writes (the
shares the attention demo's ./bench has under cachegrind), so the figures are exact."""

from __future__ import annotations

import subprocess
from pathlib import Path

import make_fork  # examples/make_fork.py (examples/ is on pytest's pythonpath)
import pytest
from research_fixtures import ForgeDouble, World

from bot.research import ResearchOptions, build_dossier
from bot.research import profile as prof
from bot.research.forks import ForkOptions

ROOT = Path(__file__).resolve().parents[1]
SHARES = [
    ("matmul", 0.6906),
    ("__expf_fma", 0.187),
    ("softmax_rows", 0.0932),
    ("attention", 0.0108),
    ("???", 0.0101),
    ("main", 0.0064),
    ("rmsnorm_rows", 0.0015),
    ("__memcpy_avx_unaligned_erms", 0.0001),
]
ISSUE = {"title": "Speed up attention", "body": ""}
PROJECT = {
    "preset": "generic",
    "architectures": ["x86"],
    "paths": {"hot": ["src/**"], "allowed": ["src/**"], "protected": ["harness/**"]},
    "research": {"arxiv": False, "max_forks": 0, "related": []},
    "decision": {"min_effect": 0.02},
}


def record(shares: list[tuple[str, float]], total: int = 1_000_000) -> dict:
    """A baseline's `simulated` record as sky/simulate.py writes it."""
    return {
        "ok": True,
        "tool": "cachegrind",
        "isa": "x86-64 (own build)",
        "estimated_cycles": total,
        "instructions": total // 2,
        "seconds": 9.0,
        "functions": [{"name": n, "cycles": round(s * total), "instructions": 0} for n, s in shares],
    }


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    return make_fork.build(tmp_path_factory.mktemp("forks") / "git")


@pytest.fixture(scope="module")
def profile():
    return prof.from_results(
        {
            "x86": {
                "variants": {"baseline": {"status": "ok", "simulated": record(SHARES)}},
                "simulation": {"available": True},
            }
        },
        "x86",
    )


class CannedLLM:
    def __init__(self, answer: dict):
        self.answer = answer
        self.variables: dict = {}

    def structured(self, template: str, variables: dict, schema: dict) -> dict:
        self.variables = variables
        return self.answer


def test_fork_commits_are_attributed_to_the_functions_they_change(history, profile) -> None:
    cmap = prof.build_code_map(history.upstream, ["src/**"])
    assert cmap.where("matmul") == "src/matmul.c:4" and "attn_expf" in cmap.calls_of("softmax_row")
    got = {}
    for c in history.commits:
        names = prof.changed_functions(history.forks[c.fork], f"{c.sha}^", c.sha)
        got[c.slug] = (names, prof.attribute(names, profile, cmap))
    names, att = got["2-matmul-ikj"]
    assert names == {"matmul"} and att.hot_function == "matmul"
    assert att.share == pytest.approx(0.6906) and att.amdahl == pytest.approx(1 / (1 - 0.6906))
    # softmax_row is inlined into softmax_rows (its cost is the caller's) and calls expf (libm's __expf_fma)
    names, att = got["1-fused-softmax"]
    assert names == {"softmax_row"} and att.moved == {"__expf_fma": 0.187, "softmax_rows": 0.0932}
    assert "inlined" in att.why
    names, att = got["3-fast-exp"]
    assert names == {"attn_expf"} and att.share == pytest.approx(0.187 + 0.0932)
    # the tidy rms_norm cannot reach a 2% effect even at zero cost
    names, att = got["4-rmsnorm-tidy"]
    assert names == {"rmsnorm_rows"} and att.amdahl < 1.002


def _commit(repo: Path, message: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", message], cwd=repo, check=True
    )


def test_a_new_helper_between_functions_counts_through_its_caller_only(git_worktree) -> None:
    """hana's GEMV fork in demo --llama: a new function inserted after one kernel, called by a changed
    dispatcher; the kernel above the insertion is not what the change moves."""
    base = (
        "static void gemm_big(int n) {\n    for (int i = 0; i < n; i++) work(i);\n}\n\n"
        "static void gemv_small(int n) {\n    work(n);\n}\n\n"
        "void dispatch(int n) {\n    gemv_small(n);\n}\n"
    )
    repo = git_worktree({"src/k.c": base}, "fork")
    changed = base.replace(
        "\nvoid dispatch(int n) {\n    gemv_small(n);\n}\n",
        "\nstatic void gemv_fast(int n) {\n    work(n + 1);\n}\n\n"
        "void dispatch(int n) {\n    if (n < 4) gemv_fast(n); else gemv_small(n);\n}\n",
    )
    (repo / "src" / "k.c").write_text(changed)
    _commit(repo, "fast gemv")
    names = prof.changed_functions(repo, "HEAD^", "HEAD")
    assert names == {"dispatch"}
    # an insertion inside a body still counts for that function
    (repo / "src" / "k.c").write_text(changed.replace("    work(n);\n", "    work(n);\n    work(n);\n"))
    _commit(repo, "twice")
    assert prof.changed_functions(repo, "HEAD^", "HEAD") == {"gemv_small"}
    cmap = prof.build_code_map(repo, ["src/**"])
    ps = {"functions": [{"name": "gemm_big", "share": 0.39}, {"name": "gemv_small", "share": 0.28}]}
    att = prof.attribute({"dispatch"}, {"available": True, **ps}, cmap)
    assert att.hot_function == "dispatch" and "gemm_big" not in att.moved


def test_template_calls_reach_the_kernel_they_instantiate() -> None:
    """llama.cpp's repack.cpp: the dispatcher calls `gemv_..._lut_avx<block_q4_0x8>(...)`; the templated
    kernel (profile: `void gemv_..._lut_avx<block<4, 8> >(int, ...)`) is what a dispatcher change moves."""
    src = (
        "template <typename block_tx8>\n"
        "static void gemv_lut_avx(int n, float * s) {\n    s[0] = n;\n}\n\n"
        "void ggml_gemv_q4_0(int n, float * s) {\n"
        "    if (n < 4 && n > 0) { gemv_lut_avx<block<4, 8>>(n, s); }\n"
        "    gemv_lut_avx<block_q4_0x8>(n, s);\n}\n"
    )
    cmap = prof.CodeMap()
    prof.parse_source(src, "repack.cpp", cmap)
    assert cmap.calls_of("ggml_gemv_q4_0") == {"gemv_lut_avx"}
    profile = {
        "available": True,
        "functions": [
            {"name": "void gemv_lut_avx<block<4, 8> >(int, float*)", "share": 0.283},
            {"name": "ggml_gemv_q4_0", "share": 0.0001},
        ],
    }
    att = prof.attribute({"ggml_gemv_q4_0"}, profile, cmap)
    assert att.moved == {"gemv_lut_avx": 0.283, "ggml_gemv_q4_0": 0.0001}
    assert att.amdahl == pytest.approx(1 / (1 - 0.2831))


def test_dossier_opens_with_the_profile_and_ranks_by_the_amdahl_bound(history, profile, tmp_path) -> None:
    llm = CannedLLM(
        {
            "summary": "matmul dominates",
            "hypotheses": [
                {
                    "title": "Skip the copy in rmsnorm_rows",
                    "rationale": "memcpy then scale; scale in place instead.",
                    "target_files": ["src/rmsnorm.c"],
                    "expected_effect": {"x86": "faster"},
                    "risk": "low",
                    "citations": ["profile:rmsnorm_rows"],
                    "hot_functions": ["rmsnorm_rows"],
                },
                {
                    "title": "Block the matmul for the cache",
                    "rationale": "b is walked by columns: tile it.",
                    "target_files": ["src/matmul.c"],
                    "expected_effect": {"x86": "faster"},
                    "risk": "medium",
                    "citations": ["profile:matmul"],
                },
                {
                    "title": "Invent a function",
                    "rationale": "names nothing that exists in the code or profile",
                    "target_files": ["src/attention.c"],
                    "expected_effect": {"x86": "faster"},
                    "risk": "low",
                    "citations": ["profile:attention"],
                    "hot_functions": ["no_such_function"],
                },
            ],
        }
    )
    d = build_dossier(
        ISSUE,
        PROJECT,
        history.upstream,
        None,
        llm,
        tmp_path,
        "maria/attention",
        ResearchOptions(),
        profile=profile,
    )
    md = d.markdown()
    assert md.index("#### Where the time goes") < md.index("#### Hypotheses")
    assert "| `matmul` | 69.1% | 690,600 | `src/matmul.c:4` |" in md
    assert "matmul: 69.1% of 1,000,000 estimated cycles" in llm.variables["material"]  # the LLM sees it
    titles = [h.title for h in d.hypotheses]
    # attention() calls every kernel: changing it can move nearly everything (an upper bound): it ranks first
    assert titles == ["Invent a function", "Block the matmul for the cache", "Skip the copy in rmsnorm_rows"]
    for h in d.hypotheses:  # every hypothesis names its hot function and its bound
        assert h.hot_function and h.hot_share is not None
        assert h.amdahl_max == pytest.approx(1 / (1 - h.hot_share), rel=1e-4)
    tidy = d.hypotheses[-1]
    assert tidy.hot_function == "rmsnorm_rows" and tidy.amdahl_max < 1.02
    assert tidy.rank_note.startswith("ranked down") and "below the 2% minimum effect" in tidy.rank_note
    assert "#3: ranked down" in md and "`rmsnorm_rows` 0.2% → ≤ 1.00×" in md
    invented = next(h for h in d.hypotheses if h.title == "Invent a function")
    assert invented.hot_function == "attention"  # unknown names are ignored: the target file's functions
    assert any(n.source == "profile" and n.status == "ok" for n in d.notes)


def test_without_a_profile_research_continues_and_says_so(history, tmp_path) -> None:
    missing = prof.from_results(
        {
            "x86": {
                "variants": {"baseline": {"status": "ok"}},
                "simulation": {"available": False, "reason": "valgrind is not installed"},
            }
        },
        "x86",
    )
    assert missing == {"available": False, "reason": "valgrind is not installed", "functions": []}
    llm = CannedLLM(
        {
            "summary": "",
            "hypotheses": [
                {
                    "title": "Block the matmul for the cache",
                    "rationale": "b is walked by columns: tile it.",
                    "target_files": ["src/matmul.c"],
                    "expected_effect": {"x86": "faster"},
                    "risk": "medium",
                    "citations": ["nothing-known"],
                }
            ],
        }
    )
    d = build_dossier(
        ISSUE,
        PROJECT,
        history.upstream,
        None,
        llm,
        tmp_path,
        "maria/attention",
        ResearchOptions(),
        profile=missing,
    )
    md = d.markdown()
    assert "No simulated profile of the baseline: valgrind is not installed. Research continued" in md
    assert md.index("#### Where the time goes") < md.index("#### Hypotheses")
    assert not any(s.kind == "profile" for s in d.sources)
    note = next(n for n in d.notes if n.source == "profile")
    assert note.status == "skipped" and "valgrind is not installed" in note.detail


def test_backend_gaps_and_arxiv_concepts_follow_the_hot_ops(tmp_path) -> None:
    world = World(tmp_path / "w")
    project = {
        "preset": "llama.cpp",
        "architectures": ["x86"],
        "paths": {"hot": ["ggml/src/ggml-cpu/**"], "allowed": ["ggml/**"], "protected": []},
        "research": {"arxiv": True, "max_forks": 30, "related": []},
        "decision": {"min_effect": 0.02},
    }
    issue = {"title": "Make it quicker", "body": ""}
    options = ResearchOptions(forks=ForkOptions(retry_wait_s=0), retry_wait_s=0)
    options.arxiv.base_url, options.arxiv.attempts, options.arxiv.retry_wait_s = "http://127.0.0.1:9", 1, 0
    plain = build_dossier(
        issue, project, world.clone, ForgeDouble(world), None, tmp_path / "c1", "owner/proj", options
    )
    hot = prof.from_results(
        {
            "x86": {
                "variants": {
                    "baseline": {
                        "simulated": record(
                            [
                                ("ggml_compute_forward_soft_max", 0.6),
                                ("ggml_compute_forward_add", 0.3),
                                ("ggml_compute_forward_rms_norm", 0.05),
                            ]
                        )
                    }
                }
            }
        }
    )
    guided = build_dossier(
        issue,
        project,
        world.clone,
        ForgeDouble(world),
        None,
        tmp_path / "c2",
        "owner/proj",
        options,
        profile=hot,
    )
    gaps = lambda d: [s.id for s in d.sources if s.kind == "backend_gap"]  # noqa: E731
    assert gaps(plain)[0] == "backend:RMS_NORM+MUL+ADD" and gaps(guided)[0] == "backend:ADD+ADD"
    assert 'all:"softmax"' in guided.queries[0]
    assert plain.queries[0] != guided.queries[0]
    fork = next(h for h in guided.hypotheses if h.kind == "fork_commit")
    assert fork.hot_function == "ggml_compute_forward_soft_max" and fork.hot_share == pytest.approx(0.6)
    gap = next(h for h in guided.hypotheses if h.title == "Fuse ADD+ADD in the CPU backend")
    assert gap.hot_function == "ggml_compute_forward_add" and gap.hot_share == pytest.approx(0.3)
