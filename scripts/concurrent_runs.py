#!/usr/bin/env python3
"""Wall time of N bench runs with max_concurrent_runs 1 and N (prints the figures).

Each run goes through the real worker (its run threads claim runs by lease), the pipeline, the benchmark stage
(mirror, bundle, spec, task rendering) and SkyPilotExecutor, against the SkyPilot SDK double of the tests
(tests/sky_double.py; its signatures are checked against the real `sky` by tests/test_skypilot_exec.py). Each
VM job has a scripted duration (simulated setup + benchmark, real seconds of waiting); no cloud is used.
Prints the total wall time against the longest single run and against the serial sum, the most runs on VMs at
once, and checks that no two runs shared a cluster name, an executor handle, a work dir or a result (exit 1
if they did, or if a run did not finish).

    .venv/bin/python scripts/concurrent_runs.py [--runs 10] [--min 2] [--max 6] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from concurrent_bench import run_bench  # noqa: E402  (tests/ on the path first)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="bench runs (default 10)")
    parser.add_argument("--min", type=float, default=2.0, help="shortest VM job, seconds (default 2)")
    parser.add_argument("--max", type=float, default=6.0, help="longest VM job, seconds (default 6)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.runs < 1 or not 0 < args.min <= args.max:
        parser.error("need --runs >= 1 and 0 < --min <= --max")
    rng = random.Random(args.seed)
    durations = [round(rng.uniform(args.min, args.max), 2) for _ in range(args.runs)]
    print(f"{args.runs} bench runs, scripted VM job durations (s): {', '.join(f'{d:g}' for d in durations)}")
    print(f"longest single job {max(durations):.2f} s, serial sum {sum(durations):.2f} s")
    ok = True
    with tempfile.TemporaryDirectory(prefix="concurrent-runs-") as tmp:
        for concurrency in (1, args.runs):
            out = run_bench(Path(tmp) / f"c{concurrency}", durations, concurrency)
            done = sum(s == "done" for s in out.states.values())
            print(
                f"max_concurrent_runs {concurrency:>2}: wall {out.wall_s:6.2f} s = "
                f"{out.wall_s / max(durations):.2f} x the longest job, "
                f"{out.wall_s / sum(durations):.2f} x the serial sum; "
                f"most runs on VMs at once {out.peak}; done {done}/{out.runs}; "
                f"distinct clusters {len({c for cs in out.clusters.values() for c in cs})}, "
                f"handles {len({h for hs in out.handles.values() for h in hs})}, "
                f"work dirs {len(set(out.workdirs.values()))}, results {len(set(out.results.values()))}"
            )
            for problem in out.problems:
                print(f"  SHARED: {problem}")
            ok = ok and done == out.runs and not out.problems and not out.fake.alive
            if out.fake.alive:
                print(f"  clusters left up: {sorted(out.fake.alive)}")
    print("nothing shared between runs" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
