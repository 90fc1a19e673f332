"""Verdicts say what decided them and what they could not see (issue #21): the diff scan of blind spots
(sky/blindspots.py), the verdict classes of the decision (bot/experiments/stats/policy.py, model.Basis),
and how the report names them. Deterministic inputs: paired samples from fixed ratios, exact simulated
counts."""

from __future__ import annotations

import math
import random

from bot import report
from bot.experiments.stats import decide
from bot.model import BASIS_LABEL, VERDICTS, Basis, Verdict
from bot.resources import sky_module

blindspots = sky_module("blindspots")

THREAD_DIFF = """diff --git a/ggml/src/ggml-cpu/repack.cpp b/ggml/src/ggml-cpu/repack.cpp
--- a/ggml/src/ggml-cpu/repack.cpp
+++ b/ggml/src/ggml-cpu/repack.cpp
@@ -4752 +4752 @@
-        int current_chunk = ith;
+        int current_chunk = ith == 0 ? 0 : (int) (nchunk0 * nchunk1);
"""


def test_scan_flags_work_splitting_isa_and_bandwidth_on_changed_lines_only() -> None:
    spots = blindspots.scan(THREAD_DIFF)
    assert [s["kind"] for s in spots] == ["threads"]
    assert {"ith", "current_chunk", "nchunk0"} <= set(spots[0]["tokens"])
    assert spots[0]["files"] == ["ggml/src/ggml-cpu/repack.cpp"]
    isa = blindspots.scan(
        "--- a/x.c\n+++ b/x.c\n@@ -1 +1 @@\n+    __m512 v = _mm512_add_ps(a, b);\n+    _mm_prefetch(p, 0);\n"
    )
    assert [s["kind"] for s in isa] == ["isa", "bandwidth"]
    # a context line, a comment, a non-source file: nothing the native build runs differently
    assert (
        blindspots.scan("--- a/x.c\n+++ b/x.c\n@@ -1,2 +1,2 @@\n     int ith = 0;\n+    y = 1; // ith\n")
        == []
    )
    assert blindspots.scan("--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n+ggml_barrier and nth\n") == []
    fn = blindspots.scan_functions(["ggml_barrier", "ggml_vec_dot_q4_0_q8_0"])
    assert [s["kind"] for s in fn] == ["threads"] and fn[0]["tokens"] == ["ggml_barrier"]


def project(threads: int = 2, primary: str = "both") -> dict:
    return {
        "benchmark": {
            "metrics": [{"name": "tg", "unit": "t/s", "higher_is_better": True}],
            "target": "tg",
            "repetitions": 2,
            "rounds": 8,
            "threads": threads,
        },
        "architectures": ["x86"],
        "decision": {"alpha": 0.05, "min_effect": 0.02, "slowdown_tolerance": 0.02, "primary": primary},
    }


def sim(cycles: int, functions: list | None = None) -> dict:
    return {
        "ok": True,
        "estimated_cycles": cycles,
        "instructions": cycles,
        "seconds": 1.0,
        "functions": functions,
    }


