"""The generic preset: the project says how to build, check and benchmark; the driver's built-in hooks
(sky/driver.py `GenericPreset`) run those commands."""

from __future__ import annotations

from typing import Any

from .schema import Option

NAME = "generic"
DEFAULTS: dict[str, Any] = {}  # bot.config.GENERIC_DEFAULTS as they are
OPTIONS: dict[str, Option] = {}  # no preset_options
HOOKS: str | None = None  # the driver's built-in hooks
REQUIRED: tuple[str, ...] = ("benchmark.command",)
LEGACY_SECTION: str | None = None
VM_PACKAGES: tuple[str, ...] = ()
