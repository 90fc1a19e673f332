#!/usr/bin/env python3
"""The simulated-cost tier on real llama.cpp, through the real driver (issue 10's llama.cpp figures).

    .venv/bin/python scripts/llamacpp_simulate.py [--source DIR] [--workdir DIR] [--trials 10]

Every trial is a fresh run of sky/driver.py (fresh workdir; the ccache in $CCACHE_DIR is shared, as on a VM
that keeps its cache) with the llama.cpp preset: native build, validation (greedy tokens + KLD), paired wall
rounds, then the simulated tier (portable-ISA build, llama-bench -p 8 -n 8 -r 1 -t 1 under cachegrind).
It prints, from those runs:

  (a) A vs A: baseline vs an empty commit: estimated cycles and instructions, their relative difference
      (must be < 0.01%), and the baseline's per-function profile (top functions with their shares);
  (b) planted ~1% extra cost: the hottest plantable kernels of that profile (>= 2% share) get a redundant
      computation inside their body, sized from a probe run (which measures what one unit of it costs in each
      kernel) to add about 1% of the total; each trial is a fresh driver run of baseline vs one planted
      candidate, with
      its own spec seed (model weights, corpus) and alternating site/amount. Expected: "slower" from the
      simulated tier in every trial, with bot.experiments.simulated.function_diff's top row in the planted
      kernel;
  (c) seconds of simulation per variant vs the wall rounds' seconds, and the build seconds (native and
      simulation build dirs) per variant.

Exit status 0 only when all expectations hold. CPU heavy: the first build takes many minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import llamacpp_e2e as e2e  # noqa: E402  (repo helpers: sh, run_driver)

from bot.config import ProjectConfig  # noqa: E402
from bot.experiments import simulated, stats  # noqa: E402

AA_LIMIT = 1e-4  # A vs A: relative difference of the simulated figures must stay below 0.01%
PROBE_UNITS = 64  # the probe plant's size (units of redundant work per call)


class Plant:
    """A redundant computation inside one kernel: `units` iterations of a volatile accumulation per call,
    kept by the compiler (volatile), attributed to the kernel by cachegrind (inline in its body)."""

    def __init__(self, function: str, path: str, anchor: str, what: str):
        self.function, self.path, self.anchor, self.what = function, path, anchor, what

    def code(self, units: int, tag: str) -> str:
        return (
            f"\n    {{   // {tag}: redundant work ({units} units per call)\n"
            f"        volatile float ar_sink = 0.0f;\n"
            f"        for (int ar_i = 0; ar_i < {units}; ar_i++) {{\n"
            f"            ar_sink = ar_sink + (float) ar_i;\n"
            f"        }}\n"
            f"    }}\n"
        )

    def apply(self, tree: Path, units: int, tag: str) -> None:
        f = tree / self.path
        text = f.read_text()
        if text.count(self.anchor) != 1:
            raise SystemExit(f"plant anchor for {self.function} not found exactly once in {self.path}")
        f.write_text(text.replace(self.anchor, self.anchor + self.code(units, tag), 1))


# Kernels a plant can go into, matched against the profile's function names (cachegrind prints C++ names
# demangled, with their argument list). The anchor is the opening line of the function's body.
PLANTS = [
    Plant(
        "gemm_q4_b32_8x8_q8_0_lut_avx",
        "ggml/src/ggml-cpu/arch/x86/repack.cpp",
        "static void gemm_q4_b32_8x8_q8_0_lut_avx(int n, float * GGML_RESTRICT s, size_t bs, const void * "
        "GGML_RESTRICT vx, const void * GGML_RESTRICT vy, int nr, int nc, __m256i signextendlut) {",
        "q4_0 x q8_0 matrix-matrix product, AVX2 (prompt)",
    ),
    Plant(
        "gemv_q4_b32_8x8_q8_0_lut_avx",
        "ggml/src/ggml-cpu/arch/x86/repack.cpp",
        "static void gemv_q4_b32_8x8_q8_0_lut_avx(int n, float * GGML_RESTRICT s, size_t bs, const void * "
        "GGML_RESTRICT vx, const void * GGML_RESTRICT vy, int nr, int nc, __m256i signextendlut) {",
        "q4_0 x q8_0 matrix-vector product, AVX2 (decode)",
    ),
    Plant(
        "ggml_vec_dot_q4_0_q8_0",
        "ggml/src/ggml-cpu/arch/x86/quants.c",
        "void ggml_vec_dot_q4_0_q8_0(int n, float * GGML_RESTRICT s, size_t bs, "
        "const void * GGML_RESTRICT vx, "
        "size_t bx, const void * GGML_RESTRICT vy, size_t by, int nrc) {",
        "q4_0 x q8_0 dot product",
    ),
    Plant(
        "ggml_quantize_mat_q8_0_4x8",
        "ggml/src/ggml-cpu/arch/x86/repack.cpp",
        "void ggml_quantize_mat_q8_0_4x8(const float * GGML_RESTRICT x, void * GGML_RESTRICT vy, "
        "int64_t k) {",
        "activation quantization (4 rows interleaved)",
    ),
]


def base_name(fn: str) -> str:
    """'void gemv_x<block<4, 8> >(int, ...)' -> 'gemv_x' (cachegrind's names of C++ functions)."""
    head = re.split(r"[(<]", fn, maxsplit=1)[0].strip()
    return head.split()[-1] if head else fn


def pct(x: float) -> str:
    return f"{x * 100:+.4f}%"


def isa_report(tree: Path) -> str:
    """How many instructions of each llama-bench (native build, simulation build) use AVX-512's zmm
    registers."""
    out = []
    for build_dir in ("build", "build-sim"):
        exe = tree / build_dir / "bin" / "llama-bench"
        if not exe.exists() or not shutil.which("objdump"):
            continue
        asm = subprocess.run(
            ["objdump", "-d", "--no-show-raw-insn", str(exe)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        ).stdout
        zmm = sum("%zmm" in line for line in asm.splitlines())
        out.append(f"{build_dir}/bin/llama-bench: {zmm:,} instructions on zmm registers")
    return "; ".join(out) or "objdump unavailable"


def make_repo(source: Path, repo: Path) -> str:
    if repo.exists():
        shutil.rmtree(repo)
    e2e.sh(["git", "clone", "-q", str(source), str(repo)])
    return e2e.sh(["git", "rev-parse", "HEAD"], repo)


def commit(repo: Path, base: str, branch: str, message: str, edit=None) -> str:
    e2e.sh(["git", "checkout", "-q", "-B", branch, base], repo)
    if edit:
        edit(repo)
    e2e.sh(["git", "commit", "-q", "--allow-empty", "-am", message], repo)
    sha = e2e.sh(["git", "rev-parse", "HEAD"], repo)
    e2e.sh(["git", "checkout", "-q", base], repo)
    return sha


def project(args: argparse.Namespace, aa: bool) -> dict:
    proj = ProjectConfig.from_dict({"preset": "llama.cpp"}).to_dict()
    arch = "arm" if platform.machine().lower() in ("aarch64", "arm64") else "x86"
    proj["architectures"] = [arch]
    if aa:  # the A/A run measures wall time the way a real run does: the paired design of `demo --llama`
        proj["benchmark"].update({"threads": args.threads, "rounds": 6, "repetitions": 2, "warmup": 1})
    else:  # planted trials: the simulated tier is under test; a few pairs keep a trial short
        proj["benchmark"].update(
            {
                "threads": args.threads,
                "rounds": 1,
                "repetitions": args.trial_pairs,
                "min_pairs": args.trial_pairs,
                "warmup": 0,
            }
        )
    proj["decision"]["min_effect"] = args.min_effect
    return proj


def trial(
    args: argparse.Namespace, name: str, repo: Path, base: str, cands: dict[str, str], seed: int, aa: bool
) -> dict:
    proj = project(args, aa)
    spec = {
        "schema": 1,
        "run_id": 0,
        "arch": proj["architectures"][0],
        "seed": seed,
        "source": {"url": str(repo)},
        "baseline": {"name": "baseline", "sha": base},
        "candidates": [{"name": n, "sha": s} for n, s in cands.items()],
        "project": proj,
    }
    work = args.workdir / "runs" / name
    if work.exists():
        shutil.rmtree(work)
    t = time.monotonic()
    result = e2e.run_driver(work / "files", spec, work / "work", work / "driver.log")
    result["_wall_s"] = round(time.monotonic() - t, 1)
    result["_decision"] = stats.decide({result["arch"]: result}, proj, baseline="baseline")
    kept = {k: v for k, v in result.items() if k != "_decision"}
    (work / "result.json").write_text(json.dumps(kept, indent=1))
    return result


def sim_of(result: dict, name: str) -> dict:
    rec = result["variants"][name].get("simulated") or {}
    if not simulated.usable(rec):
        why = rec.get("error") or result["variants"][name].get("error")
        raise SystemExit(f"{name}: no simulated figure: {why}")
    return rec


def times_line(result: dict, name: str) -> str:
    v = result["variants"][name]
    sim_build = (v.get("simulated_build") or {}).get("seconds", 0)
    return (
        f"build {v['build']['seconds']:.1f}s ({v['build'].get('strategy')}), simulation build "
        f"{sim_build:.1f}s, simulation {v['simulated']['seconds']:.1f}s"
    )


def wall_seconds(result: dict) -> tuple[float, int]:
    """The wall tier's benchmark seconds and the number of kept invocations (pairs x 2 + baseline-only)."""
    n = len(result.get("schedule") or [])
    return float(result["timings"].get("bench_s") or 0.0), n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, help="llama.cpp git repo (default: scripts/fetch_llamacpp.sh)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/llamacpp-sim"))
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--target", type=float, default=0.01, help="planted extra cost, fraction of the total")
    ap.add_argument("--sites", type=int, default=2, help="how many of the hottest plantable kernels to use")
    ap.add_argument(
        "--min-effect",
        type=float,
        default=0.005,
        help="decision.min_effect of these runs (the preset's 2%% would call a 1%% change no_change)",
    )
    ap.add_argument("--trial-pairs", type=int, default=2, help="wall pairs per planted trial")
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument(
        "--check-isa", type=Path, help="only print the zmm count of a driver worktree's two builds"
    )
    args = ap.parse_args()
    if args.check_isa:
        print(isa_report(args.check_isa))
        return 0
    args.workdir = args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("CCACHE_DIR", str(Path.home() / ".cache" / "autoresearch-bot" / "ccache"))
    t0 = time.monotonic()
    source = args.source or Path(e2e.sh([str(ROOT / "scripts" / "fetch_llamacpp.sh")]).splitlines()[-1])
    repo = args.workdir / "repo"
    base = make_repo(source, repo)
    ok = True

    # ---- (a) A vs A and the baseline's profile ---------------------------------------------------------
    cands = {"a_a": commit(repo, base, "a_a", "empty commit: identical tree")}
    print(
        "== trial 0 (seed 1): baseline vs a_a (an empty commit), wall: demo --llama's paired design",
        flush=True,
    )
    r0 = trial(args, "aa", repo, base, cands, seed=1, aa=True)
    b, a = sim_of(r0, "baseline"), sim_of(r0, "a_a")
    d_cyc = (a["estimated_cycles"] - b["estimated_cycles"]) / b["estimated_cycles"]
    d_ins = (a["instructions"] - b["instructions"]) / b["instructions"]
    print(f"\n(a) A vs A ({r0['simulation'].get('isa')}; {r0['simulation'].get('cache')}):")
    print(
        f"    estimated cycles baseline {b['estimated_cycles']:,}  a_a {a['estimated_cycles']:,}  "
        f"relative difference {pct(d_cyc)}"
    )
    print(
        f"    instructions     baseline {b['instructions']:,}  a_a {a['instructions']:,}  "
        f"relative difference {pct(d_ins)}"
    )
    aa_ok = abs(d_cyc) < AA_LIMIT and abs(d_ins) < AA_LIMIT
    target = r0["_decision"].target
    aa_row = next(r for r in r0["_decision"].rows if r.candidate == "a_a" and r.metric == target)
    print(
        f"    within 0.01%: {aa_ok}; decision row: {aa_row.verdict} (wall {aa_row.wall_verdict}); "
        f"winners: {r0['_decision'].winners or 'none'}"
    )
    ok &= aa_ok and "a_a" not in r0["_decision"].winners
    print(f"    AVX-512 in the builds: {isa_report(args.workdir / 'runs/aa/work/wt/baseline')}")
    print("\n    baseline profile (estimated cycles, exclusive, share of the total):")
    for row in simulated.profile(b, top=12):
        print(f"    {row['share']:7.2%}  {row['cycles']:>14,}  {row['name'][:110]}")

    # ---- the hottest plantable kernels, and the cost of one plant unit in each (a probe run) --------------
    shares = {}
    for f in b.get("functions") or []:
        fn = base_name(f["name"])
        shares[fn] = shares.get(fn, 0) + f["cycles"] / b["estimated_cycles"]
    hot = sorted(
        (
            p
            for p in PLANTS
            if shares.get(p.function, 0) >= 0.02
            and (repo / p.path).exists()
            and (repo / p.path).read_text().count(p.anchor) == 1
        ),
        key=lambda p: -shares[p.function],
    )
    hot = hot[: args.sites]
    if not hot:
        print("no plantable kernel holds >= 2% of the profile")
        return 1
    probes = {f"probe_{i}": p for i, p in enumerate(hot)}
    cands = {
        n: commit(
            repo,
            base,
            n,
            f"probe plant in {p.function}",
            lambda tree, p=p: p.apply(tree, PROBE_UNITS, "autoresearch probe"),
        )
        for n, p in probes.items()
    }
    print(
        f"\n== probe run (seed 1): {PROBE_UNITS} units of redundant work per call in "
        f"{', '.join(p.function for p in hot)}",
        flush=True,
    )
    rp = trial(args, "probe", repo, base, cands, seed=1, aa=False)
    sites = []
    for name, p in probes.items():
        rec = rp["variants"][name].get("simulated") or {}
        if rp["variants"][name]["status"] != "ok" or not simulated.usable(rec):
            why = rp["variants"][name].get("error") or rec.get("error")
            print(f"    probe {p.function}: no figure ({why})")
            continue
        delta = rec["estimated_cycles"] - sim_of(rp, "baseline")["estimated_cycles"]
        sites.append((shares[p.function], p, delta / PROBE_UNITS))
        print(
            f"    {p.function}: {shares[p.function]:.2%} of the profile; the probe adds {delta:,} "
            f"estimated cycles = {delta / PROBE_UNITS:,.0f} per unit"
        )
    sites = [s for s in sites if s[2] > 0]
    if not sites:
        print("no probe moved the simulated cost")
        return 1

    # ---- (b) planted ~1% slowdowns, one fresh driver run each -------------------------------------------
    amounts = [args.target * f for f in (1.0, 0.8, 1.2)]
    rows = []
    for i in range(args.trials):
        share, p, per_unit = sites[i % len(sites)]
        goal = amounts[(i // len(sites)) % len(amounts)]
        units = max(1, round(goal * b["estimated_cycles"] / per_unit))
        seed = 2 + i
        sha = commit(
            repo,
            base,
            f"planted_{i}",
            f"planted {goal:.1%} in {p.function}",
            lambda tree, p=p, units=units: p.apply(tree, units, "autoresearch planted cost"),
        )
        print(
            f"\n== trial {i + 1} (seed {seed}): baseline vs a plant of {units} units in {p.function} "
            f"(aimed at +{goal:.1%})",
            flush=True,
        )
        r = trial(args, f"planted-{i + 1}", repo, base, {"planted": sha}, seed=seed, aa=False)
        if r["variants"]["planted"]["status"] != "ok":
            pv = r["variants"]["planted"]
            print(f"    planted: {pv['status']}: {pv.get('error')}")
            rows.append((i + 1, p.function, goal, None, "failed", "-", False, r))
            continue
        rb, rc = sim_of(r, "baseline"), sim_of(r, "planted")
        comp = simulated.compare_simulated(rb, rc, args.min_effect)
        diff = simulated.function_diff(rb, rc, top=3)
        top = base_name(diff[0]["name"]) if diff else "-"
        row = next(
            x for x in r["_decision"].rows if x.candidate == "planted" and x.metric == r["_decision"].target
        )
        hit = comp.verdict == "slower" and top == p.function
        rows.append((i + 1, p.function, goal, 1 / comp.speedup - 1, comp.verdict, top, hit, r))
        print(
            f"    simulated: {comp.baseline_cycles:,} -> {comp.candidate_cycles:,} estimated cycles "
            f"({pct(1 / comp.speedup - 1)}), verdict {comp.verdict}; decision row {row.verdict} "
            f"(wall {row.wall_verdict})"
        )
        for d in diff:
            print(
                f"      {d['delta']:+14,} ({(d['change'] or 0):+.2%} of the function, "
                f"{d['share']:+.3%} of the total)  {d['name'][:90]}"
            )
        print(f"    {times_line(r, 'baseline')}; planted: {times_line(r, 'planted')}")

    print("\n(b) planted extra cost, per trial (fresh driver run each):")
    print(
        f"    {'trial':>5} {'kernel':<28} {'aimed':>6} {'measured':>10} {'simulated':<10} "
        f"{'top of diff':<28} ok"
    )
    for n, fn, goal, got, verdict, top, hit, _ in rows:
        print(
            f"    {n:>5} {fn:<28} {goal:>6.1%} {(pct(got) if got is not None else '-'):>10} {verdict:<10} "
            f"{top[:28]:<28} {'yes' if hit else 'NO'}"
        )
    found = sum(1 for r in rows if r[6])
    print(
        f"    called slower with the diff at the planted kernel: {found} of {len(rows)} "
        f"(min_effect {args.min_effect:.1%})"
    )
    ok &= found == len(rows) == args.trials

    # ---- (c) seconds ---------------------------------------------------------------------------------------
    print("\n(c) seconds per variant:")
    bench_s, n_inv = wall_seconds(r0)
    runs = [r0, rp] + [x[7] for x in rows]
    sims = [
        r["variants"][n]["simulated"]["seconds"]
        for r in runs
        for n in r["variants"]
        if simulated.usable(r["variants"][n].get("simulated"))
    ]
    pairs = {n: len(v.get("pairs") or []) for n, v in r0["variants"].items() if n != "baseline"}
    print(
        f"    simulation (valgrind cachegrind, one llama-bench -p 8 -n 8 -r 1 -t 1): "
        f"{min(sims):.1f}-{max(sims):.1f} s per variant, mean {sum(sims) / len(sims):.1f} s "
        f"over {len(sims)}"
    )
    print(
        f"    wall tier of the A/A run (6 rounds x 2, looks at {r0['paired']['looks']} pairs): "
        f"{bench_s:.1f} s for {n_inv} invocations ({bench_s / max(1, n_inv):.1f} s each) over "
        f"{len(pairs)} candidates; pairs used {pairs}; per candidate {bench_s / max(1, len(pairs)):.1f} s"
    )
    sb = [
        r["variants"][n]["simulated_build"]["seconds"]
        for r in runs
        for n in r["variants"]
        if r["variants"][n].get("simulated_build")
    ]
    nb = [
        r["variants"][n]["build"]["seconds"]
        for r in runs
        for n in r["variants"]
        if r["variants"][n]["build"].get("ok")
    ]
    print(
        f"    native builds (warm ccache): {min(nb):.1f}-{max(nb):.1f} s; simulation builds: "
        f"{min(sb):.1f}-{max(sb):.1f} s"
    )
    print(
        f"    driver run seconds: A/A {r0['_wall_s']}, planted trials "
        f"{', '.join(str(x[7]['_wall_s']) for x in rows)}"
    )
    verdict = "ALL EXPECTATIONS HOLD" if ok else "SOME EXPECTATION FAILED"
    print(f"\ntotal {time.monotonic() - t0:.0f}s; {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
