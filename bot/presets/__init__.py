"""Presets: one module per preset, each exporting

    NAME            the `preset:` value
    DEFAULTS        its project-config defaults, merged over bot.config.GENERIC_DEFAULTS
    OPTIONS         {key: schema.Option}: the schema of its `preset_options:` section
    HOOKS           the driver hook module on the VM (sky/<HOOKS>.py, shipped next to driver.py), or None for
                    the driver's built-in hooks
    REQUIRED        dotted project fields that must be set (e.g. benchmark.command)
    LEGACY_SECTION  a deprecated top-level alias of `preset_options:` accepted for this preset only, or None
    VM_PACKAGES     python packages the VM's setup installs for the hooks (sky/bench.yaml)

`REGISTRY` below is the only place that names them: adding a preset is one module plus one line there.
"""

from __future__ import annotations

import re
from types import ModuleType

from . import generic, llamacpp
from .schema import Option

EXPORTS = ("NAME", "DEFAULTS", "OPTIONS", "HOOKS", "REQUIRED", "LEGACY_SECTION", "VM_PACKAGES")
HOOKS_RE = re.compile(r"^[a-z_][a-z0-9_]*$")  # what sky/driver.py accepts as a hook module name


def check(module: ModuleType) -> ModuleType:
    """The module, if it exports everything a preset must (TypeError naming what is wrong otherwise)."""
    missing = [name for name in EXPORTS if not hasattr(module, name)]
    if missing:
        raise TypeError(f"preset module {module.__name__} lacks {', '.join(missing)}")
    if not isinstance(module.NAME, str) or not module.NAME:
        raise TypeError(f"preset module {module.__name__}: NAME must be a non-empty string")
    if not all(isinstance(o, Option) for o in module.OPTIONS.values()):
        raise TypeError(f"preset {module.NAME}: OPTIONS values must be schema.Option")
    if module.HOOKS is not None and not HOOKS_RE.match(module.HOOKS):
        raise TypeError(
            f"preset {module.NAME}: HOOKS must be a module name like 'llamacpp', got {module.HOOKS!r}"
        )
    return module


REGISTRY: dict[str, ModuleType] = {m.NAME: check(m) for m in (generic, llamacpp)}


def get(name: str) -> ModuleType:
    """The registered preset called `name` (KeyError if none)."""
    return REGISTRY[name]


def legacy_sections() -> dict[str, str]:
    """{deprecated section name: the preset it belongs to}."""
    return {m.LEGACY_SECTION: name for name, m in REGISTRY.items() if m.LEGACY_SECTION}


def vm_packages(preset: str) -> list[str]:
    """The python packages the VM's setup installs for `preset`'s hooks ([] for an unknown name)."""
    module = REGISTRY.get(preset)
    return list(module.VM_PACKAGES) if module else []


__all__ = ["REGISTRY", "Option", "check", "get", "legacy_sections", "vm_packages"]