def pairs(ratio: float, n: int = 16, spread: float = 0.004, seed: int = 0) -> list[dict]:
    """n (baseline, candidate) pairs of tokens/s: candidate/baseline is `ratio` x a small jitter."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        b = 100.0 * math.exp(rng.gauss(0, 0.05))
        out.append({"base": {"tg": b}, "cand": {"tg": b * ratio * math.exp(rng.uniform(-spread, spread))}})
    return out


def variant(p: list | None = None, simulated: dict | None = None, blind: list | None = None) -> dict:
    v = {
        "sha": "0" * 40,
        "status": "ok",
        "build": {"ok": True, "seconds": 1.0},
        "validation": {"ok": True, "checks": [{"name": "check", "ok": True, "detail": ""}]},
        "samples": {},
        "simulated": simulated or sim(1_000_000),
    }
    if p is not None:
        v["pairs"] = p
    if blind is not None:
        v["blind"] = blind
    return v


def result(cands: dict[str, dict]) -> dict:
    return {
        "schema": 1,
        "arch": "x86",
        "run_id": 1,
        "variants": {"baseline": variant(pairs(1.0)), **cands},
        "paired": {"looks": [8, 16], "max_pairs": 16, "family": max(1, len(cands))},
        "simulation": {"available": True},
        "errors": [],
    }


THREADS = blindspots.scan(THREAD_DIFF)


def target_row(d, cand: str):
    return next(r for r in d.rows if r.candidate == cand and r.metric == "tg")


def test_blind_candidate_is_decided_by_wall_time_at_the_configured_threads() -> None:
    res = result(
        {
            "split": variant(pairs(1.4), sim(1_000_010), THREADS),  # simulated 1.0000x, wall 1.4x
            "serial": variant(pairs(0.7, seed=1), sim(999_990), THREADS),
            "unclear": variant(pairs(1.0, spread=0.3, seed=2), sim(1_000_000), THREADS),
            "same": variant(pairs(1.0, seed=3), sim(1_000_000), THREADS),
        }
    )
    d = decide({"x86": res}, project())
    split, serial, unclear, same = (target_row(d, c) for c in ("split", "serial", "unclear", "same"))
    assert (split.verdict, split.basis) == ("faster", Basis.HARDWARE_ONLY)
    assert "threads" in split.note and "at 2 threads" in split.note
    assert d.winners == ["split"]
    assert (serial.verdict, serial.basis) == ("slower", Basis.HARDWARE_ONLY)
    # the simulator is blind and the wall tier cannot decide: never "no change"
    assert (unclear.verdict, unclear.basis) == (Verdict.NOT_MEASURABLE, Basis.NOT_MEASURABLE)
    vm = [n for n in d.notes if n.hint and n.hint.kind == "vm"]
    assert len(vm) == 1 and "unclear" in vm[0].text
    # equivalence on the wall tier is the one way a blind candidate is "no change"
    assert (same.verdict, same.basis) == ("no_change", Basis.CONFIRMED)
    # stored and read back with the classes
    again = type(d).from_dict(d.to_dict())
    assert [(r.verdict, r.basis, [s["kind"] for s in r.blind]) for r in again.rows] == [
        (r.verdict, r.basis, [s["kind"] for s in r.blind]) for r in d.rows
    ]


def test_a_candidate_the_simulator_sees_keeps_the_simulated_verdict() -> None:
    res = result(
        {
            "plain": variant(pairs(1.4), sim(1_000_010), []),  # no blind spot: simulated "no change" stands
            "fast": variant(pairs(1.0), sim(900_000), []),
            "fast_confirmed": variant(pairs(1.11, seed=4), sim(900_000), []),
        }
    )
    d = decide({"x86": res}, project())
    plain, fast, conf = (target_row(d, c) for c in ("plain", "fast", "fast_confirmed"))
    assert (plain.verdict, plain.basis) == ("no_change", Basis.SIMULATED)
    assert (fast.verdict, fast.basis) == ("faster", Basis.SIMULATED)
    assert (conf.verdict, conf.basis) == ("faster", Basis.CONFIRMED)
    assert "plain" not in d.winners


def test_a_result_without_a_diff_scan_falls_back_to_the_function_diff() -> None:
    fns_base = [{"name": "ggml_barrier", "cycles": 1000}, {"name": "gemv", "cycles": 999_000}]
    fns_cand = [{"name": "ggml_barrier", "cycles": 2000}, {"name": "gemv", "cycles": 998_000}]
    res = result({"c": variant(pairs(1.3), sim(1_000_000, fns_cand), None)})
    res["variants"]["baseline"]["simulated"] = sim(1_000_000, fns_base)
    row = target_row(decide({"x86": res}, project()), "c")
    assert [s["kind"] for s in row.blind] == ["threads"]
    assert (row.verdict, row.basis) == ("faster", Basis.HARDWARE_ONLY)


def test_aa_in_the_hardware_only_mode_never_wins() -> None:
    """An A/A pair flagged as a threading change is decided by the wall tier alone: over 200 seeded A/A
    batches with heavy one-sided interference on single runs, no winner."""
    wins = 0
    for seed in range(200):
        rng = random.Random(seed)
        p = []
        for _ in range(16):
            b = 100.0 * math.exp(rng.gauss(0, 0.05))
            c = b * math.exp(rng.gauss(0, 0.03))
            if rng.random() < 0.2:  # a hog slows one member of a pair
                if rng.random() < 0.5:
                    b /= rng.uniform(1.05, 1.7)
                else:
                    c /= rng.uniform(1.05, 1.7)
            p.append({"base": {"tg": b}, "cand": {"tg": c}})
        d = decide({"x86": result({"aa": variant(p, sim(1_000_000), THREADS)})}, project())
        wins += bool(d.winners)
    assert wins == 0


def test_report_names_the_class_in_one_line() -> None:
    assert VERDICTS[Verdict.NOT_MEASURABLE].label == "not measurable here"
    assert BASIS_LABEL[Basis.HARDWARE_ONLY] == "hardware only"
    res = result({"split": variant(pairs(1.4), sim(1_000_010), THREADS)})
    d = decide({"x86": res}, project()).to_dict()
    row = next(r for r in d["rows"] if r["candidate"] == "split")
    assert report.verdict_label(row) == "faster (hardware only)"
    assert "faster (hardware only)" in report.arch_summary(d, "split")
    assert report.hint_text({"kind": "vm", "rounds": 30}, "/bot") == " (`/bot rerun rounds=30`)"


# --------------------------------------------------------------------------- roofline


def test_roofline_program_measures_bandwidth_and_a_compute_peak(tmp_path) -> None:
    roofline = sky_module("roofline")
    rec = roofline.measure(1, mib=16, workdir=tmp_path)
    assert rec["ok"], rec
    # any machine this runs on streams more than 0.1 GB/s and multiplies-adds faster than 0.1 GFLOP/s
    assert rec["bandwidth_gbs"] > 0.1 and rec["peak_gflops"] > 0.1
    assert rec["threads"] == 1 and rec["array_mib"] == 16


def roof_result(tg: float, pp: float, bandwidth: float = 10.0) -> dict:
    base = variant(pairs(1.0))
    base["pairs"] = [{"base": {"tg": tg, "pp": pp}, "cand": {"tg": tg, "pp": pp}}] * 3
    return {
        "variants": {"baseline": base},
        "roofline": {
            "ok": True,
            "bandwidth_gbs": bandwidth,
            "peak_gflops": 100.0,
            "threads": 2,
            "model_bytes": 1_000_000_000,
            "bytes_per_token": 1_000_000_000,
            "params_estimate": 1_777_777_777,
        },
    }


def test_dossier_states_where_decode_and_prompt_processing_stand() -> None:
    from bot.research import profile as prof
    from bot.research.model import Hypothesis

    roof = prof.roofline_of(roof_result(tg=8.0, pp=20.0))  # 1 GB x 8 t/s = 8 GB/s of 10
    assert math.isclose(roof["decode"]["gbs"], 8.0) and math.isclose(roof["decode"]["fraction"], 0.8)
    assert math.isclose(roof["prompt"]["gflops"], 2 * 1.777777777 * 20.0, rel_tol=1e-6)
    line = prof.roofline_line({"roofline": roof})
    assert "1000.0 MB of weights per token x 8.0 tokens/s = 8.00 GB/s = 80% of the measured 10.0 GB/s" in line
    assert "memory-bound" in line and "of the measured 100 GFLOP/s FMA peak" in line
    md = prof.markdown({"available": False, "reason": "x", "roofline": roof})
    assert md.splitlines()[2].startswith("Roofline (2 threads): decode:")

    def hyp(title: str) -> Hypothesis:
        h = Hypothesis("h", title, "a rationale of some length", ["a.c"], {}, "low", [])
        h.amdahl_max = 3.0
        return h

    compute = hyp("unroll the dot product loop twice")
    fewer_bytes = hyp("quantize the weights to fewer bits")
    for h in (compute, fewer_bytes):
        prof.roofline_bound(h, {"roofline": roof}, 0.02)
    assert math.isclose(compute.roofline_max, 1.25) and "roofline" in compute.rank_note
    assert fewer_bytes.roofline_max is None
    from bot.research.dossier import hot_cell, rank

    compute.hot_share, fewer_bytes.hot_share = 0.6, 0.6
    assert "≤ 1.25× (roofline)" in hot_cell(compute)
    assert [h.title for h in rank([compute, fewer_bytes], set(), 0.02)][0] == fewer_bytes.title
    # cache-resident weights (above the DRAM bandwidth): no bound from it
    cached = prof.roofline_of(roof_result(tg=30.0, pp=20.0))
    h = hyp("unroll the dot product loop twice")
    prof.roofline_bound(h, {"roofline": cached}, 0.02)
    assert h.roofline_max is None and "served from cache" in prof.roofline_line({"roofline": cached})


# --------------------------------------------------------------------------- exercised code


def test_a_changed_function_that_never_runs_natively_is_flagged(tmp_path) -> None:
    import shutil
    import subprocess

    import pytest

    exercised = sky_module("exercised")
    if not shutil.which("gdb") or not shutil.which("cc"):
        pytest.skip("gdb and a C compiler are needed (apt-get install gdb gcc)")
    src = tmp_path / "p.c"
    src.write_text(
        "#include <stdio.h>\n"
        "__attribute__((noinline)) int kernel_avx2(int x) { return 3 * x + 1; }\n"
        "__attribute__((noinline)) int kernel_avx512(int x) { return x - 7; }\n"
        "int main(int argc, char **argv) { int s = 0;\n"
        "  for (int i = 0; i < 100; i++) s += argc > 5 ? kernel_avx512(i) : kernel_avx2(i);\n"
        '  printf("%d\\n", s); return 0; }\n'
    )
    subprocess.run(["cc", "-O2", "-o", str(tmp_path / "p"), str(src)], check=True)
    diff = (
        "--- a/p.c\n+++ b/p.c\n@@ -3 +3 @@ __attribute__((noinline)) int kernel_avx512(int x) {\n"
        "-  return x - 7;\n+  return x - 8;\n"
    )
    assert exercised.functions(diff) == ["kernel_avx512"]
    import os

    run = exercised.count_calls(
        [str(tmp_path / "p")], tmp_path, dict(os.environ), ["kernel_avx2", "kernel_avx512"]
    )
    assert run["ok"] and run["functions"] == {"kernel_avx2": 100, "kernel_avx512": 0}
    only_512 = exercised.count_calls(
        [str(tmp_path / "p")], tmp_path, dict(os.environ), ["kernel_avx512", "nope"]
    )
    assert only_512["functions"] == {"kernel_avx512": 0, "nope": None}
    assert exercised.never_run(only_512) == ["kernel_avx512"] and exercised.never_run(run) == []
    assert exercised.never_run({"ok": True, "functions": {"inlined": None}}) == []  # cannot tell
    # a winner whose change never ran natively is flagged on that arch
    res = result({"fast": variant(pairs(1.0), sim(900_000), [])})
    res["variants"]["fast"]["exercised"] = only_512
    d = decide({"x86": res}, project())
    assert d.winners == ["fast"]
    assert any("never ran" in n.text or "none of the functions" in n.text for n in d.notes)
    assert "never ran in the native build" in target_row(d, "fast").note


def test_the_simulated_tier_note_says_whether_the_weights_were_dram_resident() -> None:
    from bot.experiments.stats import words

    small = {"model_bytes": 15_564_704, "ll_bytes": 16 * 2**20, "dram_resident": False}
    big = {"model_bytes": 232 * 2**20, "ll_bytes": 16 * 2**20, "dram_resident": True}
    assert (
        "14.8 MiB vs simulated LL 16 MiB: cache-resident"
        in words.simulated_tier("x86", {"regime": small}, 5).text
    )
    assert "DRAM-resident" in words.simulated_tier("x86", {"regime": big}, 5).text
    assert "MiB" not in words.simulated_tier("x86", {}, 5).text


def test_a_work_splitting_change_through_the_real_driver_is_never_a_simulated_no_change(tmp_path) -> None:
    """scripts/threads_minibench.py's pthreads project, real driver at 2 threads: the diff scan flags the
    change, the simulated cost does not move (cachegrind serialises the threads), the roofline is measured,
    and the verdict comes from wall time (a winner or "not measurable here", whatever the machine's load)."""
    import importlib.util
    import shutil

    import pytest

    if not shutil.which("valgrind") or not shutil.which("cc"):
        pytest.skip("valgrind and a C compiler are needed")
    spec = importlib.util.spec_from_file_location("threads_minibench", "scripts/threads_minibench.py")
    mb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mb)
    shas = mb.make_repo(tmp_path / "repo")
    proj = mb.project(2, 10, 10)
    res = mb.run(tmp_path / "repo", "serial", ["split_again"], shas, proj, tmp_path / "run")
    cand = res["variants"]["split_again"]
    assert [s["kind"] for s in cand["blind"]] == ["threads"]
    assert res["roofline"]["ok"] and res["roofline"]["threads"] == 2
    d = decide({"x86": res}, proj)
    row = next(r for r in d.rows if r.candidate == "split_again" and r.metric == d.target)
    assert abs(math.log(row.simulated["speedup"])) < 1e-3  # the simulator cannot see it
    assert (row.verdict, row.basis) in (("faster", "hardware_only"), ("not_measurable", "not_measurable"))
