"""Benchmark task files: the git bundle, spec.json, driver files, and the rendered SkyPilot task dict.

The same rendered task runs locally (LocalExecutor runs its `run` section) and on a VM (SkyPilot).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import yaml

SKY_DIR = Path(__file__).resolve().parents[2] / "sky"
TEMPLATE = SKY_DIR / "bench.yaml"
BUNDLE_NAME = "repo.bundle"
SPEC_NAME = "spec.json"
RESULT_NAME = "result.json"
RESOURCE_KEYS = ("cloud", "infra", "region", "zone", "instance_type", "cpus", "memory", "use_spot", "disk_size",
                 "image_id", "disk_tier")


class TaskError(ValueError):
    """A batch cannot be turned into task files (bad spec, missing commit, bad arch config)."""


def _git(git_dir: Path, *args: str) -> str:
    p = subprocess.run(["git", *args], cwd=str(git_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise TaskError(f"git {' '.join(args)} failed: {p.stderr.strip()[-800:]}")
    return p.stdout


def make_bundle(git_dir: Path, shas: list[str], out: Path) -> Path:
    """Write a git bundle holding the given commits (via temporary refs under refs/autoresearch-bundle/)."""
    if not shas:
        raise TaskError("make_bundle needs at least one commit")
    prefix = f"refs/autoresearch-bundle/{uuid.uuid4().hex[:12]}"
    refs = []
    try:
        for sha in dict.fromkeys(shas):
            full = _git(git_dir, "rev-parse", "--verify", f"{sha}^{{commit}}").strip()
            ref = f"{prefix}/{full}"
            _git(git_dir, "update-ref", ref, full)
            refs.append(ref)
        out.parent.mkdir(parents=True, exist_ok=True)
        _git(git_dir, "bundle", "create", str(out), *refs)
    finally:
        for ref in refs:
            subprocess.run(["git", "update-ref", "-d", ref], cwd=str(git_dir), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    return out


def write_batch_files(spec: dict[str, Any], files_dir: Path, bundle: Path | None = None,
                      driver_dir: Path = SKY_DIR, link_bundle: bool = True) -> Path:
    """Fill files_dir with the driver files (every sky/*.py: driver, presets, their helpers), spec.json and
    the bundle (a hard link when link_bundle, else a copy); return files_dir."""
    if not (driver_dir / "driver.py").exists():
        raise TaskError(f"{driver_dir / 'driver.py'} is missing")
    files_dir.mkdir(parents=True, exist_ok=True)
    spec = json.loads(json.dumps(spec))
    for src in sorted(driver_dir.glob("*.py")):
        shutil.copy2(src, files_dir / src.name)
    if bundle is not None:
        dst = files_dir / BUNDLE_NAME
        if dst.exists():
            dst.unlink()
        try:
            if not link_bundle:
                raise OSError("copy asked")
            dst.hardlink_to(bundle)
        except OSError:
            shutil.copy2(bundle, dst)
        spec["source"] = {"bundle": BUNDLE_NAME}
    if not (spec.get("source") or {}).get("bundle") and not (spec.get("source") or {}).get("url"):
        raise TaskError("spec.source needs a bundle file or a read-only url")
    (files_dir / SPEC_NAME).write_text(json.dumps(spec, indent=1))
    return files_dir


def render_task(spec: dict[str, Any], arch_cfg: dict[str, Any], files_dir: Path) -> dict[str, Any]:
    """The task config dict (SkyPilot YAML schema) for one arch; `sky.Task.from_yaml_config` accepts it."""
    task = yaml.safe_load(TEMPLATE.read_text())
    arch = str(spec.get("arch") or "arch")
    task["name"] = f"autoresearch-{spec.get('run_id', 0)}-{arch}".lower().replace("_", "-")
    task["workdir"] = str(Path(files_dir).resolve())
    envs = dict(task.get("envs") or {})
    envs["AUTORESEARCH_PRESET"] = str((spec.get("project") or {}).get("preset") or "generic")
    task["envs"] = {k: str(v) for k, v in envs.items()}
    task["resources"] = _resources(arch_cfg, task.get("resources") or {})
    return task


def _resources(arch_cfg: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(arch_cfg, dict):
        raise TaskError("arch config must be a mapping")
    res = {k: v for k, v in defaults.items() if k in ("disk_size", "use_spot", "autostop")}
    res.update({k: arch_cfg[k] for k in RESOURCE_KEYS if arch_cfg.get(k) is not None})
    if "autostop_minutes" in arch_cfg:
        res["autostop"] = {"idle_minutes": int(arch_cfg["autostop_minutes"]), "down": True}
    return res


def validate_task(task: dict[str, Any]) -> None:
    """Check a rendered task against SkyPilot's own task schema (offline; no cloud catalog needed)."""
    from sky.utils import common_utils, schemas  # noqa: PLC0415  (heavy import, only when asked)

    try:
        common_utils.validate_schema(task, schemas.get_task_schema(), "Invalid task YAML: ")
        common_utils.validate_schema(task.get("resources") or {}, schemas.get_resources_schema(),
                                     "Invalid task resources: ")
    except ValueError as e:
        raise TaskError(str(e)) from e
