"""The run model in one place: phases (run states) and verdicts, the one phase table, shared limits, the
pipeline's exceptions.

`Phase` and `Verdict` are `StrEnum`s: a member *is* its string (`Phase.DONE == "done"`, same hash, JSON and
SQLite store the plain string), so what the store, the artifacts and the golden files hold is unchanged.

This module imports nothing from the bot: every other module may import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any


class Phase(StrEnum):
    """A run's `state`: the stage in progress, or how the run ended."""

    QUEUED = "queued"
    RESEARCHING = "researching"
    IMPLEMENTING = "implementing"
    BENCHMARKING = "benchmarking"
    DECIDING = "deciding"
    VERIFYING = "verifying"
    REVIEWING = "reviewing"
    PUBLISHING = "publishing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class PhaseInfo:
    title: str | None  # in plain words, for messages ("an internal error during Research")
    checklist: str | None  # the checklist item of the status comment this phase ticks (see CHECKLIST)
    stage: str | None  # the stage function (its name in bot.stages); None: queued and the final states


# THE phase table. Order matters: it is the order of the status comment's checklist and of a full run.
PHASES: dict[Phase, PhaseInfo] = {
    Phase.QUEUED: PhaseInfo("Queued", None, None),
    Phase.RESEARCHING: PhaseInfo("Research", "research", "research"),
    Phase.IMPLEMENTING: PhaseInfo("Candidates", "implement", "implement"),
    Phase.BENCHMARKING: PhaseInfo("Benchmarks", "benchmark", "benchmark"),
    Phase.DECIDING: PhaseInfo("Decision", "decide", "decide"),
    Phase.VERIFYING: PhaseInfo("Verification", "verify", "verify"),
    Phase.REVIEWING: PhaseInfo("Wave review", "verify", "review"),  # the review ticks no item of its own
    Phase.PUBLISHING: PhaseInfo("Publishing", "publish", "publish"),
    Phase.DONE: PhaseInfo(None, None, None),
    Phase.FAILED: PhaseInfo(None, None, None),
    Phase.CANCELLED: PhaseInfo(None, None, None),
}

# the status comment's checklist: (item, label), in order
CHECKLIST: tuple[tuple[str, str], ...] = (
    ("research", "Research: papers, forks, other backends"),
    ("implement", "Candidates"),
    ("benchmark", "Benchmark (A/B, interleaved)"),
    ("decide", "Statistics and decision"),
    ("verify", "Stack and re-measure winners"),
    ("publish", "Draft pull request"),
)

FINAL_PHASES: tuple[Phase, ...] = (Phase.DONE, Phase.FAILED, Phase.CANCELLED)
ACTIVE_PHASES: tuple[Phase, ...] = tuple(p for p in PHASES if p not in FINAL_PHASES)

# stage sequences per run kind. A stage may return an earlier phase to go back to: "reviewing" returns
# "researching" to start the next wave (bot/stages.py).
SEQUENCES: dict[str, tuple[Phase, ...]] = {
    "issue": (
        Phase.RESEARCHING,
        Phase.IMPLEMENTING,
        Phase.BENCHMARKING,
        Phase.DECIDING,
        Phase.VERIFYING,
        Phase.REVIEWING,
        Phase.PUBLISHING,
    ),
    "bench": (Phase.IMPLEMENTING, Phase.BENCHMARKING, Phase.DECIDING, Phase.PUBLISHING),
    "rebench": (Phase.IMPLEMENTING, Phase.BENCHMARKING, Phase.DECIDING, Phase.PUBLISHING),
}


def title(phase: str) -> str:
    """A phase in plain words; an unknown state as it is."""
    info = PHASES.get(phase)  # type: ignore[call-overload]  (a plain str finds its member: same hash)
    return (info.title if info else None) or str(phase)


def checklist_item(phase: str | None) -> str | None:
    """The checklist item a phase ticks; a string that is no phase is taken to be an item already."""
    if phase in PHASES:
        return PHASES[phase].checklist  # type: ignore[index]
    return phase


class Verdict(StrEnum):
    """One row's verdict (bot.experiments.stats), in the order the benchmark table sorts them."""

    FASTER = "faster"
    NO_CHANGE = "no_change"
    NOISY = "noisy"
    NOT_MEASURABLE = (
        "not_measurable"  # the effect lies where the simulator is blind and wall time cannot decide
    )
    DISAGREE = "disagree"
    SLOWER = "slower"
    NOT_TIMED = "not_timed"  # correct under emulation (another arch's build under qemu-user), not measured
    BROKEN = "broken"
    BUILD_FAILED = "build_failed"
    BENCH_FAILED = "bench_failed"
    BASELINE_FAILED = "baseline_failed"
    MISSING = "missing"


@dataclass(frozen=True)
class VerdictInfo:
    label: str
    icon: str
    failed: bool  # the candidate (or the baseline) did not produce a measurement to judge


VERDICTS: dict[Verdict, VerdictInfo] = {
    Verdict.FASTER: VerdictInfo("faster", "🟢", False),
    Verdict.NO_CHANGE: VerdictInfo("no change", "⚪", False),
    Verdict.NOISY: VerdictInfo("noisy", "🟡", False),
    Verdict.NOT_MEASURABLE: VerdictInfo("not measurable here", "🔘", False),
    Verdict.DISAGREE: VerdictInfo("tiers disagree", "⚠️", False),
    Verdict.SLOWER: VerdictInfo("slower", "🔴", False),
    Verdict.NOT_TIMED: VerdictInfo("correct under emulation, not timed", "🔵", False),
    Verdict.BROKEN: VerdictInfo("broken", "❌", True),
    Verdict.BUILD_FAILED: VerdictInfo("build failed", "❌", True),
    Verdict.BENCH_FAILED: VerdictInfo("bench failed", "❌", True),
    Verdict.BASELINE_FAILED: VerdictInfo("baseline failed", "❌", True),
    Verdict.MISSING: VerdictInfo("missing", "❔", True),
}
FAILED_VERDICTS: frozenset[Verdict] = frozenset(v for v, info in VERDICTS.items() if info.failed)


