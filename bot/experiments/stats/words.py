"""The decision in words: the notes on comparisons, rows and runs that readers see, and `Hint`, what to do
next as data (kind + parameters), which bot/report.py renders with the configured command prefix.

No statistics here (numbers.py) and no verdicts (policy.py): each function gets the figures it phrases.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

QUIET = "quiet the machine rather than adding rounds"


@dataclass(frozen=True)
class Hint:
    """What a reader can do about an undecided result: ``rerun`` (with ``rounds``) or ``quiet`` (the
    machine)."""

    kind: str
    rounds: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind} if self.rounds is None else {"kind": self.kind, "rounds": self.rounds}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Hint:
        return cls(str(d["kind"]), None if d.get("rounds") is None else int(d["rounds"]))


@dataclass(frozen=True)
class Note:
    """One note of a decision; a note without a hint is stored as its plain text."""

    text: str
    hint: Hint | None = None

    def to_dict(self) -> str | dict[str, Any]:
        return self.text if self.hint is None else {"text": self.text, "hint": self.hint.to_dict()}

    @classmethod
    def from_dict(cls, d: str | Mapping[str, Any]) -> Note:
        if isinstance(d, str):
            return cls(d)
        return cls(str(d.get("text") or ""), Hint.from_dict(d["hint"]) if d.get("hint") else None)


# --------------------------------------------------------------------------- one comparison


def advice(factor: int) -> str:
    """What to do about an interval `factor` x too wide (CI width ~ 1/sqrt(rounds))."""
    return f"rerun with ~{factor}x the rounds" if factor <= 10 else QUIET


def outliers(speedup: float, raw_speedup: float) -> str:
    return (
        f"the screened samples say {speedup:.3f}x but the medians of all samples say "
        f"{raw_speedup:.3f}x: half or more of one variant's runs are outliers"
    )


def too_noisy(
    who: str, spread: float, max_noise_cv: float, need: int, effect: float, have: int, factor: int
) -> str:
    return (
        f"{who} cv {spread:.1%} > {max_noise_cv:.0%}: about {need} samples per "
        f"variant needed to resolve a {effect:.1%} effect (have {have}); {advice(factor)}"
    )


def ci_undecided(ci_low: float, ci_high: float, min_effect: float, factor: int) -> str:
    return (
        f"CI {ci_low:.3f}-{ci_high:.3f} cannot tell whether the change reaches "
        f"{min_effect:.0%}; {advice(factor)}"
    )


def paired_undecided(ci_low: float, ci_high: float, pairs: int | None, min_effect: float, need: int) -> str:
    lo = f"{ci_low:.3f}" if math.isfinite(ci_low) else "0"
    hi = f"{ci_high:.3f}" if math.isfinite(ci_high) else "inf"
    return (
        f"CI {lo}-{hi} after {pairs} pairs cannot tell whether the change reaches "
        f"{min_effect:.0%}; about {need} pairs would"
    )


# --------------------------------------------------------------------------- the two tiers of a target row


def wall_figure(speedup: float, ci_low: float, ci_high: float) -> str:
    return f"wall time {speedup:.3f}x [{ci_low:.3f}, {ci_high:.3f}]"


NO_WALL_FIGURE = "no wall figure"


def simulation_failed(why: str) -> str:
    return f"simulation {why}"


def simulation_unavailable(why: str) -> str:
    return f"simulated tier {why}; wall time decides here"


def tiers_disagree(sim_speedup: float, wall: str) -> str:
    return (
        f"simulated {sim_speedup:.3f}x but {wall}: an effect the simulator cannot see (memory "
        f"bandwidth, SIMD width, threads) or the hardware does not reward; not a winner"
    )


CONFIRMED = "confirmed on hardware"


def wall_agrees(wall: str) -> str:
    return f"{wall}: agrees, not significant at this level"


def wall_not_slower(wall: str) -> str:
    return f"{wall}: not significantly slower"


def sim_not_moved(wall: str, wall_verdict: str, min_effect: float) -> str:
    return f"{wall} ({wall_verdict}), but the simulated cost moved less than {min_effect:.0%}: not called"


def hardware_only(wall: str, blind: str, threads: int) -> str:
    return (
        f"the simulated cost moved less than the minimum effect, but the change acts where "
        f"the simulator is blind ({blind}); {wall} at {threads or 'the configured'} threads decided"
    )


def wall_equivalent(wall: str, blind: str, threads: int) -> str:
    return (
        f"the simulator is blind to this change ({blind}); {wall} at {threads or 'the configured'} threads "
        f"lies within the minimum effect: no change on this machine"
    )


def not_measurable(wall: str, blind: str, threads: int, why: str) -> str:
    because = f" ({why})" if why else ""
    return (
        f"the change acts where the simulator is blind ({blind}), and {wall} at "
        f"{threads or 'the configured'} threads cannot decide{because}; measure it on a dedicated machine"
    )


# --------------------------------------------------------------------------- notes on the whole run


NEVER_RAN = "its changed functions never ran in the native build"


def never_ran_natively(arch: str, candidate: str, functions: list[str]) -> Note:
    return Note(
        f"{arch}: {candidate} wins, but none of the functions it changes ({', '.join(functions)}) ran in a "
        f"native run of the benchmark (breakpoint counts, sky/exercised.py): the native build takes another "
        f"path (another ISA's kernel, another buffer type); what was measured is not the change"
    )


def measure_on_vm(arch: str, candidate: str, rounds: int | None) -> Note:
    """A not-measurable row: the command that measures it where wall time can decide (a dedicated VM)."""
    return Note(
        f"{arch}: {candidate} is not measurable on this machine (its effect lies where the simulator is "
        f"blind); measure it on a dedicated VM: set `executor: skypilot` in the bot's config and rerun",
        Hint("vm", rounds),
    )


def no_result(arch: str) -> Note:
    return Note(f"{arch}: no result (VM lost or never started); no candidate can win without it")


def partial_result(arch: str) -> Note:
    return Note(
        f"{arch}: partial result (the VM stopped before the end); unfinished variants count as missing"
    )


def baseline_not_ok(arch: str, status: str) -> Note:
    return Note(f"{arch}: baseline {status}; nothing compared there")


def screened(arch: str, flagged_n: int, total: int, sigmas: float, set_aside: int) -> Note:
    return Note(
        f"{arch}: {flagged_n} of {total} samples were worse than their variant's median by > "
        f"{sigmas:g} robust sigmas (interference); comparisons set aside "
        f"up to {set_aside}, the same share of each pair's worst runs"
    )


def simulated_tier(arch: str, info: Mapping[str, Any], seconds: float) -> Note:
    reg = info.get("regime") or {}
    regime = (
        f"; model {reg['model_bytes'] / 2**20:.1f} MiB vs simulated LL {reg['ll_bytes'] / 2**20:.0f} MiB: "
        + ("DRAM-resident" if reg.get("dram_resident") else "cache-resident, no DRAM streaming simulated")
        if reg.get("model_bytes") and reg.get("ll_bytes")
        else ""
    )
    return Note(
        f"{arch}: simulated tier: {info.get('tool', 'cachegrind')} ({info.get('isa', '')}; "
        f"{info.get('cache', '')}), {seconds:.1f} s per variant{regime}"
    )


def simulated_tier_unavailable(arch: str, reason: str) -> Note:
    return Note(f"{arch}: simulated tier unavailable ({reason}); wall time decides there")


def undecided(arch: str, metric: str, candidate: str, note: str, hint: Hint | None) -> Note:
    """A comparison's own note (why it is undecided) on the run, with what to do next."""
    return Note(f"{arch}/{metric}: {candidate}'s {note}", hint)


def too_noisy_for_rounds(arch: str, metric: str, spread: float, want: int) -> Note:
    return Note(
        f"{arch}/{metric}: noisy (cv {spread:.1%}): about {want} rounds would be needed, "
        f"so quiet the machine instead (fewer benchmark threads than cores, no other load, "
        f"a dedicated instance)"
    )


def more_rounds(
    arch: str, metric: str, spread: float, want: int, per_round: int, rounds: int, hint: Hint
) -> Note:
    return Note(
        f"{arch}/{metric}: noisy (cv {spread:.1%}); rerun with more rounds: about {want} rounds x "
        f"{per_round} repetitions, now {rounds}",
        hint,
    )
