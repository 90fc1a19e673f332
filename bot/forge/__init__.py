"""GitHub access for the bot: the only package that knows GitHub.

`Forge` (protocol.py) is the interface the pipeline uses; `GitHubForge` (github.py) implements it (PyGithub).
errors.py: `ForgeError` and its kinds, translation from PyGithub, `redact`; models.py: the plain data types;
auth.py: token and GitHub App authentication (installation tokens, cached and refreshed); apps.py: the
App-manifest flow's code conversion and the App's own description (`AppInfo`).
Every public name is importable from `bot.forge`.
"""

from .apps import AppCredentials, AppInfo, AppInstallation, api_url, convert_manifest_code
from .auth import AppAuth, Credentials, TokenAuth
from .errors import ForgeError, NotFound, PermissionDenied, RateLimited, Unprocessable, redact
from .github import GitHubForge, forge_from_settings, make_retry
from .models import (
    CHECK_CONCLUSIONS,
    CHECK_STATUSES,
    DEFAULT_BASE_URL,
    PERMISSIONS,
    REACTIONS,
    WRITE_PERMISSIONS,
    Comment,
    CommitInfo,
    CompareResult,
    FileChange,
    Issue,
    IssueSummary,
    PullRequest,
    PullSummary,
    RetryPolicy,
    split_repo,
)
from .protocol import Forge

__all__ = [
    "CHECK_CONCLUSIONS",
    "CHECK_STATUSES",
    "DEFAULT_BASE_URL",
    "PERMISSIONS",
    "REACTIONS",
    "WRITE_PERMISSIONS",
    "AppAuth",
    "AppCredentials",
    "AppInfo",
    "AppInstallation",
    "Comment",
    "CommitInfo",
    "CompareResult",
    "Credentials",
    "FileChange",
    "Forge",
    "ForgeError",
    "GitHubForge",
    "Issue",
    "IssueSummary",
    "NotFound",
    "PermissionDenied",
    "PullRequest",
    "PullSummary",
    "RateLimited",
    "RetryPolicy",
    "TokenAuth",
    "Unprocessable",
    "api_url",
    "convert_manifest_code",
    "forge_from_settings",
    "make_retry",
    "redact",
    "split_repo",
]
