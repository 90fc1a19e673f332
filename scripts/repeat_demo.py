#!/usr/bin/env python3
"""Run `autoresearch-bot demo` N times in a row (optionally beside a CPU hog) and print each run's verdicts.

    .venv/bin/python scripts/repeat_demo.py --runs 5 --hog

The hog is the same load as shared/tools/cpu-hog: one process, busy 1 s then idle 1 s. Each run's verdict
table and winners come from the demo's own output; the summary says whether every run found the same winners
and opened one draft PR. Exit 1 when they differ.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOG = (
    "import time\nwhile True:\n    t = time.time()\n    while time.time() - t < 1: pass\n    time.sleep(1)\n"
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--hog", action="store_true", help="run a CPU hog (busy 1 s / idle 1 s) alongside")
    args = ap.parse_args()
    exe = Path(sys.executable).parent / "autoresearch-bot"
    hog = subprocess.Popen([sys.executable, "-c", HOG]) if args.hog else None
    runs = []
    try:
        for i in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="demo-") as tmp:
                t0 = time.monotonic()
                p = subprocess.run(
                    [str(exe), "demo", "--workdir", str(Path(tmp) / "demo")],
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    timeout=1800,
                )
                seconds = time.monotonic() - t0
            out = p.stdout
            table = out[out.find("Verdicts (") : out.find("publication:")] if "Verdicts (" in out else ""
            winners = re.search(r"^winners: (.*)$", out, re.MULTILINE)
            pub = re.search(r"^publication: (\S+) (\S*)", out, re.MULTILINE)
            verdicts = re.findall(r"^  (\S+)\s+(\S+)\s+(\S+)\s+sim", out, re.MULTILINE)
            run = {
                "run": i + 1,
                "exit": p.returncode,
                "seconds": round(seconds, 1),
                "winners": winners.group(1) if winners else None,
                "publication": pub.group(1) if pub else None,
                "pr": bool(pub and "/pull/" in pub.group(2)),
                "verdicts": {c: v for c, _, v in verdicts},
                "traceback": "Traceback" in out,
            }
            runs.append(run)
            print(f"--- run {i + 1}: exit {p.returncode}, {seconds:.0f} s{' (with the hog)' if hog else ''}")
            print(table.rstrip() or out[-2000:])
            print(
                f"winners: {run['winners']}; publication: {run['publication']}, draft PR: {run['pr']}",
                flush=True,
            )
    finally:
        if hog:
            hog.kill()
    same = len({json.dumps([r["winners"], r["verdicts"], r["publication"]]) for r in runs}) == 1
    ok = same and all(r["exit"] == 0 and r["pr"] and not r["traceback"] for r in runs)
    print(
        json.dumps(
            {
                "runs": len(runs),
                "hog": bool(hog),
                "identical_verdicts_and_winners": same,
                "all_opened_one_draft_pr": all(r["pr"] for r in runs),
                "seconds": [r["seconds"] for r in runs],
                "winners": runs[0]["winners"] if runs else None,
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
