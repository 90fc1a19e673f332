#!/usr/bin/env python3
"""Slow end-to-end proof of the llama.cpp preset on the real llama.cpp source, through the real bench driver.

    .venv/bin/python scripts/llamacpp_e2e.py [--source DIR] [--workdir DIR] [--rounds 8] [--reps 2]

Builds a local repo from the fetched source (scripts/fetch_llamacpp.sh) with three candidate commits:
  a_a       an empty commit (identical tree)              -> must not be a winner, no verdict "faster"
  slow_norm rms_norm sums each row 12 times (ggml-cpu)   -> must be detected slower
  bad_norm  rms_norm without the sqrt (broken numerics)   -> must fail validation
then runs sky/driver.py on one spec through the bot's LocalExecutor (git bundle + rendered sky/bench.yaml;
--direct: the driver alone), decides with bot.experiments.stats, measures a
no-op and a one-file incremental rebuild, and prints a table. Exit status 0 only when all three expectations hold.
CPU heavy: the first (cold) baseline build takes minutes; candidates build from ccache.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKY = ROOT / "sky"
SLOW_PATCH = ("""                ggml_float sum = 0.0;
                // worth switching to explicit SIMD?
                for (int64_t i00 = 0; i00 < ne00; i00++) {
                    sum += (ggml_float)(x[i00] * x[i00]);
                }
""", """                ggml_float sum = 0.0;
                // worth switching to explicit SIMD?
                for (int rep = 0; rep < 12; rep++) {
                    volatile ggml_float redo = 0.0;
                    for (int64_t i00 = 0; i00 < ne00; i00++) {
                        redo = redo + (ggml_float)(x[i00] * x[i00]);
                    }
                    sum = redo;
                }
