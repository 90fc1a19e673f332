"""The plain data the forge returns and accepts (comments, issues, pulls, comparisons), its vocabularies."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_BASE_URL = "https://api.github.com"
PERMISSIONS = ("admin", "maintain", "write", "triage", "read", "none")
WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})
REACTIONS = frozenset({"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"})
CHECK_STATUSES = frozenset({"queued", "in_progress", "completed", "waiting", "requested", "pending"})
CHECK_CONCLUSIONS = frozenset(
    {"action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out"}
)


def split_repo(repo: str) -> tuple[str, str]:
    """'owner/name' -> ('owner', 'name'); ValueError otherwise."""
    parts = repo.split("/")
    if len(parts) != 2 or not all(parts) or any(c.isspace() for c in repo):
        raise ValueError(f"repository must be 'owner/name', got {repo!r}")
    return parts[0], parts[1]


@dataclass(frozen=True)
class Comment:
    id: int
    body: str
    user: str
    html_url: str


@dataclass(frozen=True)
class Issue:
    number: int
    title: str
    body: str
    labels: list[str]
    state: str
    user: str
    html_url: str
    is_pull: bool = False


@dataclass(frozen=True)
class IssueSummary:
    number: int
    title: str
    body: str
    html_url: str
    labels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PullSummary:
    number: int
    title: str
    body: str
    html_url: str
    head_ref: str = ""
    head_repo: str = ""
    files: list[str] | None = None


@dataclass(frozen=True)
class PullRequest:
    number: int
    html_url: str
    head_ref: str
    head_sha: str
    base_ref: str
    draft: bool
    state: str
    title: str = ""
    body: str = ""
    head_repo: str = ""


@dataclass(frozen=True)
class FileChange:
    filename: str
    status: str
    additions: int
    deletions: int
    patch: str | None = None


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    message: str
    author: str
    files: list[str] | None = None


@dataclass(frozen=True)
class CompareResult:
    ahead_by: int
    behind_by: int
    commits: list[CommitInfo]
    files: list[FileChange]
    status: str = ""
    merge_base_sha: str = ""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry: urllib3/GithubRetry for HTTP statuses, tenacity for connection errors.

    `max_wait_s` caps any single wait (Retry-After, X-RateLimit-Reset, secondary limit); a longer
    required wait raises `RateLimited` instead of sleeping.
    """

    total: int = 5
    backoff_factor: float = 0.5
    backoff_max_s: float = 10.0
    max_wait_s: float = 60.0
    secondary_rate_wait_s: float = 60.0
    connection_attempts: int = 3
