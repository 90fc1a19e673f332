"""Forks and related projects: commits ahead of upstream that touch hot code, checked against the baseline.

Network reads (forge compare, git fetch) are retried and cached; everything about a commit itself (diff stats,
patch-id, whether it applies) comes from real git in the local clone. A commit that applies cleanly to the
baseline is ported onto it (`git apply --3way` into a temporary index, `git commit-tree`), so the implement
stage gets a ready candidate commit without an LLM.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .. import pathglob
from ..forge.errors import RateLimited
from ..gitutil import GIT_ENV, GitError, run
from ..text import clean, one_line
from .cache import JsonCache, with_retries
from .model import SourceNote

if TYPE_CHECKING:
    from ..forge import Forge

PORT_REF_PREFIX = "refs/autoresearch/ports"
FORK_REF_PREFIX = "refs/autoresearch/forks"


@dataclass
class ForkOptions:
    max_commits_per_fork: int = 20  # most recent hot commits examined per fork
    attempts: int = 3
    retry_wait_s: float = 2.0
    fetch_timeout_s: float = 600.0


@dataclass
class ForkCommit:
    repo: str
    sha: str
    subject: str
    message: str
    author: str
    url: str | None
    files: list[str]
    hot_files: list[str]
    additions: int | None = None
    deletions: int | None = None
    patch_id: str | None = None
    applies: bool | None = None  # None: could not be checked (see apply_detail)
    apply_detail: str = ""
    port_sha: str | None = None  # the commit re-created on top of the baseline when it applies
    also_in: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def stat_text(self) -> str:
        if self.additions is None:
            return f"{len(self.files)} files"
        return f"{len(self.files)} files, +{self.additions}/-{self.deletions}"


# ---------------------------------------------------------------- git


def git(clone_dir: str, *args: str, timeout: float = 120.0, **kw: Any) -> subprocess.CompletedProcess[bytes]:
    """bot.gitutil.run in the clone (bytes out), with research's shorter default timeout."""
    return run(clone_dir, *args, timeout=timeout, **kw)


def has_commit(clone_dir: str, sha: str) -> bool:
    return git(clone_dir, "cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode == 0


def commit_stats(clone_dir: str, sha: str) -> tuple[int, int, list[str]]:
    """(+lines, -lines, files) of a commit against its first parent."""
    out = git(clone_dir, "show", "--format=", "--numstat", "--no-renames", sha).stdout.decode(
        "utf-8", "replace"
    )
    adds = dels = 0
    files = []
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) != 3:
            continue
        a, d, name = parts
        adds += int(a) if a.isdigit() else 0
        dels += int(d) if d.isdigit() else 0
        files.append(name)
    return adds, dels, files


def patch_id(clone_dir: str, sha: str) -> str | None:
    """`git patch-id --stable`: equal for the same change cherry-picked into different forks."""
    diff = git(clone_dir, "show", "--format=", "-p", sha).stdout
    out = git(clone_dir, "patch-id", "--stable", input=diff).stdout.decode().split()
    return out[0] if out else None


def is_merge(clone_dir: str, sha: str) -> bool:
    parents = git(clone_dir, "rev-list", "--parents", "-n1", sha).stdout.decode().split()
    return len(parents) > 2


def port_commit(clone_dir: str, baseline: str, sha: str) -> tuple[bool, str, str | None]:
    """Apply `sha`'s change onto `baseline` (3-way, in a temporary index: no worktree touched).

    Returns (applies, detail, port_sha). The port keeps the original author and message."""
    diff = git(clone_dir, "diff", "--binary", "--full-index", f"{sha}^", sha).stdout
    if not diff.strip():
        return False, "empty diff", None
    with tempfile.TemporaryDirectory(prefix="autoresearch-port-") as tmp:
        env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
        git(clone_dir, "read-tree", baseline, env=env)
        proc = git(clone_dir, "apply", "--cached", "--3way", "-", input=diff, env=env, check=False)
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace")
            conflicted = sorted(
                set(
                    re.findall(r"Applied patch to '([^']+)' with conflicts", err)
                    + re.findall(r"patch failed: ([^:\s]+):", err)
                )
            )
            detail = "conflicts with the baseline" + (
                f" in {', '.join(conflicted[:5])}" if conflicted else ""
            )
            return False, detail, None
        tree = git(clone_dir, "write-tree", env=env).stdout.decode().strip()
    fmt = git(clone_dir, "show", "-s", "--format=%an%x00%ae%x00%aI%x00%B", sha).stdout.decode(
        "utf-8", "replace"
    )
    name, email, date, message = (fmt.split("\x00", 3) + ["", "", "", ""])[:4]
    commit_env = {
        **GIT_ENV,
        "GIT_AUTHOR_NAME": name or "unknown",
        "GIT_AUTHOR_EMAIL": email or "unknown@invalid",
        "GIT_AUTHOR_DATE": date,
    }
    body = f"{message.rstrip()}\n\n(cherry picked from commit {sha})\n"
    port = (
        git(clone_dir, "commit-tree", tree, "-p", baseline, input=body.encode(), env=commit_env)
        .stdout.decode()
        .strip()
    )
    git(clone_dir, "update-ref", f"{PORT_REF_PREFIX}/{sha}", port)
    return True, "applies cleanly to the baseline", port


