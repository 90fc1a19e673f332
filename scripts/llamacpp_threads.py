#!/usr/bin/env python3
"""Work-splitting changes on the real llama.cpp source, through the real bench driver, with several threads.

    flock /tmp/llama-build.lock .venv/bin/python scripts/llamacpp_threads.py [--threads 2] [--rounds 8]
        [--workdir DIR] [--save DIR] [--only regress|improve]

The simulated tier runs `llama-bench -t 1`, where one thread does all the work whatever the split: a change to
how ggml-cpu splits work between threads costs the same estimated cycles. The driver's diff scan
(sky/blindspots.py) flags such candidates and the decision (bot/experiments/stats/policy.py) lets the wall
tier at the configured thread count decide them ("hardware only"), or says "not measurable here"; never "no
change" unless wall time shows equivalence. Two driver runs (bot/llamacpp_forks.py's edits of repack.cpp's
forward_mul_mat, the GEMM/GEMV of the demo's q4_0 model):

  regress   baseline: the fetched source; candidates
              serial_chunks  thread 0 walks every chunk, the others wait   -> must be "slower" (or "not
                             measurable here"), never "no change"
              split_aa       `ith + 0` for `ith` (same machine code)       -> must not be a winner
  improve   baseline: the source with serial_chunks applied (a project whose GEMM runs on one thread);
            candidate split_chunks (the fetched source's split)         -> must be a winner, "hardware only"

  --aa N    instead: one long A/A run (baseline: the fetched source, candidate split_aa, flagged as a
            threading change, so the wall tier decides it) of N pairs with no early stop, beside
            `--hog PATH` (../shared/tools/cpu-hog); the pairs are cut into N / --block disjoint trials of
            --block consecutive pairs, each decided by the policy as a batch of its own (one look at --block
            pairs: the most liberal look of the real schedule). Must give no winner, no "faster".

Exit status 0 only when every expectation holds. Prints the table it decided from; --save keeps the results.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bot.llamacpp_forks import SERIAL_CHUNKS_EDITS, SPLIT_AA_EDITS, apply_edits  # noqa: E402


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


e2e = load("llamacpp_e2e", ROOT / "scripts" / "llamacpp_e2e.py")
sh = e2e.sh


def make_repo(source: Path, repo: Path) -> dict[str, str]:
    if repo.exists():
        shutil.rmtree(repo)
    sh(["git", "clone", "-q", str(source), str(repo)])
    base = sh(["git", "rev-parse", "HEAD"], repo)
    shas = {"upstream": base}

    def commit(name: str, start: str, edits, msg: str) -> None:
        sh(["git", "checkout", "-q", "-B", name, start], repo)
        apply_edits(repo, edits)
        sh(["git", "commit", "-q", "-am", msg], repo)
        shas[name] = sh(["git", "rev-parse", "HEAD"], repo)

    commit("serial_chunks", base, SERIAL_CHUNKS_EDITS, "repack mul_mat: thread 0 walks every chunk (planted)")
    commit("split_aa", base, SPLIT_AA_EDITS, "repack mul_mat: ith + 0 (equivalent rewrite, A/A)")
    # the improvement: from the serialised project back to the split (the fetched source's tree)
    sh(["git", "checkout", "-q", "-B", "split_chunks", shas["serial_chunks"]], repo)
    sh(["git", "checkout", "-q", base, "--", "."], repo)
    sh(["git", "commit", "-q", "-am", "repack mul_mat: split the chunks between threads again"], repo)
    shas["split_chunks"] = sh(["git", "rev-parse", "HEAD"], repo)
    sh(["git", "checkout", "-q", base], repo)
    return shas


def project(args: argparse.Namespace, arch: str) -> dict:
    from bot.config import ProjectConfig  # noqa: PLC0415

    proj = ProjectConfig.from_dict({"preset": "llama.cpp"}).to_dict()
    proj["benchmark"].update(
        {"rounds": args.rounds, "repetitions": args.reps, "warmup": 1, "threads": args.threads}
    )
    proj["preset_options"] = dict(
        proj.get("preset_options") or {}, n_prompt=args.n_prompt, n_gen=args.n_gen, bench_reps=args.bench_reps
    )
    proj["architectures"] = [arch]
    return proj


def run(label: str, baseline: str, cands: list[str], shas: dict, proj: dict, work: Path, arch: str):
    from bot.experiments import stats  # noqa: PLC0415

    spec = {
        "schema": 1,
        "run_id": 0,
        "arch": arch,
        "seed": 1,
        "source": {"url": str(work / "repo")},
        "baseline": {"name": "baseline", "sha": shas[baseline]},
        "candidates": [{"name": n, "sha": shas[n]} for n in cands],
        "project": proj,
    }
    drv = work / f"driver-{label}"
    if drv.exists():
        shutil.rmtree(drv)
    t = time.monotonic()
    result = e2e.run_driver(work / f"files-{label}", spec, drv, work / f"driver-{label}.log")
    decision = stats.decide({arch: result}, proj, baseline="baseline")
    threads = proj["benchmark"]["threads"]
    print(f"\n== {label}: baseline {baseline}, threads {threads}, {time.monotonic() - t:.0f}s")
    for r in decision.rows:
        c = r.comparison
        wall = f"{c.speedup:.3f}x [{c.ci_low:.3f}, {c.ci_high:.3f}] {c.pairs} pairs" if c else "-"
        sim = (r.simulated or {}).get("speedup")
        sim_txt = "-" if sim is None else f"{sim:.4f}x"
        print(
            f"  {r.candidate:<14} {r.metric:<3} sim {sim_txt:<9} wall {wall:<36} "
            f"-> {r.verdict} ({r.basis or '-'}) blind={[s['kind'] for s in r.blind]}"
        )
        if r.note:
            print(f"      note: {r.note[:300]}")
    print("  winners:", decision.winners or "none")
    for n in decision.notes:
        print("  note:", n.text[:220])
    return result, decision


def aa_trials(args: argparse.Namespace, shas: dict, proj: dict, work: Path, arch: str) -> int:
    import copy  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    from bot.experiments import stats  # noqa: PLC0415

    proj = copy.deepcopy(proj)
    proj["benchmark"].update({"min_pairs": args.aa, "max_pairs": args.aa})
    hog = subprocess.Popen([str(args.hog), str(6 * 3600), "1", "1"]) if args.hog else None
    try:
        result, _ = run("aa", "upstream", ["split_aa"], shas, proj, work, arch)
    finally:
        if hog:
            hog.terminate()
            hog.wait()
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        (args.save / "aa.json").write_text(json.dumps({"result": result, "project": proj}, indent=1))
    allp = result["variants"]["split_aa"].get("pairs") or []
    trial_proj = copy.deepcopy(proj)
    trial_proj["benchmark"].update({"min_pairs": args.block, "max_pairs": args.block})
    verdicts: dict[str, int] = {}
    winners = 0
    n = len(allp) // args.block
    for i in range(n):
        res = copy.deepcopy(result)
        res["variants"]["split_aa"]["pairs"] = allp[i * args.block : (i + 1) * args.block]
        res["paired"] = dict(res.get("paired") or {}, looks=[args.block], max_pairs=args.block, family=1)
        d = stats.decide({arch: res}, trial_proj, baseline="baseline")
        row = next(r for r in d.rows if r.candidate == "split_aa" and r.metric == d.target)
        key = f"{row.verdict} ({row.basis})"
        verdicts[key] = verdicts.get(key, 0) + 1
        winners += bool(d.winners)
    print(
        f"\nA/A beside {'the hog' if hog else 'no hog'}: {len(allp)} pairs at {args.threads} threads -> {n} "
        f"trials of {args.block} pairs: winners {winners}/{n}; verdicts {verdicts}"
    )
    ok = n > 0 and winners == 0 and not any(k.startswith("faster") for k in verdicts)
    print(f"  [{'PASS' if ok else 'FAIL'}] A/A in the hardware-only mode: no false winner")
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/llamacpp-threads"))
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--bench-reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-prompt", type=int, default=64)
    ap.add_argument("--n-gen", type=int, default=32, help="decode tokens per llama-bench sample")
    ap.add_argument("--only", choices=("regress", "improve"))
    ap.add_argument("--save", type=Path, help="keep each run's result.json and decision here")
    ap.add_argument("--aa", type=int, default=0, help="pairs of one long A/A run, cut into trials")
    ap.add_argument("--block", type=int, default=10, help="--aa: pairs per trial")
    ap.add_argument("--hog", type=Path, help="--aa: a CPU hog to run alongside (../shared/tools/cpu-hog)")
    args = ap.parse_args()
    if args.threads < 2:
        raise SystemExit("--threads must be >= 2 (work splitting needs several threads)")
    os.environ.setdefault("CCACHE_DIR", str(Path.home() / ".cache" / "autoresearch-bot" / "ccache"))
    source = args.source or Path(sh([str(ROOT / "scripts" / "fetch_llamacpp.sh")]).splitlines()[-1])
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    shas = make_repo(source, work / "repo")
    arch = "arm" if platform.machine().lower() in ("aarch64", "arm64") else "x86"
    proj = project(args, arch)
    checks: dict[str, bool] = {}
    runs = {}
    if args.aa:
        return aa_trials(args, shas, proj, work, arch)
    if args.only in (None, "regress"):
        runs["regress"] = run("regress", "upstream", ["serial_chunks", "split_aa"], shas, proj, work, arch)
        _, d = runs["regress"]
        tg = {r.candidate: r for r in d.rows if r.metric == d.target}
        checks["serial_chunks: slower or not measurable here, never no change"] = tg[
            "serial_chunks"
        ].verdict in ("slower", "not_measurable")
        checks["serial_chunks: flagged threads by the diff scan"] = any(
            s["kind"] == "threads" for s in tg["serial_chunks"].blind
        )
        checks["split_aa: not a winner"] = "split_aa" not in d.winners
    if args.only in (None, "improve"):
        runs["improve"] = run("improve", "serial_chunks", ["split_chunks"], shas, proj, work, arch)
        _, d = runs["improve"]
        tg = {r.candidate: r for r in d.rows if r.metric == d.target}
        checks["split_chunks: a winner, hardware only"] = (
            "split_chunks" in d.winners and tg["split_chunks"].basis == "hardware_only"
        )
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        for label, (res, dec) in runs.items():
            (args.save / f"{label}.json").write_text(
                json.dumps({"result": res, "project": proj, "decision": dec.to_dict()}, indent=1)
            )
    print()
    for text, ok in checks.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {text}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
