"""Plain data types shared by the research sources and the dossier."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

NoteStatus = Literal["ok", "skipped", "failed"]
HypothesisKind = Literal["llm", "fork_commit", "backend_gap"]
SOURCE_KINDS = ("arxiv", "fork_commit", "backend_gap", "pull", "issue", "profile", "measurement")
RISKS = ("low", "medium", "high")


@dataclass
class SourceNote:
    """What happened when one source was consulted (shown in the dossier, never hidden)."""

    source: str
    status: NoteStatus
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Source:
    """One thing the dossier cites: a paper, a fork commit, a backend gap, an upstream PR/issue."""

    id: str  # stable: "arxiv:2401.01234", "fork:owner/repo@abc1234", "backend:RMS_NORM+MUL"
    kind: str  # arxiv | fork_commit | backend_gap | pull | issue
    title: str
    url: str | None
    summary: str  # what it is, short, already cleaned
    suggests: str  # what it suggests for this goal
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Hypothesis:
    """A testable idea for the goal; becomes a candidate branch in the implement stage."""

    id: str
    title: str
    rationale: str
    target_files: list[str]
    expected_effect: dict[str, str]
    risk: str
    citations: list[str]
    kind: str = "llm"
    fork: dict[str, str] | None = None  # {"repo": "owner/name", "sha": "<40 hex>"} for kind fork_commit
    in_flight: list[str] = field(default_factory=list)
    score: float = 0.0
    # profile-guided (bot/research/profile.py); None without a simulated profile
    hot_function: str | None = None  # the function it targets (largest share it can move)
    hot_share: float | None = None  # share of the baseline's estimated cycles it can move at most
    amdahl_max: float | None = None  # 1 / (1 - hot_share): the most the whole benchmark can gain
    roofline_max: float | None = None  # compute-only and decode memory-bound: 1 / fraction of the bandwidth
    hot_functions: list[dict[str, Any]] = field(default_factory=list)  # [{"name", "share"}] it can move
    rank_note: str = ""  # why it ranks where it does (e.g. "ranked down: ... 0.2% ...")
    wave: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
