#!/usr/bin/env python3
"""Quick figures for the demo history: each fork commit applied alone on upstream, built, checked, benched.

    .venv/bin/python examples/measure_fork.py [--runs 5]

Prints one line per variant: check result and the median of --runs interleaved ./bench invocations
(baseline, c1, c2, ..., baseline, c1, ...), with the ratio baseline/candidate (>1 = faster). This is a
sanity check of the demo, not the bot's statistics (those live in bot.experiments.stats).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

import make_fork  # noqa: E402

from bot.publish import candidate_from_commit  # noqa: E402

METRIC = re.compile(r"^METRIC (\w+)=([0-9.eE+-]+)$", re.M)


def bench(tree: Path) -> dict[str, float]:
    out = subprocess.run(["./bench"], cwd=tree, check=True, capture_output=True, text=True).stdout
    return {k: float(v) for k, v in METRIC.findall(out)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="measure-fork-") as tmp:
        history = make_fork.build(Path(tmp) / "git")
        repo = history.upstream
        for fork, path in history.forks.items():
            subprocess.run(
                ["git", "fetch", "-q", str(path), f"+refs/heads/*:refs/remotes/{fork}/*"],
                cwd=repo,
                check=True,
            )
        variants = {"baseline": history.base_sha}
        for c in history.commits:
            variants[c.slug] = candidate_from_commit(repo, history.base_sha, c.sha, f"m/{c.slug}").sha
        trees, checks = {}, {}
        for name, sha in variants.items():
            tree = Path(tmp) / "wt" / name
            subprocess.run(["git", "worktree", "add", "-q", "--detach", str(tree), sha], cwd=repo, check=True)
            subprocess.run(["make", "-s", "bench", "check"], cwd=tree, check=True, capture_output=True)
            done = subprocess.run(["./check"], cwd=tree, capture_output=True, text=True)
            checks[name] = "pass" if done.returncode == 0 else "FAIL"
            trees[name] = tree
        samples: dict[str, list[dict[str, float]]] = {n: [] for n in variants}
        for _ in range(args.runs):
            for name in variants:
                samples[name].append(bench(trees[name]))
        base = {m: statistics.median(s[m] for s in samples["baseline"]) for m in samples["baseline"][0]}
        print(f"{'variant':24} {'check':5} " + " ".join(f"{m:>20}" for m in base))
        for name in variants:
            med = {m: statistics.median(s[m] for s in samples[name]) for m in base}
            cells = " ".join(f"{med[m]:9.2f} ({base[m] / med[m]:5.2f}x)" for m in base)
            spread = [round(s["attn_ms"], 1) for s in samples[name]]
            print(f"{name:24} {checks[name]:5} {cells}   attn_ms runs: {spread}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
