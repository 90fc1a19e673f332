"""The driver's result.json: load, schema check with clear errors, accessors (shape: docs/ARCHITECTURE.md)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

SCHEMA = 1
FINAL_STATUSES = ("ok", "build_failed", "validation_failed", "bench_failed")
STATUSES = FINAL_STATUSES + ("pending",)  # "pending" only in partial results (crashed / running)
TIMING_KEYS = ("build_s", "validate_s", "bench_s", "total_s")


class ResultError(ValueError):
    """A result dict does not have the documented shape; `field` is a dotted path."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"result.{field}: {problem}")
        self.field = field
        self.problem = problem


def _need(d: dict, key: str, kind: type | tuple, where: str) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if key not in d:
        raise ResultError(f"{where}{key}", "is missing")
    value = d[key]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise ResultError(f"{where}{key}", f"must be {_kind_name(kind)}, got {type(value).__name__}")
    return value


def _kind_name(kind: type | tuple) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def validate_result(result: Any, partial: bool = False) -> dict[str, Any]:
    """Return `result` if it matches the documented shape, else raise ResultError.

    partial=True accepts a result the driver has not finished (`complete` false, variants "pending").
    """
    if not isinstance(result, dict):
        raise ResultError("", f"must be an object, got {type(result).__name__}")
    if _need(result, "schema", int, "") != SCHEMA:
        raise ResultError("schema", f"unsupported version {result['schema']} (expected {SCHEMA})")
    _need(result, "arch", str, "")
    if not partial and result.get("complete") is False:
        raise ResultError("complete", "is false: the driver did not finish (pass partial=True to accept)")
    machine = _need(result, "machine", dict, "")
    for key, kind in (("cpu", str), ("flags", list), ("kernel", str), ("nproc", int), ("arch", str)):
        _need(machine, key, kind, "machine.")
    variants = _need(result, "variants", dict, "")
    if not variants:
        raise ResultError("variants", "is empty")
    for name, variant in variants.items():
        _check_variant(name, variant, partial)
    schedule = _need(result, "schedule", list, "")
    for i, name in enumerate(schedule):
        if name not in variants:
            raise ResultError(f"schedule[{i}]", f"unknown variant {name!r}")
    timings = _need(result, "timings", dict, "")
    for key in TIMING_KEYS:
        _need(timings, key, (int, float), "timings.")
    errors = _need(result, "errors", list, "")
    if not all(isinstance(e, str) for e in errors):
        raise ResultError("errors", "must be a list of strings")
    return result


def _check_variant(name: str, v: Any, partial: bool) -> None:
    where = f"variants.{name}."
    if not isinstance(v, dict):
        raise ResultError(where[:-1], "must be an object")
    _need(v, "sha", str, where)
    st = _need(v, "status", str, where)
    allowed = STATUSES if partial else FINAL_STATUSES
    if st not in allowed:
        raise ResultError(f"{where}status", f"{st!r} is not one of {', '.join(allowed)}")
    build = _need(v, "build", dict, where)
    _need(build, "ok", bool, f"{where}build.")
    _need(build, "seconds", (int, float), f"{where}build.")
    validation = _need(v, "validation", dict, where)
    _need(validation, "ok", bool, f"{where}validation.")
    for i, check in enumerate(_need(validation, "checks", list, f"{where}validation.")):
        if not (
            isinstance(check, dict)
            and isinstance(check.get("name"), str)
            and isinstance(check.get("ok"), bool)
        ):
            raise ResultError(f"{where}validation.checks[{i}]", "needs a string 'name' and a boolean 'ok'")
    samples = _need(v, "samples", dict, where)
    for metric, values in samples.items():
        if not isinstance(values, list):
            raise ResultError(f"{where}samples.{metric}", "must be a list of numbers")
        for i, x in enumerate(values):
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                raise ResultError(f"{where}samples.{metric}[{i}]", f"must be a finite number, got {x!r}")
    if st == "ok" and not partial and not samples:
        raise ResultError(f"{where}samples", "is empty for a variant with status ok")


def load_result(source: str | Path | dict[str, Any], partial: bool = False) -> dict[str, Any]:
    """Load a result from a path, a JSON string or a dict, and validate it."""
    if isinstance(source, dict):
        data: Any = source
    else:
        text = Path(source).read_text() if isinstance(source, Path) else source
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ResultError("", f"is not valid JSON: {e}") from e
    return validate_result(data, partial=partial)


def variant_names(result: dict[str, Any]) -> list[str]:
    return list(result["variants"])


def status(result: dict[str, Any], variant: str) -> str:
    try:
        return str(result["variants"][variant]["status"])
    except KeyError as e:
        raise KeyError(
            f"no variant {variant!r} in result (have {', '.join(result.get('variants', {}))})"
        ) from e


def samples(result: dict[str, Any], variant: str, metric: str) -> list[float]:
    """Raw per-invocation samples of one metric ([] when the variant produced none)."""
    status(result, variant)
    return [float(x) for x in result["variants"][variant].get("samples", {}).get(metric, [])]


def is_complete(result: dict[str, Any]) -> bool:
    return result.get("complete", True) is not False