""")
BAD_PATCH = ("const float scale = 1.0f/sqrtf(mean + eps);", "const float scale = 1.0f/(mean + eps);")
OPS = "ggml/src/ggml-cpu/ops.cpp"
GEMV_OFFSET_FN = r"""#if defined(__AVX2__) || defined(__AVX512F__)
// q4_0 x q8_0 GEMV without the sign lookup: the repacked nibbles hold q ^ 8 (make_block_q4_0x8's xor mask),
// so u = nibble ^ 8 is the unsigned quant (0..15) and the weight is u - 8. The unsigned u multiplies the
// signed q8_0 values directly (maddubs / dpbusd: no sign fix-up per product), and 8 * sum(q8_0 block) is
// subtracted once per block: dot(u - 8, y) = dot(u, y) - 8 * sum(y). Integer-exact: the LUT kernel's sums.
#define GEMV_Q4_0_OFFSET_MAX_NB 512
static void gemv_q4_0_8x8_q8_0_offset_avx(int n, float * GGML_RESTRICT s, size_t bs,
        const void * GGML_RESTRICT vx, const void * GGML_RESTRICT vy, int nr, int nc) {
    const int qk = QK8_0;
    const int nb = n / qk;

    UNUSED(bs);

    const __m256i finalpermutemask = _mm256_set_epi32(7, 5, 3, 1, 6, 4, 2, 0);
    const __m256i m4b = _mm256_set1_epi8(0x0F);
    const __m256i m8b = _mm256_set1_epi8(0x08);
    const __m128i changemask = _mm_set_epi8(15, 14, 7, 6, 13, 12, 5, 4, 11, 10, 3, 2, 9, 8, 1, 0);

    const block_q4_0x8 * b_ptr_start = (const block_q4_0x8 *) vx;
    const block_q8_0   * a_ptr_start = (const block_q8_0 *) vy;

    int32_t ysum[GEMV_Q4_0_OFFSET_MAX_NB];   // the caller keeps nb within this
    GGML_ASSERT(nb <= GEMV_Q4_0_OFFSET_MAX_NB);

    for (int64_t y = 0; y < nr; y++) {
        const block_q8_0 * a_ptr = a_ptr_start + (y * nb);

        // 8 * the sum of each q8_0 block of this row, once for all column groups
        for (int64_t b = 0; b < nb; b++) {
            int32_t sum = 0;
            for (int i = 0; i < QK8_0; i++) {
                sum += a_ptr[b].qs[i];
            }
            ysum[b] = 8 * sum;
        }

        for (int64_t x = 0; x < nc / 8; x++) {
            const block_q4_0x8 * b_ptr = b_ptr_start + (x * nb);

            __m256 acc_row = _mm256_setzero_ps();

            for (int64_t b = 0; b < nb; b++) {
                const __m256i raw_0123_0 = _mm256_loadu_si256((const __m256i *)(b_ptr[b].qs));
                const __m256i raw_4567_0 = _mm256_loadu_si256((const __m256i *)(b_ptr[b].qs) + 1);
                const __m256i raw_0123_1 = _mm256_loadu_si256((const __m256i *)(b_ptr[b].qs) + 2);
                const __m256i raw_4567_1 = _mm256_loadu_si256((const __m256i *)(b_ptr[b].qs) + 3);

                // unsigned quants 0..15
                const __m256i r0123_0 = _mm256_xor_si256(_mm256_and_si256(raw_0123_0, m4b), m8b);
                const __m256i r4567_0 = _mm256_xor_si256(_mm256_and_si256(raw_4567_0, m4b), m8b);
                const __m256i r0123_1 = _mm256_xor_si256(_mm256_and_si256(raw_0123_1, m4b), m8b);
                const __m256i r4567_1 = _mm256_xor_si256(_mm256_and_si256(raw_4567_1, m4b), m8b);
                const __m256i r0123_2 =
                    _mm256_xor_si256(_mm256_and_si256(_mm256_srli_epi16(raw_0123_0, 4), m4b), m8b);
                const __m256i r4567_2 =
                    _mm256_xor_si256(_mm256_and_si256(_mm256_srli_epi16(raw_4567_0, 4), m4b), m8b);
                const __m256i r0123_3 =
                    _mm256_xor_si256(_mm256_and_si256(_mm256_srli_epi16(raw_0123_1, 4), m4b), m8b);
                const __m256i r4567_3 =
                    _mm256_xor_si256(_mm256_and_si256(_mm256_srli_epi16(raw_4567_1, 4), m4b), m8b);

                const __m256 col_scale_f32 = GGML_F32Cx8_REARRANGE_LOAD(b_ptr[b].d, changemask);
                const __m256 row_scale_f32 = _mm256_set1_ps(GGML_CPU_FP16_TO_FP32(a_ptr[b].d));

                __m256i lhs_0 = _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)a_ptr[b].qs));
                __m256i lhs_1 = _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(a_ptr[b].qs + 16)));
                lhs_0 = _mm256_permute2f128_si256(lhs_0, lhs_0, 0);
                lhs_1 = _mm256_permute2f128_si256(lhs_1, lhs_1, 0);

                // every lane starts at -8 * sum(y) and accumulates dot(u, y) of its column
                __m256i iacc = _mm256_set1_epi32(-ysum[b]);
                iacc = mul_sum_us8_pairs_acc_int32x8(iacc,
                    _mm256_blend_epi32(r0123_0, _mm256_shuffle_epi32(r4567_0, 177), 170),
                    _mm256_shuffle_epi32(lhs_0, 0));
                iacc = mul_sum_us8_pairs_acc_int32x8(iacc,
                    _mm256_blend_epi32(_mm256_shuffle_epi32(r0123_0, 177), r4567_0, 170),
                    _mm256_shuffle_epi32(lhs_0, 85));
                iacc = mul_sum_us8_pairs_acc_int32x8(iacc,
                    _mm256_blend_epi32(r0123_1, _mm256_shuffle_epi32(r4567_1, 177), 170),
                    _mm256_shuffle_epi32(lhs_0, 170));
                iacc = mul_sum_us8_pairs_acc_int32x8(iacc,
                    _mm256_blend_epi32(_mm256_shuffle_epi32(r0123_1, 177), r4567_1, 170),
                    _mm256_shuffle_epi32(lhs_0, 255));
                iacc = mul_sum_us8_pairs_acc_int32x8(iacc,
                    _mm256_blend_epi32(r0123_2, _mm256_shuffle_epi32(r4567_2, 177), 170),
                    _mm256_shuffle_epi32(lhs_1, 0));
                iacc = mul_sum_us8_pairs_acc_int32x8(iacc,
                    _mm256_blend_epi32(_mm256_shuffle_epi32(r0123_2, 177), r4567_2, 170),
                    _mm256_shuffle_epi32(lhs_1, 85));
                iacc = mul_sum_us8_pairs_acc_int32x8(iacc,
                    _mm256_blend_epi32(r0123_3, _mm256_shuffle_epi32(r4567_3, 177), 170),
                    _mm256_shuffle_epi32(lhs_1, 170));
                iacc = mul_sum_us8_pairs_acc_int32x8(iacc,
                    _mm256_blend_epi32(_mm256_shuffle_epi32(r0123_3, 177), r4567_3, 170),
                    _mm256_shuffle_epi32(lhs_1, 255));

                const __m256 scale = _mm256_mul_ps(col_scale_f32, row_scale_f32);
                acc_row = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iacc), scale, acc_row);
            }

            acc_row = _mm256_permutevar8x32_ps(acc_row, finalpermutemask);
            _mm256_storeu_ps(s + (y * nr + x * 8), acc_row);
        }
    }
}
#endif

