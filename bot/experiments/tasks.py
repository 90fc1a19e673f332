"""Benchmark task files: the git bundle, spec.json, driver files, and the rendered SkyPilot task dict.

The same rendered task runs locally (LocalExecutor runs its `run` section) and on a VM (SkyPilot).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import yaml

from bot import presets
from bot.experiments.cost import BOT_ARCH_KEYS  # the arch config's own keys; everything else goes to SkyPilot
from bot.gitutil import GitError, output, run
from bot.resources import sky_dir

BUNDLE_NAME = "repo.bundle"
SPEC_NAME = "spec.json"
RESULT_NAME = "result.json"
# SkyPilot resource keys whose values the template supplies when an architecture does not set them
TEMPLATE_RESOURCE_KEYS = ("disk_size", "use_spot", "autostop")


def __getattr__(name: str) -> Path:
    """SKY_DIR / TEMPLATE, resolved when first asked (installed package data or the checkout's sky/)."""
    if name == "SKY_DIR":
        return sky_dir()
    if name == "TEMPLATE":
        return sky_dir() / "bench.yaml"
    raise AttributeError(name)


class TaskError(ValueError):
    """A batch cannot be turned into task files (bad spec, missing commit, bad arch config)."""


def make_bundle(git_dir: Path, shas: list[str], out: Path) -> Path:
    """Write a git bundle holding the given commits (via temporary refs under refs/autoresearch-bundle/)."""
    if not shas:
        raise TaskError("make_bundle needs at least one commit")
    prefix = f"refs/autoresearch-bundle/{uuid.uuid4().hex[:12]}"
    refs = []
    try:
        for sha in dict.fromkeys(shas):
            full = output(git_dir, "rev-parse", "--verify", f"{sha}^{{commit}}").strip()
            ref = f"{prefix}/{full}"
            output(git_dir, "update-ref", ref, full)
            refs.append(ref)
        out.parent.mkdir(parents=True, exist_ok=True)
        output(git_dir, "bundle", "create", str(out), *refs)
    except GitError as exc:
        raise TaskError(str(exc)) from exc
    finally:
        for ref in refs:
            run(git_dir, "update-ref", "-d", ref, check=False)
    return out


def write_batch_files(
    spec: dict[str, Any],
    files_dir: Path,
    bundle: Path | None = None,
    driver_dir: Path | None = None,
    link_bundle: bool = True,
) -> Path:
    """Fill files_dir with the driver files (every sky/*.py: driver, presets, their helpers), spec.json and
    the bundle (a hard link when link_bundle, else a copy); return files_dir."""
    driver_dir = Path(driver_dir) if driver_dir is not None else sky_dir()
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
    task = yaml.safe_load((sky_dir() / "bench.yaml").read_text())
    arch = str(spec.get("arch") or "arch")
    task["name"] = f"autoresearch-{spec.get('run_id', 0)}-{arch}".lower().replace("_", "-")
    task["workdir"] = str(Path(files_dir).resolve())
    envs = dict(task.get("envs") or {})
    preset = str((spec.get("project") or {}).get("preset") or "generic")
    envs["AUTORESEARCH_PRESET"] = preset
    envs["AUTORESEARCH_PIP"] = " ".join(presets.vm_packages(preset))
    task["envs"] = {k: str(v) for k, v in envs.items()}
    labels = {"autoresearch-run": str(spec.get("run_id", 0)), "autoresearch-arch": _label(arch)}
    shard = (spec.get("shard") or {}).get("key")
    if shard:  # one VM of a fan-out (bot/experiments/shards.py)
        labels["autoresearch-shard"] = _label(str(shard))
        task["name"] = f"autoresearch-{spec.get('run_id', 0)}-{_label(str(shard))}"
    task["resources"] = _resources(arch_cfg, task.get("resources") or {}, labels)
    return task


def _resources(
    arch_cfg: dict[str, Any], defaults: dict[str, Any], labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """The arch's resources in SkyPilot's own syntax, passed through (``infra``, ``any_of``/``ordered``,
    ``labels``, ``image_id``, ...), over the template's defaults; SkyPilot's schema validates them."""
    if not isinstance(arch_cfg, dict):
        raise TaskError("arch config must be a mapping")
    if arch_cfg.get("infra") and any(arch_cfg.get(k) for k in ("cloud", "region", "zone")):
        raise TaskError("set either `infra` (cloud/region/zone) or `cloud`/`region`/`zone`, not both")
    res = {k: v for k, v in defaults.items() if k in TEMPLATE_RESOURCE_KEYS}
    res.update({k: copy.deepcopy(v) for k, v in arch_cfg.items() if k not in BOT_ARCH_KEYS and v is not None})
    for key in ("any_of", "ordered"):  # an alternative's own `price_per_hour` is the bot's, never SkyPilot's
        if isinstance(res.get(key), list):
            res[key] = [
                {k: v for k, v in alt.items() if k not in BOT_ARCH_KEYS} if isinstance(alt, dict) else alt
                for alt in res[key]
            ]
    if "autostop_minutes" in arch_cfg:
        res["autostop"] = {"idle_minutes": int(arch_cfg["autostop_minutes"]), "down": True}
    if labels:
        res["labels"] = {**labels, **(res.get("labels") or {})}
    return res


def _label(value: str) -> str:
    """A label value every cloud accepts (GCP is the strictest: lowercase, digits, - and _, <= 63)."""
    return re.sub(r"[^a-z0-9_-]", "-", value.lower())[:63] or "none"


def validate_task(task: dict[str, Any]) -> None:
    """Check a rendered task against SkyPilot's own task schema (offline; no cloud catalog needed)."""
    from sky.utils import common_utils, schemas  # noqa: PLC0415  (heavy import, only when asked)

    try:
        common_utils.validate_schema(task, schemas.get_task_schema(), "Invalid task YAML: ")
        common_utils.validate_schema(
            task.get("resources") or {}, schemas.get_resources_schema(), "Invalid task resources: "
        )
    except ValueError as e:
        raise TaskError(str(e)) from e
