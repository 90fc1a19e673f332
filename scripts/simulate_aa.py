#!/usr/bin/env python3
"""A vs A on the simulated tier: the demo project against an identical commit, through the real driver.

    .venv/bin/python scripts/simulate_aa.py [--trials 3]

Each trial is one driver run (build, ./check, a few wall-time pairs, then one cachegrind run per variant) of
examples/attention's baseline and an empty commit on top of it. Prints, per trial, the relative difference of
the estimated cycles and the instructions (within 0.01%), every cachegrind event's difference in counts, and
the decision's winners (must be none).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.experiments import stats  # noqa: E402

GIT = ["git", "-c", "user.name=aa", "-c", "user.email=aa@example.com", "-c", "commit.gpgsign=false"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=3)
    args = ap.parse_args()
    project = yaml.safe_load((ROOT / "examples" / "attention" / ".autoresearch.yml").read_text())
    project["architectures"] = ["x86"]
    project["benchmark"].update(rounds=2, repetitions=2, min_pairs=2)  # the wall tier is not what is measured
    worst = 0.0
    winners = 0
    with tempfile.TemporaryDirectory(prefix="simulate-aa-") as tmp:
        repo = Path(tmp) / "repo"
        shutil.copytree(ROOT / "examples" / "attention", repo)
        subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
        subprocess.run([*GIT, "add", "-A"], cwd=repo, check=True)
        subprocess.run([*GIT, "commit", "-qm", "baseline"], cwd=repo, check=True)
        base = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
        ).stdout.strip()
        subprocess.run([*GIT, "commit", "-q", "--allow-empty", "-m", "A/A"], cwd=repo, check=True)
        aa = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
        ).stdout.strip()
        for t in range(args.trials):
            work = Path(tmp) / f"t{t}"
            work.mkdir()
            spec = {
                "schema": 1,
                "run_id": t,
                "arch": "x86",
                "seed": t + 1,
                "source": {"url": str(repo)},
                "baseline": {"name": "baseline", "sha": base},
                "candidates": [{"name": "aa", "sha": aa}],
                "project": project,
            }
            (work / "spec.json").write_text(json.dumps(spec))
            subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "sky" / "driver.py"),
                    "--spec",
                    "spec.json",
                    "--out",
                    "result.json",
                    "--workdir",
                    "work",
                ],
                cwd=work,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            result = json.loads((work / "result.json").read_text())
            b, a = (result["variants"][n].get("simulated") or {} for n in ("baseline", "aa"))
            if not (b.get("ok") and a.get("ok")):
                print(f"trial {t}: simulated tier unavailable: {result.get('simulation')}")
                return 2
            rel = {
                k: (a["events"][k] - b["events"][k]) / b["events"][k] for k in b["events"] if b["events"][k]
            }
            rel_cycles = (a["estimated_cycles"] - b["estimated_cycles"]) / b["estimated_cycles"]
            # the decision's figures: estimated cycles and instructions (single events can differ by a count
            # or two, e.g. 1 I1 miss of ~1,500, which is no measurable change)
            worst = max(worst, abs(rel_cycles), abs(rel["Ir"]))
            counts = {k: a["events"][k] - b["events"][k] for k in b["events"]}
            d = stats.decide({"x86": result}, project)
            winners += len(d.winners)
            row = next(r for r in d.rows if r.metric == d.target)
            print(
                f"trial {t}: estimated cycles {b['estimated_cycles']:,} vs {a['estimated_cycles']:,} "
                f"({rel_cycles:+.2e}); instructions {rel['Ir']:+.2e}; events "
                + ", ".join(f"{k} {counts[k]:+d}" for k in counts if k != "Ir")
                + f"; simulated {row.simulated.get('verdict') if row.simulated else '-'}, "
                f"winners {d.winners}; {b['seconds']:.1f} s per simulation",
                flush=True,
            )
    print(
        json.dumps(
            {
                "trials": args.trials,
                "max_relative_difference": worst,
                "winners": winners,
                "within_0.01%": worst < 1e-4,
            }
        )
    )
    return 0 if worst < 1e-4 and winners == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
