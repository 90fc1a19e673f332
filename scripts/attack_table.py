#!/usr/bin/env python3
"""Run the hostile-candidate suite (tests/hostile.py) once and print the attack table.

    .venv/bin/python scripts/attack_table.py [--vm] [--keep DIR]

Each attacker is a real fork commit of the minibench project; one hostile batch (baseline, A/A control, every
attacker) runs through the local executor, the driver and one sandbox per invocation, then a clean batch
(baseline + A/A) queued behind it. Columns: the attack, the candidate's outcome (status: "ok" = contained,
measured as itself), the reason it was rejected (the limit it hit) or "contained", what of its attack
succeeded (must be nothing), whether something it started outlived its invocation, whether it won, and the
baseline's simulated cost against the clean batch's (must be < 1e-4). The host's responsiveness during the
run: the worst delay of a 50 ms sleep in this process (a measure on a shared machine, not a verdict).

--vm runs the driver as a SkyPilot VM runs it (no local executor: `python3 driver.py` on the task files,
as root, bwrap from PATH), the same attacks.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import hostile  # noqa: E402  (tests/hostile.py: the attacks)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vm", action="store_true", help="run the driver as the VM does (no local executor)")
    ap.add_argument("--keep", help="work directory to keep (default: a temporary one, removed)")
    args = ap.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="autoresearch-attacks-"))
    delays: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            t = time.monotonic()
            time.sleep(0.05)
            delays.append(time.monotonic() - t - 0.05)

    th = threading.Thread(target=probe, daemon=True)
    th.start()
    try:
        run = hostile.run_vm(work) if args.vm else hostile.run_batches(work)
    finally:
        stop.set()
        th.join()
    rows = hostile.table(run)
    head = ("attack", "outcome", "won", "outlived", "succeeded", "baseline Δ")
    print("{:<20} {:<13} {:<4} {:<8} {:<9} {:<11} reason".format(*head))
    bad = 0
    for row in rows:
        status, words = hostile.EXPECTED[row["attack"]]
        ok = (
            row["status"] == status
            and (not words or words in row["reason"])
            and not row["succeeded"]
            and not row["winner"]
            and not row["outlived"]
            and row["baseline_delta"] is not None
            and row["baseline_delta"] < 1e-4
        )
        bad += not ok
        delta = "n/a" if row["baseline_delta"] is None else f"{row['baseline_delta']:.1e}"
        print(
            f"{row['attack']:<20} {row['status']:<13} {'yes' if row['winner'] else 'no':<4} "
            f"{'yes' if row['outlived'] else 'no':<8} {len(row['succeeded']):<9} {delta:<11} "
            f"{row['reason'][:90]}" + ("" if ok else "   <-- NOT AS EXPECTED")
        )
        for line in row["succeeded"]:
            print(f"{'':<20} SUCCEEDED: {line}")
    delays.sort()
    p99 = delays[int(0.99 * (len(delays) - 1))] if delays else float("nan")
    print(
        f"\n{len(rows)} attacks, {bad} not as expected; both batches {run['states']} in {run['seconds']}s; "
        f"host responsiveness: 50 ms sleep overshoot p99 {p99 * 1000:.1f} ms, "
        f"max {max(delays or [0]) * 1000:.1f} ms"
    )
    left = hostile.leftover_processes(hostile.UID_FIRST, len(rows) + 2)
    print(f"processes left under the sandbox uids: {left or 'none'}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if bad or left else 0


if __name__ == "__main__":
    sys.exit(main())