"""
REPACK = "ggml/src/ggml-cpu/arch/x86/repack.cpp"
# A real CPU-backend optimization (ours, applied to the fetched tree at run time): the decode GEMV of the
# repacked q4_0 weights multiplies unsigned nibbles by the signed q8_0 activations (maddubs / dpbusd) and
# subtracts the q4_0 offset once per block, instead of sign-extending through a lookup and fixing signs per
# product. Integer-exact. List of (path, anchor, replacement) edits, each anchor found exactly once.
GEMV_ANCHOR = ("void ggml_gemv_q4_0_8x8_q8_0(int n, float * GGML_RESTRICT s, size_t bs, "
               "const void * GGML_RESTRICT vx, const void * GGML_RESTRICT vy, int nr, int nc) {\n")
GEMV_CALL = "        gemv_q4_b32_8x8_q8_0_lut_avx<block_q4_0x8>(n, s, bs, vx, vy, nr, nc, signextendlut);\n"
FAST_GEMV_EDITS = [
    (REPACK, GEMV_ANCHOR, GEMV_OFFSET_FN + GEMV_ANCHOR),
    (REPACK, GEMV_CALL, "        if (n / QK8_0 <= GEMV_Q4_0_OFFSET_MAX_NB) {\n"
                        "            gemv_q4_0_8x8_q8_0_offset_avx(n, s, bs, vx, vy, nr, nc);\n"
                        "        } else {\n    " + GEMV_CALL + "        }\n"),
]


def apply_edits(tree: Path, edits: list[tuple[str, str, str]]) -> None:
    """Apply (path, anchor, replacement) edits to a checkout; each anchor must occur exactly once."""
    for path, old, new in edits:
        f = Path(tree) / path
        text = f.read_text()
        if text.count(old) != 1:
            raise SystemExit(f"edit anchor not found exactly once in {path}: {old[:80]!r}")
        f.write_text(text.replace(old, new, 1))


def sh(args: list[str], cwd: Path | None = None, **kw) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="e2e", GIT_AUTHOR_EMAIL="e2e@localhost", GIT_COMMITTER_NAME="e2e",
               GIT_COMMITTER_EMAIL="e2e@localhost", GIT_AUTHOR_DATE="2026-01-01T00:00:00Z",
               GIT_COMMITTER_DATE="2026-01-01T00:00:00Z")
    return subprocess.run(args, cwd=str(cwd) if cwd else None, check=True, text=True, stdout=subprocess.PIPE,
                          env=env, **kw).stdout.strip()


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def make_repo(source: Path, repo: Path) -> dict[str, str]:
    """Clone the source and add the three candidate commits on branches; return name -> sha."""
    if repo.exists():
        shutil.rmtree(repo)
    sh(["git", "clone", "-q", str(source), str(repo)])
    base = sh(["git", "rev-parse", "HEAD"], repo)
    shas = {"baseline": base}

    def branch(name: str, edit) -> None:
        sh(["git", "checkout", "-q", "-B", name, base], repo)
        msg = edit()
        sh(["git", "commit", "-q", "--allow-empty", "-am", msg], repo)
        shas[name] = sh(["git", "rev-parse", "HEAD"], repo)

    def patch(old: str, new: str, msg: str):
        def edit() -> str:
            f = repo / OPS
            text = f.read_text()
            if text.count(old) != 1:
                raise SystemExit(f"patch anchor for {msg!r} not found exactly once in {OPS}")
            f.write_text(text.replace(old, new))
            return msg
        return edit

    branch("a_a", lambda: "empty commit: identical tree")
    branch("slow_norm", patch(*SLOW_PATCH, "rms_norm: redundant recomputation of the sum (deliberate slowdown)"))
    branch("bad_norm", patch(*BAD_PATCH, "rms_norm: forget the sqrt (deliberately broken numerics)"))
    sh(["git", "checkout", "-q", base], repo)
    return shas


def project(args: argparse.Namespace) -> dict:
    try:
        sys.path.insert(0, str(ROOT))
        from bot.config import ProjectConfig  # noqa: PLC0415
        proj = ProjectConfig.from_dict({"preset": "llama.cpp"}).to_dict()
    except Exception as e:  # noqa: BLE001  (config module not ready: same fields by hand)
        print(f"note: bot.config unavailable ({e}); using a hand-written llama.cpp project")
        proj = {"preset": "llama.cpp", "preset_hooks": "llamacpp", "benchmark": {"metrics": [
            {"name": "tg", "unit": "t/s", "higher_is_better": True},
            {"name": "pp", "unit": "t/s", "higher_is_better": True}], "target": "tg"},
            "decision": {}, "paths": {"protected": []}}
    proj["benchmark"].update({"rounds": args.rounds, "repetitions": args.reps, "warmup": 1,
                              "threads": args.threads})
    proj["preset_options"] = dict(proj.get("preset_options") or {}, n_prompt=64, n_gen=32,
                                  bench_reps=args.bench_reps)
    return proj


def run_driver(files: Path, spec: dict, workdir: Path, log_path: Path) -> dict:
    files.mkdir(parents=True, exist_ok=True)
    for path in SKY.glob("*.py"):      # every sky/*.py is shipped (driver.py imports paired.py, simulate.py)
        shutil.copy2(path, files / path.name)
    (files / "spec.json").write_text(json.dumps(spec, indent=1))
    env = dict(os.environ)
    cmd = [sys.executable, str(files / "driver.py"), "--spec", str(files / "spec.json"),
           "--out", str(files / "result.json"), "--workdir", str(workdir)]
    print("$", " ".join(cmd), f"(log: {log_path})", flush=True)
    with open(log_path, "w") as log:
        p = subprocess.Popen(cmd, cwd=str(files), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
        for line in p.stdout:
            log.write(line)
            if line.startswith("[driver]"):
                print("   ", line.rstrip()[:160], flush=True)
        p.wait()
    if p.returncode != 0:
        raise SystemExit(f"driver exited {p.returncode}; see {log_path}")
    return json.loads((files / "result.json").read_text())


def run_executor(spec: dict, repo: Path, base_dir: Path, log_path: Path) -> tuple[dict, Path]:
    """The bot's own path: git bundle + LocalExecutor (rendered sky/bench.yaml `run`, detached runner)."""
    sys.path.insert(0, str(ROOT))
    from bot.experiments import executors, tasks  # noqa: PLC0415
    if base_dir.exists():
        shutil.rmtree(base_dir)
    bundle = tasks.make_bundle(repo, [spec["baseline"]["sha"]] + [c["sha"] for c in spec["candidates"]],
                               base_dir.parent / "e2e.bundle")
    # the runner's python3 must have gguf + numpy (a VM gets them in setup): put this interpreter first
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    ex = executors.LocalExecutor(base_dir)
    handle = ex.submit(executors.Batch(run_id=0, specs={spec["arch"]: spec}, bundle=bundle))
    print(f"LocalExecutor handle {handle} (log: {log_path})", flush=True)
    seen = 0
    while (state := ex.poll(handle)) == "running":
        time.sleep(2)
        text = ex.logs(handle)
        for line in text[seen:].splitlines():
            if line.startswith("[driver]"):
                print("   ", line[:160], flush=True)
        seen = len(text)
    log_path.write_text(ex.logs(handle))
    results = ex.collect(handle)
    if spec["arch"] not in results:
        raise SystemExit(f"executor {state}: no result; see {log_path}")
    return results[spec["arch"]], base_dir / handle / spec["arch"] / "work"


