"""The shape of a preset's `preset_options:` section: one `Option` per key, checked by one generic validator
(a pydantic model made from them, bot/configmodel.py `option_model`; the JSON Schema shows them per preset),
so a preset declares its options instead of carrying validation code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Option:
    """One key of `preset_options:`: its type, default and bounds (numbers), and whether null is allowed."""

    kind: type  # int, float, bool or str
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False
    help: str = ""

    def __post_init__(self) -> None:
        if self.kind not in (int, float, bool, str):
            raise TypeError(f"Option.kind must be int, float, bool or str, got {self.kind!r}")
