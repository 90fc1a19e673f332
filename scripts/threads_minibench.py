#!/usr/bin/env python3
"""Work splitting on a small pthreads C project, through the real bench driver: the hardware-only mode fast.

    .venv/bin/python scripts/threads_minibench.py [--threads 2] [--aa 400 --block 10] [--hog PATH]

llama.cpp runs of the same question (scripts/llamacpp_threads.py) take ~20 min each and a shared build lock;
this project builds in a second, so the hardware-only rule can be exercised at length. The benchmark splits a
compute loop over 64 chunks between `THREADS` POSIX threads (the driver sets THREADS = benchmark.threads); the
simulated tier runs it as built under cachegrind, which serialises threads and counts every thread's
instructions, so moving chunks between threads costs the same estimated cycles. The diff scan
(sky/blindspots.py) flags the candidates below as threading changes and the wall tier decides them:

  split run   baseline: thread 0 walks every chunk (serial); candidate `split` deals the chunks out
              -> must be a winner, basis "hardware only"
  serial run  baseline: the split; candidate `serial` -> must be "slower" (or "not measurable here")
  --aa N      baseline: the split; candidate `aa` (`c = ith + 0`, the same machine code), N pairs beside the
              hog with no early stop, cut into N / --block trials of --block pairs, each decided alone:
              must give no winner

Prints each verdict and figure it decided from; exit status 0 only when every expectation holds.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_C = r"""
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define N (1 << 18)
#define NCHUNK 64
static float data[N];
static double partial[64];
static int nth = 1;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static void work_chunk(long lo, long hi, int ith) {
    double s = 0;
    for (long i = lo; i < hi; i++) {
        float x = data[i];
        for (int k = 0; k < 16; k++) x = x * 0.999f + 0.001f;
        s += x;
    }
    partial[ith] += s;
}

static void *worker(void *p) {
    int ith = (int) (long) p;
    /* SPLIT */
    for (long c = ith; c < NCHUNK; c += nth) work_chunk(c * (N / NCHUNK), (c + 1) * (N / NCHUNK), ith);
    /* END */
    return NULL;
}