def rebuild_times(workdir: Path, proj: dict, threads: int) -> dict[str, float]:
    """Rebuilds of the built baseline tree through the preset: no-op, touched ops.cpp (ccache hit + relink),
    edited ops.cpp (a real recompile of that ggml-cpu translation unit + relink)."""
    driver = load("e2e_driver", SKY / "driver.py")
    sys.path.insert(0, str(SKY))
    llamacpp = load("llamacpp", SKY / "llamacpp.py")
    cc = driver.ccache_setup(workdir)
    env = dict(os.environ)
    env.update({k: v for k, v in cc.items() if k != "CCACHE_BIN"})
    ctx = driver.Ctx(workdir=workdir, project=proj, threads=threads, env=env, ccache_env=cc, cpus=[])
    tree = workdir / "wt" / "baseline"
    edited = tree / OPS
    original = edited.read_text()

    def touch() -> None:
        (tree / OPS).touch()

    def edit() -> None:
        edited.write_text(original + f"\nstatic int autoresearch_e2e_edit_{int(time.time())} = 0;\n")

    out = {}
    try:
        for label, change in (("noop", None), ("touch_ops", touch), ("edit_ops", edit)):
            if change:
                change()
            t = time.monotonic()
            ok, text = llamacpp.build(tree, ctx)
            out[label] = round(time.monotonic() - t, 1)
            if not ok:
                raise SystemExit(f"rebuild ({label}) failed:\n{text[-2000:]}")
    finally:
        edited.write_text(original)
    return out


