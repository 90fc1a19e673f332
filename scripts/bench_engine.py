#!/usr/bin/env python3
"""Build cost of N candidates with the driver's strategies vs naive full builds (prints the figures).

Generates a mid-size C project (FILES generated .c files, Makefile with header deps), commits a baseline and
N candidates that each make a small edit to one source file, then runs the REAL sky/driver.py three times on
the same spec (benchmark reduced to one trivial invocation) and reads the build times from result.json:

  naive        every variant built from scratch in a fresh worktree, no ccache
  incremental  the baseline's built tree copied, candidate checked out over it (only changed files rebuild)
  ccache       fresh worktree per variant, compiler behind ccache (cold cache at the start of the run)
  auto         the driver's default: incremental when a candidate only modifies translation units,
               else ccache (else clean)

    .venv/bin/python scripts/bench_engine.py [--candidates 10] [--files 48] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DRIVER = ROOT / "sky" / "driver.py"

UNIT = """#include "common.h"

static double poly_{i}_{k}(const double *x, int n) {{
    double acc = 0.0;
    for (int j = 0; j < n; j++) {{
        double t = x[j] * {c}.0 + {k}.5;
        acc += t * t - t / (1.0 + t * t) + (j % 3 == 0 ? t : -t) * 0.{k}1;
    }}
    return acc;
}}
"""

TAIL = """
double unit_{i}(const double *x, int n) {{
    double s = 0.0;
{calls}
    return s;
}}
"""

MAKEFILE = """CFLAGS ?= -O2 -std=c11 -Wall
SRC = $(wildcard src/*.c)
OBJ = $(patsubst src/%.c,build/%.o,$(SRC))

all: bin/app

build/%.o: src/%.c
\t@mkdir -p build
\t$(CC) $(CFLAGS) -Iinclude -MMD -MP -c $< -o $@

bin/app: $(OBJ)
\t@mkdir -p bin
\t$(CC) -o $@ $^ -lm

-include $(wildcard build/*.d)
"""


def git(repo: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@example.com",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@example.com",
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "HOME": str(repo),
    }
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, stdout=subprocess.PIPE, text=True
    ).stdout.strip()


def unit_source(i: int, funcs: int, variant: int = 0) -> str:
    body = "".join(UNIT.format(i=i, k=k, c=(i * 7 + k) % 13 + 1 + variant) for k in range(funcs))
    calls = "\n".join(f"    s += poly_{i}_{k}(x, n);" for k in range(funcs))
    return body + TAIL.format(i=i, calls=calls)


def generate(repo: Path, files: int, funcs: int, candidates: int) -> dict[str, str]:
    """The project at `repo`; returns {"baseline": sha, "c01": sha, ...}."""
    (repo / "src").mkdir(parents=True)
    (repo / "include").mkdir()
    (repo / "include" / "common.h").write_text(
        "#pragma once\n#include <math.h>\n"
        + "".join(f"double unit_{i}(const double *x, int n);\n" for i in range(files))
    )
    for i in range(files):
        (repo / "src" / f"unit_{i:03d}.c").write_text(unit_source(i, funcs))
    calls = "".join(f"    s += unit_{i}(x, 64);\n" for i in range(files))
    (repo / "src" / "main.c").write_text(
        '#include <stdio.h>\n#include "common.h"\nint main(void) {\n    double x[64], s = 0.0;\n'
        "    for (int j = 0; j < 64; j++) x[j] = j * 0.01;\n"
        + calls
        + '    printf("METRIC app_s=%.6f\\n", s > 0 ? 1.0 : 2.0);\n    return 0;\n}\n'
    )
    (repo / "Makefile").write_text(MAKEFILE)
    (repo / ".gitignore").write_text("build/\nbin/\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "baseline")
    shas = {"baseline": git(repo, "rev-parse", "HEAD")}
    for c in range(candidates):
        name = f"c{c + 1:02d}"
        i = (c * 5) % files
        git(repo, "checkout", "-q", "-b", name, "main")
        (repo / "src" / f"unit_{i:03d}.c").write_text(unit_source(i, funcs, variant=c + 1))
        git(repo, "commit", "-q", "-a", "-m", f"candidate {name}: tweak unit_{i:03d}.c")
        shas[name] = git(repo, "rev-parse", "HEAD")
        git(repo, "checkout", "-q", "main")
    return shas


def run_driver(repo: Path, shas: dict[str, str], strategy: str, ccache: bool, jobs: int, work: Path) -> dict:
    project = {
        "preset": "generic",
        "build": {"commands": [f"make -j{jobs}"], "strategy": strategy, "ccache": ccache},
        "validate": {"commands": ["test -x bin/app"]},
        "benchmark": {
            "command": "./bin/app",
            "target": "app_s",
            "rounds": 1,
            "repetitions": 1,
            "warmup": 0,
            "threads": 1,
        },
        "paths": {"protected": []},
    }
    spec = {
        "schema": 1,
        "run_id": 0,
        "arch": "local",
        "source": {"url": str(repo)},
        "baseline": {"name": "baseline", "sha": shas["baseline"]},
        "candidates": [{"name": n, "sha": s} for n, s in shas.items() if n != "baseline"],
        "project": project,
    }
    work.mkdir(parents=True)
    (work / "spec.json").write_text(json.dumps(spec))
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(work), "CCACHE_DIR": str(work / "ccache")}
    subprocess.run(
        [sys.executable, str(DRIVER), "--spec", "spec.json", "--out", "result.json", "--workdir", "w"],
        cwd=work,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return json.loads((work / "result.json").read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, default=10)
    ap.add_argument("--files", type=int, default=48)
    ap.add_argument("--funcs", type=int, default=8, help="functions per generated file")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_engine-"))
    try:
        shas = generate(tmp / "repo", args.files, args.funcs, args.candidates)
        print(
            f"project: {args.files + 1} C files, {args.candidates} candidates (one edited file each), "
            f"make -j{args.jobs}; ccache {'found' if shutil.which('ccache') else 'NOT found'}"
        )
        rows = [("naive", "clean", False), ("incremental", "incremental", False)]
        if shutil.which("ccache"):
            rows.append(("ccache", "ccache", True))
        rows.append(("auto", "auto", True))
        figures = {}
        for label, strategy, ccache in rows:
            t = time.monotonic()
            r = run_driver(tmp / "repo", shas, strategy, ccache, args.jobs, tmp / label)
            v = r["variants"]
            bad = {n: x["status"] for n, x in v.items() if x["status"] != "ok"}
            if bad:
                raise SystemExit(f"{label}: variants failed: {bad}")
            base = v["baseline"]["build"]["seconds"]
            cands = sum(x["build"]["seconds"] for n, x in v.items() if n != "baseline")
            figures[label] = (base, cands, r["timings"]["build_s"])
            used = sorted({x["build"].get("strategy") for n, x in v.items() if n != "baseline"})
            print(
                f"{label:12s} [{'/'.join(used)}] baseline build {base:6.2f}s | "
                f"{args.candidates} candidates {cands:6.2f}s "
                f"({cands / args.candidates:5.2f}s each) | build phase total {r['timings']['build_s']:6.2f}s "
                f"| driver wall {time.monotonic() - t:6.2f}s"
            )
        naive_total = figures["naive"][2]
        for label, (_, cands, total) in figures.items():
            if label != "naive":
                print(
                    f"{label}: build phase {naive_total / total:4.1f}x faster than naive "
                    f"(candidates only: {figures['naive'][1] / cands:4.1f}x)"
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
