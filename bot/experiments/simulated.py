"""Simulated-cost tier: exact figures from one cachegrind run per variant (sky/simulate.py), compared.

No interval and no test: the figure is deterministic (an A/A pair differs by ~1e-6), so the comparison is the
ratio itself against the minimum effect: speedup = baseline estimated cycles / candidate estimated cycles;
"faster" when log(speedup) >= log(1 + min_effect), "slower" when <= -log(1 + min_effect), else "no change".
The per-function differential profile says where a change acts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

TOP_FUNCTIONS = 10


@dataclass
class SimComparison:
    baseline_cycles: int
    candidate_cycles: int
    speedup: float  # > 1: the candidate costs fewer estimated cycles
    baseline_instructions: int
    candidate_instructions: int
    verdict: str  # faster | slower | no_change
    isa: str = ""
    seconds: float = 0.0  # the candidate's simulation time
    functions: list[dict[str, Any]] = field(default_factory=list)  # the top changes, see function_diff

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SimComparison:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def usable(rec: Mapping[str, Any] | None) -> bool:
    return bool(rec and rec.get("ok") and rec.get("estimated_cycles"))


def sim_verdict(speedup: float, min_effect: float) -> str:
    band = math.log(1.0 + min_effect) if min_effect > 0 else 0.0
    x = math.log(speedup) if speedup > 0 else -math.inf
    if x >= band and x > 0:
        return "faster"
    if x <= -band and x < 0:
        return "slower"
    return "no_change"


def compare_simulated(base: Mapping[str, Any], cand: Mapping[str, Any], min_effect: float) -> SimComparison:
    bc, cc = int(base["estimated_cycles"]), int(cand["estimated_cycles"])
    speedup = bc / cc if cc > 0 else math.inf
    return SimComparison(
        baseline_cycles=bc,
        candidate_cycles=cc,
        speedup=speedup,
        baseline_instructions=int(base.get("instructions", 0)),
        candidate_instructions=int(cand.get("instructions", 0)),
        verdict=sim_verdict(speedup, min_effect),
        isa=str(cand.get("isa") or base.get("isa") or ""),
        seconds=float(cand.get("seconds") or 0.0),
        functions=function_diff(base, cand),
    )


def function_diff(
    base: Mapping[str, Any], cand: Mapping[str, Any], top: int = TOP_FUNCTIONS
) -> list[dict[str, Any]]:
    """The functions whose estimated cycles changed most (by absolute change), with the relative change.

    Each: {"name", "baseline", "candidate", "delta", "change" (delta / baseline; None for a new function),
    "share" (delta / the baseline's total: how much of the whole this function moved)}.
    """
    b = {f["name"]: int(f["cycles"]) for f in base.get("functions") or []}
    c = {f["name"]: int(f["cycles"]) for f in cand.get("functions") or []}
    total = max(1, int(base.get("estimated_cycles") or 1))
    rows = []
    for name in set(b) | set(c):
        bv, cv = b.get(name, 0), c.get(name, 0)
        delta = cv - bv
        if delta == 0:
            continue
        rows.append(
            {
                "name": name,
                "baseline": bv,
                "candidate": cv,
                "delta": delta,
                "change": (delta / bv) if bv else None,
                "share": delta / total,
            }
        )
    rows.sort(key=lambda r: (-abs(r["delta"]), r["name"]))
    return rows[:top]


def profile(rec: Mapping[str, Any] | None, top: int = TOP_FUNCTIONS) -> list[dict[str, Any]]:
    """Where the time goes: the costliest functions with their share of the estimated cycles."""
    if not usable(rec):
        return []
    total = int(rec["estimated_cycles"])
    return [
        {"name": f["name"], "cycles": int(f["cycles"]), "share": int(f["cycles"]) / total}
        for f in (rec.get("functions") or [])[:top]
    ]
