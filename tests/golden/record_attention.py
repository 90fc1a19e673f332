#!/usr/bin/env python3
"""Record the golden tests' input once: a REAL benchmark of the examples/attention fork commits.

    .venv/bin/python tests/golden/record_attention.py [--rounds 4]   # writes tests/golden/attention_run.json

Steps, all real: build the demo git history (examples/make_fork.py), turn each fork commit into a
candidate branch applied alone on upstream (bot.publish.candidate_from_commit), run sky/driver.py on this
machine (build, ./check, interleaved ./bench), decide with bot.experiments.stats, stack the winners
(bot.publish.stack_winners) and run the driver again on baseline vs stack vs the single winners.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

import make_fork  # noqa: E402

from bot.experiments import stats  # noqa: E402
from bot.publish import candidate_from_commit, stack_winners  # noqa: E402

OUT = Path(__file__).resolve().parent / "attention_run.json"


def run_driver(work: Path, repo: Path, base: str, candidates: list[dict], project: dict, tag: str) -> dict:
    spec = {
        "schema": 1,
        "run_id": 1,
        "arch": "x86",
        "seed": 1,
        "source": {"url": str(repo)},
        "baseline": {"name": "baseline", "sha": base},
        "candidates": [{"name": c["name"], "sha": c["sha"]} for c in candidates],
        "project": project,
    }
    spec_path = work / f"spec-{tag}.json"
    spec_path.write_text(json.dumps(spec, indent=1))
    out = work / f"result-{tag}.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "sky" / "driver.py"),
            "--spec",
            str(spec_path),
            "--out",
            str(out),
            "--workdir",
            str(work / f"driver-{tag}"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return json.loads(out.read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    project = yaml.safe_load((ROOT / "examples" / "attention" / ".autoresearch.yml").read_text())
    project["architectures"] = ["x86"]  # this machine; no ARM machine here
    project["benchmark"]["rounds"] = args.rounds
    with tempfile.TemporaryDirectory(prefix="record-attention-") as tmp:
        work = Path(tmp)
        history = make_fork.build(work / "git")
        repo = history.upstream
        for fork, path in history.forks.items():
            subprocess.run(
                ["git", "fetch", "-q", str(path), f"+refs/heads/*:refs/remotes/{fork}/*"],
                cwd=repo,
                check=True,
            )
        candidates = []
        for c in history.commits:
            name = f"fork-{c.sha[:7]}"
            picked = candidate_from_commit(repo, history.base_sha, c.sha, f"candidates/{name}")
            candidates.append(
                {
                    "name": name,
                    "branch": f"candidates/{name}",
                    "sha": picked.sha,
                    "source": "fork",
                    "title": c.title,
                    "hypothesis": c.message.split("\n", 2)[-1].strip(),
                    "citations": [f"{c.fork}@{c.sha[:12]} ({c.branch})"],
                    "slug": c.slug,
                }
            )
        results = {"x86": run_driver(work, repo, history.base_sha, candidates, project, "candidates")}
        decision = stats.decide(results, project)
        speedups = {w: decision.target_speedup(w) for w in decision.winners}
        winners = [
            {"name": c["name"], "sha": c["sha"], "speedup": speedups[c["name"]]}
            for c in candidates
            if c["name"] in speedups
        ]
        # the fork's conflicting alternative too, so that the stack shows a dropped candidate
        winners += [
            {"name": c["name"], "sha": c["sha"]}
            for c in candidates
            if c["slug"] == "5-softmax-reciprocal" and c["name"] not in speedups
        ]
        stack = stack_winners(repo, history.base_sha, winners, "autoresearch/1/stack")
        verification = None
        if stack.sha:
            singles = [c for c in candidates if c["name"] in stack.applied]
            verification = {
                "x86": run_driver(
                    work,
                    repo,
                    history.base_sha,
                    [{"name": "stack", "sha": stack.sha}] + singles,
                    project,
                    "stack",
                )
            }
        record = {
            "recorded_on": platform.platform(),
            "project": project,
            "base_sha": history.base_sha,
            "candidates": candidates,
            "results": results,
            "stack": stack.to_dict(),
            "verification": verification,
        }
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")
    for row in decision.rows:
        if row.metric == decision.target:
            c = row.comparison
            print(
                f"{row.candidate:16} {row.verdict:12} "
                + (f"{c.speedup:.3f}x [{c.ci_low:.3f}, {c.ci_high:.3f}]" if c else row.status)
            )
    print("winners:", decision.winners, "stack:", stack.to_dict())
    if verification:
        vd = stats.decide(verification, project)
        for row in vd.rows:
            if row.metric == vd.target and row.comparison:
                print(f"verify {row.candidate:16} {row.verdict:10} {row.comparison.speedup:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
