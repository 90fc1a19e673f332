"""The machine's roofline: memory bandwidth (a STREAM-like triad) and a compute peak (independent FMA chains),
measured by a small C program the driver compiles with the machine's own compiler. Stdlib only.

    python3 roofline.py [--threads N] [--mib 64]      # prints the JSON record

`measure()` returns {"ok", "bandwidth_gbs", "peak_gflops", "threads", "array_mib", "compiler", "seconds"}:

* bandwidth: a[i] = b[i] + s * c[i] over three arrays of `mib` MiB each (>= 4x any last-level cache of a
  common CPU, so the loop streams from DRAM), split between `threads` POSIX threads, best of 5 passes, 24
  bytes per element counted (STREAM's convention: the write-allocate read of `a` is not counted, so this is a
  lower bound of what the memory system moves);
* compute: each thread runs 64 independent single-precision multiply-adds per step (vectorised by -O3
  -march=native into 8 chains of AVX2 FMAs, 4 of AVX-512), best of 3; 2 FLOP per multiply-add.

Both are what simple code reaches, not the datasheet's figures: they are the bounds a kernel of that kind can
be held against (bytes of weights per token x tokens/s against the first, FLOP/s against the second).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

SOURCE = r"""
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

typedef struct { double *a, *b, *c; long lo, hi; long iters; float seed; double flops_out; } job_t;
static pthread_barrier_t bar;

static void *triad(void *p) {
    job_t *j = (job_t *) p;
    for (long i = j->lo; i < j->hi; i++) { j->b[i] = 1.0 + i % 7; j->c[i] = 2.0 + i % 5; j->a[i] = 0; }
    pthread_barrier_wait(&bar);
    pthread_barrier_wait(&bar);
    for (long i = j->lo; i < j->hi; i++) j->a[i] = j->b[i] + 3.0 * j->c[i];
    pthread_barrier_wait(&bar);
    return NULL;
}

static void *fma(void *p) {
    job_t *j = (job_t *) p;
    float acc[64], x = 0.999999f, y = j->seed;
    for (int k = 0; k < 64; k++) acc[k] = (float) k * j->seed;
    for (long it = 0; it < j->iters; it++)
        for (int k = 0; k < 64; k++) acc[k] = acc[k] * x + y;
    float s = 0; for (int k = 0; k < 64; k++) s += acc[k];
    j->flops_out = s;  /* keeps the loop alive */
    return NULL;
}

int main(int argc, char **argv) {
    int nt = argc > 1 ? atoi(argv[1]) : 1;
    long n = (argc > 2 ? atol(argv[2]) : 64) * 1024L * 1024L / 8;
    if (nt < 1 || nt > 1024 || n < 1024) return 2;
    double *a = malloc(n * 8), *b = malloc(n * 8), *c = malloc(n * 8);
    if (!a || !b || !c) return 3;
    pthread_t th[1024]; job_t jobs[1024];
    double best = 1e30;
    for (int pass = 0; pass < 5; pass++) {
        pthread_barrier_init(&bar, NULL, nt + 1);
        for (int t = 0; t < nt; t++) {
            jobs[t] = (job_t){a, b, c, n * t / nt, n * (t + 1) / nt, 0, 1.0f, 0};
            pthread_create(&th[t], NULL, triad, &jobs[t]);
        }
        pthread_barrier_wait(&bar);
        double t0 = now();
        pthread_barrier_wait(&bar);
        pthread_barrier_wait(&bar);
        double dt = now() - t0;
        for (int t = 0; t < nt; t++) pthread_join(th[t], NULL);
        pthread_barrier_destroy(&bar);
        if (dt < best) best = dt;
    }
    double check = 0; for (long i = 0; i < n; i += 4096) check += a[i];
    long iters = 4000000;
    double fbest = 1e30;
    for (int pass = 0; pass < 3; pass++) {
        double t0 = now();
        for (int t = 0; t < nt; t++) {
            jobs[t] = (job_t){0, 0, 0, 0, 0, iters, 1.0f + t, 0};
            pthread_create(&th[t], NULL, fma, &jobs[t]);
        }
        for (int t = 0; t < nt; t++) pthread_join(th[t], NULL);
        double dt = now() - t0;
        if (dt < fbest) fbest = dt;
    }
    double sink = 0; for (int t = 0; t < nt; t++) sink += jobs[t].flops_out;
    printf("{\"bandwidth_gbs\": %.3f, \"peak_gflops\": %.3f, \"check\": %.1f, \"sink\": %g}\n",
           24.0 * n / best / 1e9, 2.0 * 64 * iters * nt / fbest / 1e9, check, sink);
    return 0;
}
"""
DEFAULT_MIB = 64


def compiler() -> str | None:
    for cc in (os.environ.get("CC") or "", "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    return None


def measure(threads: int = 1, mib: int = DEFAULT_MIB, workdir: str | Path | None = None) -> dict:
    """Compile and run the triad + FMA program; a record that says why when it cannot."""
    t0 = time.monotonic()
    threads = max(1, int(threads))
    rec: dict = {"ok": False, "threads": threads, "array_mib": int(mib)}
    cc = compiler()
    if cc is None:
        rec["error"] = "no C compiler (cc, gcc, clang) on PATH"
        return rec
    rec["compiler"] = cc
    with tempfile.TemporaryDirectory(prefix="roofline-", dir=str(workdir) if workdir else None) as tmp:
        src, exe = Path(tmp) / "roofline.c", Path(tmp) / "roofline"
        src.write_text(SOURCE)
        build = subprocess.run(
            [cc, "-O3", "-march=native", "-pthread", "-o", str(exe), str(src)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if build.returncode != 0:
            rec["error"] = f"{cc} failed: {build.stderr.strip()[-300:]}"
            return rec
        try:
            run = subprocess.run(
                [str(exe), str(threads), str(int(mib))], capture_output=True, text=True, timeout=120
            )
        except subprocess.TimeoutExpired:
            rec["error"] = "the roofline program ran over 120 s"
            return rec
        if run.returncode != 0:
            rec["error"] = f"the roofline program exited {run.returncode}: {run.stderr.strip()[-300:]}"
            return rec
        try:
            out = json.loads(run.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            rec["error"] = f"unreadable output: {run.stdout[-200:]!r}"
            return rec
    rec.update(
        ok=True,
        bandwidth_gbs=round(float(out["bandwidth_gbs"]), 3),
        peak_gflops=round(float(out["peak_gflops"]), 3),
        seconds=round(time.monotonic() - t0, 3),
    )
    return rec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--mib", type=int, default=DEFAULT_MIB)
    args = ap.parse_args()
    rec = measure(args.threads, args.mib)
    print(json.dumps(rec))
    return 0 if rec["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
