"""Shared by tests/test_publish.py and tests/test_report.py: the demo git history and the recorded run."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import make_fork  # examples/make_fork.py (examples/ is on pytest's pythonpath)

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"


def recorded_run() -> dict[str, Any]:
    """The real measurement recorded by tests/golden/record_attention.py (deep copy, safe to edit)."""
    return copy.deepcopy(json.loads((GOLDEN / "attention_run.json").read_text()))


def demo_repo(tmp: Path) -> tuple[Path, make_fork.ForkHistory]:
    """Upstream clone holding every fork branch (as refs/remotes/<fork>/<branch>)."""
    history = make_fork.build(tmp / "git")
    repo = history.upstream
    for fork, path in history.forks.items():
        subprocess.run(
            ["git", "fetch", "-q", str(path), f"+refs/heads/*:refs/remotes/{fork}/*"], cwd=repo, check=True
        )
    return repo, history


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()