class Basis(StrEnum):
    """What decided a target row's verdict, and so what it could not see (bot.experiments.stats.policy)."""

    SIMULATED = "simulated"  # the simulated cost alone (exact; blind to threads, bandwidth, the ISA not run)
    CONFIRMED = "confirmed"  # simulated, and wall time agrees significantly on this machine
    HARDWARE_ONLY = (
        "hardware_only"  # the simulator saw no change; wall time at the configured threads decided
    )
    WALL = "wall"  # no simulated tier here (decision.primary: wall, or valgrind unavailable)
    NOT_MEASURABLE = "not_measurable"  # the simulator is blind to the effect and wall time could not decide


BASIS_LABEL: dict[Basis, str] = {
    Basis.SIMULATED: "simulated (exact)",
    Basis.CONFIRMED: "confirmed on hardware",
    Basis.HARDWARE_ONLY: "hardware only",
    Basis.WALL: "wall time",
    Basis.NOT_MEASURABLE: "not measurable here",
}


class _Stored:
    """A record stored as a JSON object in an artifact. `from_dict(d).to_dict() == d`, key order included:
    `keys` remembers the stored keys and `extra` the values of keys the class does not name. A record made in
    code is stored in the shape `_shape()` gives (the keys its kind has always been stored with)."""

    extra: dict[str, Any]
    keys: tuple[str, ...]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        named = {f.name for f in fields(cls)} - {"extra", "keys"}  # type: ignore[arg-type]
        return cls(
            **{k: v for k, v in data.items() if k in named},
            extra={k: v for k, v in data.items() if k not in named},
            keys=tuple(data),
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: self.extra[k] if k in self.extra else getattr(self, k) for k in self.keys or self._shape()}

    def _shape(self) -> tuple[str, ...]:
        raise NotImplementedError


# the keys a candidate of each source is stored with, in order (see Candidate)
_USER_KEYS = ("name", "branch", "sha", "source", "title", "hypothesis", "citations")
CANDIDATE_SHAPES: dict[str, tuple[str, ...]] = {
    "user": _USER_KEYS,  # `bench <branch>`, `rebench` (the PR's head)
    "stack": ("name", "branch", "sha", "source", "title"),  # the stacked winners, as the PR body lists them
    "fork": _USER_KEYS + ("fork", "wave", "base", "hot_function", "hot_share", "amdahl_max"),
    "agent": _USER_KEYS + ("fork", "wave", "base", "hot_function", "hot_share", "amdahl_max"),
}


@dataclass
class Candidate(_Stored):
    """One variant a run measures: a commit on a branch; an entry of the `candidates` artifact."""

    name: str
    sha: str
    branch: str | None = None
    source: str = "user"  # fork | agent | user | stack
    title: str | None = None
    hypothesis: str | None = None  # the dossier hypothesis' id (wave n >= 2: `w<n>-...`)
    citations: list[Any] = field(default_factory=list)
    fork: dict[str, Any] | None = None  # {"repo", "sha", ...} of a fork commit
    wave: int | None = None
    base: str | None = None  # the commit it was built on and is measured against
    hot_function: str | None = None
    hot_share: float | None = None
    amdahl_max: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    keys: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def _shape(self) -> tuple[str, ...]:
        return CANDIDATE_SHAPES.get(self.source, CANDIDATE_SHAPES["agent"])


@dataclass
class Baseline(_Stored):
    """The `baseline` artifact: the default branch and its commit when the run started."""

    branch: str
    sha: str
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    keys: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def _shape(self) -> tuple[str, ...]:
        return ("branch", "sha")


PUBLICATION_SHAPES: dict[str, tuple[str, ...]] = {
    "none": ("kind", "reason", "stopped"),
    "rebench": ("kind", "pr_number", "base_sha", "head_sha"),
    "pull": ("kind", "pr_number", "pr_url", "head_branch", "head_sha", "base_sha", "reason", "waves"),
}


@dataclass
class Publication(_Stored):
    """The `publication` artifact: the draft pull request (kind single | stack), the rebenched PR
    (rebench), or why there is none (none)."""

    kind: str
    reason: str | None = None
    stopped: str | None = None  # kind none: why the wave loop stopped
    pr_number: int | None = None
    pr_url: str | None = None
    head_branch: str | None = None
    head_sha: str | None = None
    base_sha: str | None = None  # the baseline measured against (a later approval checks it moved)
    waves: list[int] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    keys: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def _shape(self) -> tuple[str, ...]:
        return PUBLICATION_SHAPES.get(self.kind, PUBLICATION_SHAPES["pull"])


# shared limits
MAX_ROUNDS = 100  # the most rounds `rerun rounds=N` accepts, and so the most a statistics hint says


class StageFailed(Exception):
    """A stage could not do its job: `message` in plain words for maintainers, `log_tail` as evidence."""

    def __init__(self, message: str, log_tail: str = ""):
        super().__init__(message)
        self.message = message
        self.log_tail = log_tail


class Cancelled(Exception):
    """A stop was requested: the run ends as `cancelled`."""
