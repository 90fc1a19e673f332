"""`autoresearch-bot bench`: the bot's measurement on your own machine, for reproducing a table.

Same driver, same interleaving, same statistics as the bot, over a local git repository:

    autoresearch-bot bench --repo . --baseline <sha> --candidate <sha> [--candidate <sha> ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .config import PROJECT_CONFIG_FILE, ConfigError, ProjectConfig
from .gitutil import GitError, output, run


def _git(repo: Path, *args: str) -> str:
    try:
        return output(repo, *args).strip()
    except GitError as exc:
        raise SystemExit(str(exc)) from None


def run_bench(args: argparse.Namespace) -> int:
    from . import report
    from .experiments.executors import Batch, LocalExecutor
    from .experiments.stats import decide
    from .experiments.tasks import make_bundle

    repo = Path(args.repo).resolve()
    git_dir = Path(_git(repo, "rev-parse", "--absolute-git-dir"))
    base = _git(repo, "rev-parse", f"{args.baseline}^{{commit}}")
    cands = [
        (f"c{i + 1}-{_git(repo, 'rev-parse', '--short=7', c)}", _git(repo, "rev-parse", f"{c}^{{commit}}"))
        for i, c in enumerate(args.candidate)
    ]
    if args.config_file:
        text = Path(args.config_file).read_text()
    else:
        proc = run(repo, "show", f"{base}:{PROJECT_CONFIG_FILE}", check=False, text=True)
        text = proc.stdout if proc.returncode == 0 else None
    try:
        project = ProjectConfig.from_yaml(text).to_dict()
    except ConfigError as exc:
        print(f"project config: {exc}", file=sys.stderr)
        return 2
    if args.rounds:
        project["benchmark"]["rounds"] = args.rounds
    arch = args.arch.split(",")[0]
    project["architectures"] = [arch]
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    bundle = make_bundle(
        git_dir, [base] + [sha for _, sha in cands], workdir / f"bench-{int(time.time())}.bundle"
    )
    spec = {
        "schema": 1,
        "run_id": 0,
        "arch": arch,
        "seed": 1,
        "source": {"bundle": bundle.name},
        "baseline": {"name": "baseline", "sha": base},
        "candidates": [{"name": n, "sha": sha} for n, sha in cands],
        "project": project,
    }
    executor = LocalExecutor(workdir / "executor")
    handle = executor.submit(Batch(run_id=0, specs={arch: spec}, bundle=bundle))
    print(
        f"measuring {len(cands)} candidate(s) against {base[:10]} on this machine ({arch}); handle {handle}"
    )
    while executor.poll(handle) == "running":
        time.sleep(1.0)
    results = executor.collect(handle)
    if not results:
        print(executor.logs(handle)[-3000:], file=sys.stderr)
        return 1
    decision = decide(results, project).to_dict()
    candidates = [{"name": n, "sha": sha, "branch": None} for n, sha in cands]
    print(report.benchmark_table(decision, candidates))
    for note in decision.get("notes", []):
        print(f"note: {report.note_text(note)}")
    print(f"winners: {', '.join(decision['winners']) or 'none'}")
    return 0