int main(void) {
    const char *t = getenv("THREADS");
    nth = t ? atoi(t) : 1;
    if (nth < 1 || nth > 64) nth = 1;
    for (long i = 0; i < N; i++) data[i] = (float) (i % 97) / 97.0f;
    pthread_t th[64];
    double t0 = now();
    for (int rep = 0; rep < 4; rep++) {
        for (int i = 0; i < nth; i++) pthread_create(&th[i], NULL, worker, (void *) (long) i);
        for (int i = 0; i < nth; i++) pthread_join(th[i], NULL);
    }
    double t1 = now();
    double s = 0;
    for (int i = 0; i < nth; i++) s += partial[i];
    printf("METRIC run_ns=%.1f\n", (t1 - t0) / 4);
    printf("CHECK %.3f\n", s / nth > 0 ? 1.0 : 0.0);
    return 0;
}
"""
SPLIT = "    for (long c = ith; c < NCHUNK; c += nth) work_chunk"
SERIAL = "    for (long c = 0; ith == 0 && c < NCHUNK; c++) work_chunk"
AA = "    for (long c = ith + 0; c < NCHUNK; c += nth) work_chunk"


def git(repo: Path, *args: str) -> str:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@localhost",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@localhost",
        GIT_AUTHOR_DATE="2026-01-01T00:00:00Z",
        GIT_COMMITTER_DATE="2026-01-01T00:00:00Z",
    )
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, text=True, capture_output=True, env=env
    ).stdout.strip()


def make_repo(repo: Path) -> dict[str, str]:
    if repo.exists():
        shutil.rmtree(repo)
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "Makefile").write_text("bench: bench.c\n\tcc -O2 -pthread -o bench bench.c\n")
    shas = {}

    def commit(name: str, body: str) -> None:
        (repo / "bench.c").write_text(BENCH_C.replace(SPLIT, body))
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "--allow-empty", "-m", name)
        shas[name] = git(repo, "rev-parse", "HEAD")

    commit("split", SPLIT)
    commit("serial", SERIAL)
    commit("split_again", SPLIT)  # the improvement, on top of the serial commit
    git(repo, "checkout", "-q", "-b", "aa", shas["split"])
    commit("aa", AA)
    return shas


def project(threads: int, pairs: int, min_pairs: int) -> dict:
    return {
        "preset": "generic",
        "build": {"commands": ["make -s bench"]},
        "validate": {"commands": ["./bench | grep -q 'CHECK 1.000'"]},
        "benchmark": {
            "command": "./bench",
            "metrics": [{"name": "run_ns", "unit": "ns", "higher_is_better": False}],
            "target": "run_ns",
            "threads": threads,
            "warmup": 1,
            "rounds": pairs,
            "repetitions": 1,
            "min_pairs": min_pairs,
            "max_pairs": pairs,
        },
        "architectures": ["x86"],
        "decision": {"alpha": 0.05, "min_effect": 0.02, "slowdown_tolerance": 0.02, "primary": "both"},
        "paths": {"protected": []},
    }


def run(repo: Path, base: str, cands: list[str], shas: dict, proj: dict, work: Path) -> dict:
    files = work / "files"
    if files.exists():
        shutil.rmtree(files)
    files.mkdir(parents=True)
    for p in (ROOT / "sky").glob("*.py"):
        shutil.copy2(p, files / p.name)
    spec = {
        "schema": 1,
        "run_id": 0,
        "arch": "x86",
        "seed": 1,
        "source": {"url": str(repo)},
        "baseline": {"name": "baseline", "sha": shas[base]},
        "candidates": [{"name": n, "sha": shas[n]} for n in cands],
        "project": proj,
    }
    (files / "spec.json").write_text(json.dumps(spec))
    p = subprocess.run(
        [sys.executable, "driver.py", "--spec", "spec.json", "--out", "result.json", "--workdir", "work"],
        cwd=files,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if p.returncode != 0:
        raise SystemExit(f"driver exited {p.returncode}: {p.stdout[-2000:]}{p.stderr[-2000:]}")
    return json.loads((files / "result.json").read_text())


def show(label: str, result: dict, proj: dict, cand: str):
    from bot.experiments import stats  # noqa: PLC0415

    d = stats.decide({"x86": result}, proj, baseline="baseline")
    r = next(r for r in d.rows if r.candidate == cand and r.metric == d.target)
    c = r.comparison
    sim = (r.simulated or {}).get("speedup")
    print(
        f"{label}: {cand}: simulated {sim:.4f}x, wall {c.speedup:.3f}x [{c.ci_low:.3f}, {c.ci_high:.3f}] "
        f"after {c.pairs} pairs -> {r.verdict} ({r.basis}); blind {[s['kind'] for s in r.blind]}; "
        f"winners {d.winners or 'none'}"
    )
    return d, r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=40, help="at most, per planted run (looks every 10)")
    ap.add_argument("--aa", type=int, default=0, help="pairs of the long A/A run (0: none)")
    ap.add_argument("--block", type=int, default=10)
    ap.add_argument("--hog", type=Path, help="a CPU hog to run alongside (../shared/tools/cpu-hog)")
    ap.add_argument("--save", type=Path)
    args = ap.parse_args()
    if args.threads < 2:
        raise SystemExit("--threads must be >= 2")
    from bot.experiments import stats  # noqa: PLC0415

    tmp = Path(tempfile.mkdtemp(prefix="threads-minibench-"))
    shas = make_repo(tmp / "repo")
    hog = subprocess.Popen([str(args.hog), "7200", "1", "1"]) if args.hog else None
    checks: dict[str, bool] = {}
    saved = {}
    t0 = time.monotonic()
    try:
        proj = project(args.threads, args.pairs, 10)
        res = run(tmp / "repo", "serial", ["split_again"], shas, proj, tmp / "split")
        d, r = show("split run (baseline serial)", res, proj, "split_again")
        checks["split: a winner, hardware only"] = d.winners == ["split_again"] and r.basis == "hardware_only"
        saved["split"] = res
        res = run(tmp / "repo", "split", ["serial"], shas, proj, tmp / "serial")
        d, r = show("serial run (baseline split)", res, proj, "serial")
        checks["serial: slower or not measurable here, never no change"] = r.verdict in (
            "slower",
            "not_measurable",
        )
        saved["serial"] = res
        if args.aa:
            aproj = project(args.threads, args.aa, args.aa)
            res = run(tmp / "repo", "split", ["aa"], shas, aproj, tmp / "aa")
            saved["aa"] = res
            allp = res["variants"]["aa"]["pairs"]
            tproj = project(args.threads, args.block, args.block)
            n, winners, verdicts = len(allp) // args.block, 0, {}
            for i in range(n):
                trial = copy.deepcopy(res)
                trial["variants"]["aa"]["pairs"] = allp[i * args.block : (i + 1) * args.block]
                trial["paired"] = dict(
                    trial.get("paired") or {}, looks=[args.block], max_pairs=args.block, family=1
                )
                dd = stats.decide({"x86": trial}, tproj, baseline="baseline")
                rr = next(x for x in dd.rows if x.candidate == "aa" and x.metric == dd.target)
                key = f"{rr.verdict} ({rr.basis})"
                verdicts[key] = verdicts.get(key, 0) + 1
                winners += bool(dd.winners)
            whole = stats.decide({"x86": res}, aproj, baseline="baseline")
            wr = next(x for x in whole.rows if x.candidate == "aa" and x.metric == whole.target)
            wc = wr.comparison
            if wc is None:
                why = [(n, x["status"], x.get("error", "")[:200]) for n, x in res["variants"].items()]
                raise SystemExit(f"A/A run gave no comparison: {why} {res.get('errors')}")
            print(
                f"A/A beside {'the hog' if hog else 'no hog'}, {args.threads} threads: {len(allp)} pairs -> "
                f"{n} trials of {args.block}: winners {winners}/{n}; verdicts {verdicts}; all {len(allp)} "
                f"pairs together: {wc.speedup:.4f}x [{wc.ci_low:.4f}, {wc.ci_high:.4f}] -> {wr.verdict} "
                f"({wr.basis})"
            )
            checks[f"A/A: no false winner in {n} trials"] = n > 0 and winners == 0
    finally:
        if hog:
            hog.terminate()
            hog.wait()
    print(f"total {time.monotonic() - t0:.0f}s")
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        for k, v in saved.items():
            (args.save / f"minibench-{k}.json").write_text(json.dumps(v, indent=1))
    for text, ok in checks.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {text}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