def fetch_branch(clone_dir: str, url: str, repo: str, branch: str, options: ForkOptions) -> None:
    ref = f"{FORK_REF_PREFIX}/{repo}/{branch}"
    with_retries(
        lambda: git(
            clone_dir,
            "fetch",
            "--no-tags",
            "--quiet",
            url,
            f"+refs/heads/{branch}:{ref}",
            timeout=options.fetch_timeout_s,
            isolated=False,
        ),
        options.attempts,
        options.retry_wait_s,
    )


# ---------------------------------------------------------------- forge side


def _field(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _compare(forge: Forge, upstream: str, base_branch: str, head: str) -> Any:
    """Compare without per-commit file lists when the forge allows it (one API request per fork)."""
    try:
        return forge.compare(upstream, base_branch, head, commit_files=False)
    except TypeError:
        return forge.compare(upstream, base_branch, head)


def compare_ahead(
    forge: Forge,
    upstream: str,
    base_branch: str,
    upstream_sha: str | None,
    fork: str,
    cache: JsonCache,
    options: ForkOptions,
) -> tuple[str, dict[str, Any]]:
    """(fork branch, {"commits": [...], "files": [...]}) for `fork` vs upstream's base branch.

    Cached under both branch heads, so a rerun with nothing new costs two cheap lookups per fork."""
    call = lambda fn, *a: with_retries(lambda: fn(*a), options.attempts, options.retry_wait_s)  # noqa: E731
    branch = call(forge.default_branch, fork)
    head_sha = call(forge.branch_sha, fork, branch)
    key = f"{upstream}|{base_branch}|{upstream_sha}|{fork}|{branch}|{head_sha}"
    cached = cache.get("compare", key) if upstream_sha and head_sha else None
    if cached is not None:
        return branch, cached
    owner = fork.split("/", 1)[0]
    cmp = call(_compare, forge, upstream, base_branch, f"{owner}:{branch}")
    result = {
        "commits": [
            {
                "sha": _field(c, "sha"),
                "message": _field(c, "message") or "",
                "author": _field(c, "author") or "",
                "files": _field(c, "files"),
            }
            for c in (_field(cmp, "commits") or [])
        ],
        "files": [_field(f, "filename") for f in (_field(cmp, "files") or [])],
    }
    if upstream_sha and head_sha:
        cache.put("compare", key, result)
    return branch, result


def _web_url(clone_url: str, repo: str, sha: str) -> str | None:
    m = re.match(r"(https?://[^/]+(?:/[^/]+)*?)/" + re.escape(repo) + r"(?:\.git)?/?$", clone_url)
    return f"{m.group(1)}/{repo}/commit/{sha}" if m else None


def examine_fork(
    forge: Forge,
    fork: str,
    branch: str,
    ahead: dict[str, Any],
    hot_globs: list[str],
    clone_dir: str,
    baseline: str,
    options: ForkOptions,
) -> tuple[list[ForkCommit], str]:
    """Hot commits of one fork with local stats and apply check; returns (commits, problem or '').

    The fork is fetched only when its overall diff touches hot paths; per-commit files then come from git."""
    commits = ahead["commits"]
    known = list(ahead.get("files") or []) + [f for c in commits for f in c["files"] or []]
    unknown = not ahead.get("files") and any(c["files"] is None for c in commits)
    if not commits or not (unknown or any(pathglob.match(f, hot_globs) for f in known)):
        return [], ""
    url = forge.clone_url(fork)
    problem = ""
    if not all(has_commit(clone_dir, c["sha"]) for c in commits):
        try:
            fetch_branch(clone_dir, url, fork, branch, options)
        except GitError as exc:  # timeouts too
            problem = f"fetch failed: {one_line(str(exc), 200)}"
    candidates = []
    for c in commits:
        local = has_commit(clone_dir, c["sha"])
        files = commit_stats(clone_dir, c["sha"])[2] if local else list(c["files"] or [])
        if any(pathglob.match(f, hot_globs) for f in files) or (not local and c["files"] is None):
            candidates.append((c, local))
    out = []
    for c, local in candidates[-options.max_commits_per_fork :]:
        msg = clean(c["message"], 2000)
        files = list(c["files"] or [])
        fc = ForkCommit(
            repo=fork,
            sha=c["sha"],
            subject=one_line(msg.split("\n", 1)[0], 120),
            message=msg,
            author=one_line(c["author"], 80),
            url=_web_url(url, fork, c["sha"]),
            files=files,
            hot_files=[f for f in files if pathglob.match(f, hot_globs)],
        )
        if not local:
            fc.apply_detail = problem or "commit not available locally"
        elif is_merge(clone_dir, c["sha"]):
            fc.applies, fc.apply_detail = False, "merge commit (not ported)"
        else:
            fc.additions, fc.deletions, fc.files = commit_stats(clone_dir, c["sha"])
            fc.hot_files = [f for f in fc.files if pathglob.match(f, hot_globs)]
            fc.patch_id = patch_id(clone_dir, c["sha"])
            try:
                fc.applies, fc.apply_detail, fc.port_sha = port_commit(clone_dir, baseline, c["sha"])
            except GitError as exc:
                fc.apply_detail = f"apply check failed: {one_line(str(exc), 200)}"
        out.append(fc)
    return out, problem


def dedupe(commits: list[ForkCommit]) -> list[ForkCommit]:
    """Keep one commit per patch-id (first seen); the others' repos go to `also_in`."""
    by_key: dict[str, ForkCommit] = {}
    for c in commits:
        key = c.patch_id or c.sha
        if key in by_key:
            keep = by_key[key]
            if c.repo != keep.repo and c.repo not in keep.also_in:
                keep.also_in.append(c.repo)
        else:
            by_key[key] = c
    return list(by_key.values())


def scan_forks(
    forge: Forge,
    repo: str,
    project: dict[str, Any],
    clone_dir: str,
    baseline: str,
    cache: JsonCache,
    options: ForkOptions | None = None,
) -> tuple[list[ForkCommit], list[SourceNote]]:
    """Commits ahead of upstream in forks (bounded by research.max_forks) and research.related projects."""
    options = options or ForkOptions()
    research = project.get("research", {})
    hot_globs = list(project.get("paths", {}).get("hot", ["**"]))
    max_forks = int(research.get("max_forks", 30))
    related = [r for r in research.get("related", []) if r != repo]
    notes: list[SourceNote] = []
    try:
        base_branch = with_retries(lambda: forge.default_branch(repo), options.attempts, options.retry_wait_s)
        upstream_sha = with_retries(
            lambda: forge.branch_sha(repo, base_branch), options.attempts, options.retry_wait_s
        )
    except RateLimited:  # the run is deferred until the reset, not short of a source
        raise
    except Exception as exc:
        return [], [
            SourceNote(
                "forks",
                "failed",
                f"upstream {repo} unreadable: {type(exc).__name__}: {one_line(str(exc), 200)}",
            )
        ]
    forks: list[str] = []
    if max_forks > 0:
        try:
            forks = list(
                with_retries(
                    lambda: forge.list_forks(repo, max_forks), options.attempts, options.retry_wait_s
                )
            )[:max_forks]
        except RateLimited:  # the run is deferred until the reset, not short of a source
            raise
        except Exception as exc:
            notes.append(
                SourceNote(
                    "forks",
                    "failed",
                    f"listing forks failed: {type(exc).__name__}: {one_line(str(exc), 200)}",
                )
            )
    targets = [(f, "forks") for f in forks] + [(r, "related") for r in related if r not in forks]
    found: list[ForkCommit] = []
    problems: dict[str, list[str]] = {"forks": [], "related": []}
    ahead_total = {"forks": 0, "related": 0}
    for target, kind in targets:
        try:
            branch, ahead = compare_ahead(forge, repo, base_branch, upstream_sha, target, cache, options)
            ahead_total[kind] += len(ahead["commits"])
            got, problem = examine_fork(forge, target, branch, ahead, hot_globs, clone_dir, baseline, options)
        except RateLimited:  # the run is deferred until the reset, not short of a source
            raise
        except Exception as exc:  # one unreadable fork must not hide the others
            problems[kind].append(f"{target}: {type(exc).__name__}: {one_line(str(exc), 160)}")
            continue
        if problem:
            problems[kind].append(f"{target}: {problem}")
        found.extend(got)
    unique = dedupe(found)
    for kind, names in (("forks", forks), ("related", related)):
        if kind == "forks" and max_forks == 0:
            notes.append(SourceNote("forks", "skipped", "research.max_forks is 0"))
            continue
        if kind == "related" and not related:
            continue
        mine = [c for c in unique if (c.repo in names)]
        detail = (
            f"compared {len(names)} {'forks' if kind == 'forks' else 'related projects'} with "
            f"{repo}@{base_branch}: "
            f"{ahead_total[kind]} commits ahead, {len(mine)} distinct touching hot paths, "
            f"{sum(1 for c in mine if c.applies)} apply cleanly to the baseline"
        )
        if problems[kind]:
            detail += "; problems: " + "; ".join(problems[kind][:10])
        status = "failed" if names and len(problems[kind]) == len(names) else "ok"
        notes.append(SourceNote(kind, status, detail))
    return unique, notes