def decide(result: dict, proj: dict):
    try:
        sys.path.insert(0, str(ROOT))
        from bot.experiments import stats  # noqa: PLC0415
    except Exception as e:  # noqa: BLE001
        print(f"note: bot.experiments.stats unavailable ({e}); raw medians only")
        return None
    return stats.decide({result["arch"]: result}, proj, baseline="baseline")


def report(result: dict, decision, rebuild: dict[str, float]) -> bool:
    arch = result["arch"]
    print("\n== machine:", result["machine"].get("cpu"), f"nproc={result['machine'].get('nproc')}",
          "| timings:", json.dumps(result["timings"]))
    print(f"\n{'variant':<10} {'status':<18} {'build_s':>8} {'pp t/s (med, n)':>18} {'tg t/s (med, n)':>18}  "
          f"{'verdict tg / pp':<22} validation")
    verdicts = {}
    for name, v in result["variants"].items():
        med = {m: (statistics.median(s), len(s)) for m, s in (v.get("samples") or {}).items() if s}
        rows = [r for r in (decision.rows if decision else []) if r.candidate == name and r.arch == arch]
        verdict = {r.metric: r.verdict for r in rows}
        verdicts[name] = verdict
        checks = "; ".join(f"{c['name']}={'ok' if c['ok'] else 'FAIL'} ({c['detail'][:90]})"
                           for c in (v.get("validation") or {}).get("checks", []))
        cell = {m: f"{med[m][0]:.1f} (n={med[m][1]})" if m in med else "-" for m in ("pp", "tg")}
        vcell = "-" if name == "baseline" else f"{verdict.get('tg', '?')} / {verdict.get('pp', '?')}"
        print(f"{name:<10} {v['status']:<18} {v['build']['seconds']:>8.1f} {cell['pp']:>18} {cell['tg']:>18}  "
              f"{vcell:<22} {checks}")
    if decision:
        for r in decision.rows:
            if r.comparison:
                c = r.comparison
                print(f"  {r.candidate}/{r.metric}: speedup {c.speedup:.3f} CI [{c.ci_low:.3f}, {c.ci_high:.3f}] "
                      f"p={c.p_value:.2g} p_holm={c.p_adjusted:.2g} base_cv={c.baseline_cv:.1%} -> {c.verdict}")
        print("  winners:", decision.winners or "none", "| notes:", "; ".join(decision.notes)[:400])
    builds = {n: v["build"]["seconds"] for n, v in result["variants"].items()}
    print(f"\nbuilds in this run (full when $CCACHE_DIR was empty, else from ccache): {builds}")
    print(f"rebuild of the built baseline tree: no-op {rebuild['noop']}s, touched {OPS} (ccache hit) "
          f"{rebuild['touch_ops']}s, edited {OPS} (real recompile + relink) {rebuild['edit_ops']}s")
    v = result["variants"]
    expectations = {
        "a_a: validated, not a winner, not faster": v["a_a"]["status"] == "ok" and (
            decision is None or ("a_a" not in decision.winners and "faster" not in verdicts["a_a"].values())),
        "slow_norm: validated and detected slower on tg": v["slow_norm"]["status"] == "ok" and (
            decision is None or verdicts["slow_norm"].get("tg") == "slower"),
        "bad_norm: rejected by validation": v["bad_norm"]["status"] == "validation_failed",
    }
    print()
    for text, ok in expectations.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {text}")
    return all(expectations.values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, help="llama.cpp git repo (default: scripts/fetch_llamacpp.sh)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/llamacpp-e2e"))
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--reps", type=int, default=2, help="driver invocations per variant per round")
    ap.add_argument("--bench-reps", type=int, default=5, help="llama-bench -r (samples per invocation)")
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--direct", action="store_true", help="run sky/driver.py directly instead of LocalExecutor")
    args = ap.parse_args()
    t0 = time.monotonic()
    # one ccache for the driver run and the rebuild timings (kept between runs of this script)
    os.environ.setdefault("CCACHE_DIR", str(Path.home() / ".cache" / "autoresearch-bot" / "ccache"))
    source = args.source or Path(sh([str(ROOT / "scripts" / "fetch_llamacpp.sh")]).splitlines()[-1])
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    shas = make_repo(source, work / "repo")
    proj = project(args)
    arch = "arm" if platform.machine().lower() in ("aarch64", "arm64") else "x86"
    proj["architectures"] = [arch]
    spec = {"schema": 1, "run_id": 0, "arch": arch, "seed": 1,
            "source": {"url": str(work / "repo")},
            "baseline": {"name": "baseline", "sha": shas["baseline"]},
            "candidates": [{"name": n, "sha": shas[n]} for n in ("a_a", "slow_norm", "bad_norm")],
            "project": proj}
    if args.direct:
        drv_work = work / "driver-work"
        if drv_work.exists():
            shutil.rmtree(drv_work)
        result = run_driver(work / "files", spec, drv_work, work / "driver.log")
    else:
        result, drv_work = run_executor(spec, work / "repo", work / "executor", work / "driver.log")
    rebuild = rebuild_times(drv_work, proj, args.threads)
    ok = report(result, decide(result, proj), rebuild)
    print(f"\ntotal {time.monotonic() - t0:.0f}s; driver workdir: {drv_work}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
