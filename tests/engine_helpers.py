"""Shared helpers for the engine tests: the minibench git repo, specs, and running the real driver."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from make_repo import CANDIDATES, apply_edits, make_repo  # noqa: F401  (tests/fixtures/minibench, on pythonpath)

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "minibench"
DRIVER = ROOT / "sky" / "driver.py"


def project(**bench: Any) -> dict[str, Any]:
    """The fixture's .autoresearch.yml as a project dict, benchmark fields overridden."""
    proj = yaml.safe_load((FIXTURE / ".autoresearch.yml").read_text())
    proj["benchmark"].update(bench)
    return proj


def spec(
    shas: dict[str, str],
    names: list[str],
    proj: dict[str, Any],
    arch: str = "x86",
    source: dict[str, str] | None = None,
    run_id: int = 1,
) -> dict[str, Any]:
    return {
        "schema": 1,
        "run_id": run_id,
        "arch": arch,
        "seed": 1,
        "source": source or {},
        "baseline": {"name": "baseline", "sha": shas["baseline"]},
        "candidates": [{"name": n, "sha": shas[n]} for n in names],
        "project": copy.deepcopy(proj),
    }


def run_driver(
    spec_dict: dict[str, Any], files_dir: Path, timeout: float = 120
) -> tuple[dict[str, Any], str]:
    """Run sky/driver.py as a subprocess on spec_dict (its source must be absolute); return (result,
    stdout)."""
    files_dir.mkdir(parents=True, exist_ok=True)
    (files_dir / "spec.json").write_text(json.dumps(spec_dict))
    p = subprocess.run(
        [sys.executable, str(DRIVER), "--spec", "spec.json", "--out", "result.json", "--workdir", "work"],
        cwd=files_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    assert p.returncode == 0, p.stdout[-3000:]
    return json.loads((files_dir / "result.json").read_text()), p.stdout
