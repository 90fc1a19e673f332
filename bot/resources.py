"""Files the bot ships besides its code: the VM driver folder (``sky/``) and the prompt templates
(``prompts/``).

In the repository they are the top-level ``sky/`` and ``prompts/`` folders. A built distribution (wheel)
carries them as package data under ``bot/_data/sky`` and ``bot/_data/prompts`` (see setup.py), because a
top-level ``sky`` folder in site-packages would be SkyPilot's own ``sky`` package. Installed data wins; the
repository folders are used when the bot runs from a checkout (editable install, PYTHONPATH).
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

# name -> files that must be there (a folder missing them is not ours, e.g. SkyPilot's `sky` package)
MARKERS = {
    "sky": ("driver.py", "bench.yaml"),
    "prompts": ("dossier.md",),
    "deploy": ("app-manifest.json",),
}


class MissingData(FileNotFoundError):
    """The bot's data files are neither installed nor in a checkout."""


def _candidates(name: str) -> list[Path]:
    pkg = Path(str(importlib.resources.files("bot")))
    return [pkg / "_data" / name, pkg.parent / name]


def data_dir(name: str) -> Path:
    """The folder holding the bot's ``name`` files ("sky", "prompts" or "deploy": the GitHub App manifest)
    as a real path on disk."""
    if name not in MARKERS:
        raise ValueError(f"unknown data folder {name!r}")
    tried = _candidates(name)
    for path in tried:
        if all((path / marker).is_file() for marker in MARKERS[name]):
            return path
    raise MissingData(
        f"the bot's {name}/ files are missing (looked in {', '.join(map(str, tried))}); "
        "reinstall the package: pip install 'autoresearch-bot[aws]'"
    )


def sky_dir() -> Path:
    """driver.py, llamacpp.py, make_model.py, bench.yaml."""
    return data_dir("sky")


def sky_module(name: str) -> ModuleType:
    """``sky/<name>.py``, a stdlib module the VM driver imports too (e.g. ``pathglob``, ``gitrun``), imported
    once from ``sky_dir()`` (checkout or install) and kept in ``sys.modules`` as ``autoresearch_sky_<name>``
    (never as a top-level ``<name>``, which the driver's folder owns on the VM), so the bot and the driver
    run the same code and every bot module sees the same classes."""
    key = f"autoresearch_sky_{name}"
    module = sys.modules.get(key)
    if module is None:
        spec = importlib.util.spec_from_file_location(key, sky_dir() / f"{name}.py")
        if spec is None or spec.loader is None:
            raise MissingData(f"sky/{name}.py cannot be loaded from {sky_dir()}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module  # before exec: dataclasses and pickling look the module up by name
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[key]
            raise
    return module


def prompts_dir() -> Path:
    """LLM prompt templates (``*.md``)."""
    return data_dir("prompts")


def skypilot() -> Any:
    """SkyPilot's ``sky`` package; a clear error when it is missing or when a checkout's ``sky/`` folder (the
    bot's driver files, no ``__init__.py``) is all that ``import sky`` finds."""
    try:
        import sky
    except ImportError as exc:
        raise ImportError(
            f"SkyPilot is not installed ({exc}): pip install 'autoresearch-bot[aws]' "
            "(or [gcp], [azure], [kubernetes])"
        ) from exc
    if getattr(sky, "__file__", None) is None or not hasattr(sky, "Task"):
        raise ImportError(
            f"`import sky` found {list(getattr(sky, '__path__', []))} instead of SkyPilot: "
            "pip install 'autoresearch-bot[aws]' (or [gcp], [azure], [kubernetes])"
        )
    return sky
