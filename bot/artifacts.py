"""Every artifact key of a run, in one place, and typed get/put over the Store.

An artifact is one JSON value per (run, key) in the store (docs/ARCHITECTURE.md, "Artifacts"). The stages, the
pipeline and the demo name them through the constants below instead of spelling "results:main",
"candidates_done" or f"refusals:{id}" themselves:

    arts = RunArtifacts(store, run_id)
    cands = arts.get(CANDIDATES, wave)          # [] when absent
    arts.put(DECISION, decision.to_dict(), wave)
    arts.results("profile")                     # the batch of experiment `profile`, or None

Per-wave artifacts keep the plain key in wave 1 and use `<key>@<n>` from wave 2 on (bot/waves.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from .store import Store

T = TypeVar("T")
JSON = dict[str, Any]


def wave_key(name: str, wave: int) -> str:
    """The artifact (or experiment) name of `name` in wave `wave`: wave 1 keeps the plain name."""
    return name if wave <= 1 else f"{name}@{wave}"


@dataclass(frozen=True)
class Artifact(Generic[T]):
    """One kind of artifact: its key, whether each wave has its own, and what `get` gives when it is
    absent."""

    name: str
    per_wave: bool = False
    empty: Callable[[], T] | None = None

    def key(self, wave: int = 1) -> str:
        return wave_key(self.name, wave) if self.per_wave else self.name


# written when the pipeline starts a run
PROJECT: Artifact[JSON | None] = Artifact("project")  # ProjectConfig.to_dict()
BASELINE: Artifact[JSON | None] = Artifact("baseline")  # {"branch", "sha"}
FAILURE: Artifact[JSON | None] = Artifact("failure")  # {"stage", "message", "log_tail"}
# research
PROFILE: Artifact[JSON | None] = Artifact("profile")  # the baseline's simulated profile
DOSSIER: Artifact[JSON | None] = Artifact("dossier", per_wave=True)  # wave n >= 2: the wave's plan
# candidates
CANDIDATES: Artifact[list[JSON]] = Artifact("candidates", per_wave=True, empty=list)
CANDIDATES_DONE: Artifact[bool | None] = Artifact("candidates_done", per_wave=True)
SKIPPED: Artifact[list[JSON]] = Artifact("skipped", per_wave=True, empty=list)
# benchmarks, decision, verification
RESULTS_MAIN: Artifact[JSON | None] = Artifact(
    "results:main", per_wave=True
)  # = results of experiment main@n
COSTS: Artifact[dict[str, float]] = Artifact("costs", empty=dict)  # {arch: usd}
DECISION: Artifact[JSON | None] = Artifact("decision", per_wave=True)  # Decision.to_dict()
STACK: Artifact[JSON | None] = Artifact("stack", per_wave=True)  # StackResult.to_dict()
VERIFICATION: Artifact[JSON | None] = Artifact("verification", per_wave=True)  # {"stack", "decision"}
CHOICE: Artifact[JSON | None] = Artifact("choice", per_wave=True)  # what the wave keeps
# the wave loop and publishing
LOOP: Artifact[JSON | None] = Artifact("loop")  # why the loop stopped
FINAL: Artifact[JSON | None] = Artifact("final")  # the running best vs the baseline
PUBLICATION: Artifact[JSON | None] = Artifact("publication")  # the PR, or why there is none

WAVE_REVIEW_PREFIX = "wave:"
RESULTS_PREFIX = "results:"
REFUSALS_PREFIX = "refusals:"
DEADLINE_PREFIX = "deadline:"
PLAN_PREFIX = "plan:"
ARCH_COVERAGE = (
    "arch_coverage"  # {arch: {"kind": measured|emulated|not_run, "reason"}}: what each arch row is
)


def wave_review_key(wave: int) -> str:
    """The review of wave `wave` (written once by the review stage)."""
    return f"{WAVE_REVIEW_PREFIX}{int(wave)}"


def results_key(experiment: str) -> str:
    """The results of one experiment (a batch): `{arch: result}`."""
    return f"{RESULTS_PREFIX}{experiment}"


def deadline_key(experiment: str) -> str:
    """The wall-clock deadline of one experiment's batch: `{"at": epoch s, "seconds", "source"}`."""
    return f"{DEADLINE_PREFIX}{experiment}"


def plan_key(experiment: str) -> str:
    """The fan-out plan of one experiment's batch (bot/experiments/shards.py `Plan.to_dict()`, plus
    `actual`: {shard key: {"seconds", "usd"}} once it ran)."""
    return f"{PLAN_PREFIX}{experiment}"


def refusals_key(hypothesis_id: Any) -> str:
    """What the coding agent's workspace refused while implementing one hypothesis."""
    return f"{REFUSALS_PREFIX}{hypothesis_id}"


class RunArtifacts:
    """Typed access to one run's artifacts."""

    def __init__(self, store: Store, run_id: int):
        self.store = store
        self.run_id = run_id

    def raw(self, key: str, default: Any = None) -> Any:
        """By key string (a getter for bot.waves' pure functions)."""
        return self.store.get_artifact(self.run_id, key, default)

    def get(self, artifact: Artifact[T], wave: int = 1) -> T:
        value = self.store.get_artifact(self.run_id, artifact.key(wave))
        if value is None and artifact.empty is not None:
            return artifact.empty()
        return value

    def put(self, artifact: Artifact[T], value: T, wave: int = 1) -> None:
        self.store.put_artifact(self.run_id, artifact.key(wave), value)

    def results(self, experiment: str) -> JSON | None:
        return self.store.get_artifact(self.run_id, results_key(experiment))

    def put_results(self, experiment: str, value: JSON) -> None:
        self.store.put_artifact(self.run_id, results_key(experiment), value)

    def review(self, wave: int) -> JSON | None:
        return self.store.get_artifact(self.run_id, wave_review_key(wave))

    def put_review(self, wave: int, record: JSON) -> None:
        self.store.put_artifact(self.run_id, wave_review_key(wave), record)

    def put_refusals(self, hypothesis_id: Any, refusals: list[JSON]) -> None:
        self.store.put_artifact(self.run_id, refusals_key(hypothesis_id), refusals)
