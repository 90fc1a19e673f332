"""Publication pieces: stack verified winners with real git, choose what to publish, name PR branches.

`stack_winners` cherry-picks candidate branches onto the baseline in a temporary worktree (the caller's
checkout is never touched); a candidate that conflicts with what is already stacked is dropped with the
reason. `choose_publication` publishes the stack only when the stack itself was measured correct and
faster; otherwise it offers the best single winner. No forge calls here: the pipeline pushes and opens PRs.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import pathglob
from .gitutil import GIT_ENV, GitError, run
from .model import FAILED_VERDICTS
from .text import slugify  # stages names candidates with it too

TRAILER = "Autoresearch-Stack"
FAILED = FAILED_VERDICTS


class PublishError(GitError):
    """A git step that should not fail did (bad sha, existing branch, broken repository)."""


@dataclass(frozen=True)
class StackResult:
    """Outcome of stacking: the tip (None when nothing applied), what went in, what was dropped and why."""

    sha: str | None
    applied: list[str]
    dropped: list[dict[str, str]] = field(default_factory=list)
    branch: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- git helpers


def _committer() -> dict[str, str]:
    """The bot as committer (its identity now: gitutil.set_identity); the authors of picked commits stay."""
    return {k: v for k, v in GIT_ENV.items() if k.startswith("GIT_COMMITTER_")}


def _git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(cwd, *args, check=check, env=_committer(), text=True)


def _out(cwd: Path, *args: str) -> str:
    return _git(cwd, *args).stdout.strip()


def _resolve(git_dir: Path, rev: str) -> str:
    done = _git(git_dir, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    if done.returncode != 0:
        raise PublishError(f"unknown commit {rev!r} in {git_dir}")
    return done.stdout.strip()


def _commits_of(git_dir: Path, base: str, tip: str) -> list[str]:
    """The candidate's own commits: everything reachable from tip and not from base, oldest first."""
    listed = _out(git_dir, "rev-list", "--reverse", "--no-merges", f"{base}..{tip}")
    return listed.split() if listed else []


def _files_of(git_dir: Path, commits: Sequence[str]) -> set[str]:
    files: set[str] = set()
    for sha in commits:
        files.update(_out(git_dir, "diff-tree", "--no-commit-id", "--name-only", "-r", sha).split())
    return files


def _branch_exists(git_dir: Path, branch: str) -> bool:
    return (
        _git(git_dir, "show-ref", "--verify", "--quiet", f"refs/heads/{branch}", check=False).returncode == 0
    )


def _pick(
    tree: Path,
    sha: str,
    trailer: str,
    empty: str = "already contained in the stack (the change is empty here)",
) -> str | None:
    """Cherry-pick one commit keeping author and message, plus the trailer. Returns the reason on failure
    (`empty` when the change is already there)."""
    done = _git(tree, "cherry-pick", "--no-commit", sha, check=False)
    if done.returncode != 0:
        conflicted = _out(tree, "diff", "--name-only", "--diff-filter=U").split()
        _git(tree, "cherry-pick", "--abort", check=False)
        _git(tree, "reset", "-q", "--hard", "HEAD")
        if conflicted:
            return "conflict in " + ", ".join(conflicted)
        return "cherry-pick failed: " + (done.stderr.strip().splitlines() or ["unknown error"])[-1]
    if _git(tree, "diff", "--cached", "--quiet", check=False).returncode == 0:
        _git(tree, "reset", "-q", "--hard", "HEAD")
        return empty
    _git(tree, "commit", "-q", "--no-verify", "-C", sha, "--trailer", trailer)
    return None


def published_sources(git_dir: Path, base_sha: str, head_sha: str) -> tuple[str, ...]:
    """What a published head carries, whenever and onto whatever base it was cherry-picked: for each commit
    in base..head, the commits it was cherry-picked from (its `Cherry-picked-from:` trailers: a fork commit,
    also through a stack), else its patch id (`git patch-id --stable`: the change itself). Sorted; a rerun
    that publishes the same fork commits or the same change gives the same tuple (bot.stages updates the
    earlier draft PR then instead of opening another)."""
    git_dir = Path(git_dir)
    out: list[str] = []
    for sha in _commits_of(git_dir, _resolve(git_dir, base_sha), _resolve(git_dir, head_sha)):
        picked = _out(
            git_dir, "show", "-s", "--format=%(trailers:key=Cherry-picked-from,valueonly,separator=%x20)", sha
        ).split()
        if picked:
            out.extend(f"commit:{p}" for p in picked)
            continue
        diff = run(git_dir, "diff-tree", "-p", "--no-commit-id", sha, text=True).stdout
        patch = run(git_dir, "patch-id", "--stable", input=diff, text=True).stdout.split()
        out.append(f"patch:{patch[0] if patch else sha}")
    return tuple(sorted(out))


# --------------------------------------------------------------------------- stacking


def _order(winners: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Largest effect first when winners carry a "speedup"; otherwise the given order (stable)."""

    def key(w: Mapping[str, Any]) -> float:
        s = w.get("speedup")
        return -float(s) if isinstance(s, (int, float)) and math.isfinite(s) else 0.0

    return sorted(winners, key=key)


def stack_winners(
    git_dir: Path,
    base_sha: str,
    winners: Sequence[Mapping[str, Any]],
    branch_name: str,
    *,
    force: bool = False,
) -> StackResult:
    """Cherry-pick each winner's commits (those not in base) onto base_sha, biggest effect first.

    winners: [{"name", "sha", "speedup"?}]. A winner whose commits conflict with the stack so far is
    dropped whole (its partial picks are undone). The branch is created only when something applied;
    an existing branch is an error unless force.
    """
    git_dir = Path(git_dir)
    base = _resolve(git_dir, base_sha)
    if not force and _branch_exists(git_dir, branch_name):
        raise PublishError(f"branch {branch_name} already exists; pick another name (see pr_branch_name)")
    _git(git_dir, "check-ref-format", "--branch", branch_name)
    ordered = _order(winners)
    applied: list[str] = []
    applied_files: dict[str, set[str]] = {}
    dropped: list[dict[str, str]] = []
    scratch = Path(tempfile.mkdtemp(prefix="autoresearch-stack-"))
    tree = scratch / "tree"
    _git(git_dir, "worktree", "add", "-q", "--detach", str(tree), base)
    try:
        for w in ordered:
            name = str(w["name"])
            try:
                tip = _resolve(git_dir, str(w["sha"]))
            except PublishError as exc:
                dropped.append({"name": name, "reason": str(exc)})
                continue
            commits = _commits_of(git_dir, base, tip)
            if not commits:
                dropped.append({"name": name, "reason": "no commits ahead of the baseline"})
                continue
            reason = _pick_all(tree, commits, f"{TRAILER}: {branch_name} ({len(applied) + 1}: {name})")
            if reason:
                dropped.append({"name": name, "reason": _explain(reason, commits, applied_files, git_dir)})
                continue
            applied.append(name)
            applied_files[name] = _files_of(git_dir, commits)
        if not applied:
            return StackResult(sha=None, applied=[], dropped=dropped, branch=None)
        tip_sha = _out(tree, "rev-parse", "HEAD")
        _git(git_dir, "branch", *(["-f"] if force else []), branch_name, tip_sha)
        return StackResult(sha=tip_sha, applied=applied, dropped=dropped, branch=branch_name)
    finally:
        _git(git_dir, "worktree", "remove", "--force", str(tree), check=False)
        _git(git_dir, "worktree", "prune", check=False)
        shutil.rmtree(scratch, ignore_errors=True)


def _pick_all(tree: Path, commits: Sequence[str], trailer: str) -> str | None:
    start = _out(tree, "rev-parse", "HEAD")
    for sha in commits:
        reason = _pick(tree, sha, trailer)
        if reason:
            _git(tree, "reset", "-q", "--hard", start)
            return reason
    return None


def _explain(
    reason: str, commits: Sequence[str], applied_files: Mapping[str, set[str]], git_dir: Path
) -> str:
    mine = _files_of(git_dir, commits)
    clashing = [n for n, files in applied_files.items() if files & mine]
    return (
        f"{reason} (overlaps {', '.join(clashing)})" if clashing and reason.startswith("conflict") else reason
    )


def candidate_from_commit(git_dir: Path, base_sha: str, sha: str, branch_name: str) -> StackResult:
    """A candidate branch holding one foreign commit (e.g. a fork's) applied alone on the baseline."""
    git_dir = Path(git_dir)
    base = _resolve(git_dir, base_sha)
    commit = _resolve(git_dir, sha)
    if _branch_exists(git_dir, branch_name):
        raise PublishError(f"branch {branch_name} already exists")
    scratch = Path(tempfile.mkdtemp(prefix="autoresearch-pick-"))
    tree = scratch / "tree"
    _git(git_dir, "worktree", "add", "-q", "--detach", str(tree), base)
    try:
        reason = _pick(tree, commit, f"Cherry-picked-from: {commit}", empty="already in the baseline")
        if reason:
            return StackResult(sha=None, applied=[], dropped=[{"name": branch_name, "reason": reason}])
        tip = _out(tree, "rev-parse", "HEAD")
        _git(git_dir, "branch", branch_name, tip)
        return StackResult(sha=tip, applied=[branch_name], branch=branch_name)
    finally:
        _git(git_dir, "worktree", "remove", "--force", str(tree), check=False)
        _git(git_dir, "worktree", "prune", check=False)
        shutil.rmtree(scratch, ignore_errors=True)


# --------------------------------------------------------------------------- what may be pushed

ALWAYS_UNPUSHABLE = (".github/**", ".autoresearch.yml")


def push_blockers(git_dir: Path, base_sha: str, sha: str, protected: Sequence[str] = ()) -> list[str]:
    """Paths of the base..sha diff (both sides of renames, deletions too) that must never reach the base
    repository in a candidate branch: its CI may run them with its secrets. .github/**, the project config
    and the project's protected paths; matched as protected paths (bot.pathglob: case-insensitively)."""
    patterns = list(dict.fromkeys([*ALWAYS_UNPUSHABLE, *protected]))
    names = _out(git_dir, "diff", "--no-renames", "--name-only", "-z", base_sha, sha)
    return sorted(p for p in names.split("\0") if p and pathglob.protected(p, patterns))


# --------------------------------------------------------------------------- what to publish


def _target_rows(decision: Mapping[str, Any], candidate: str) -> list[Mapping[str, Any]]:
    target = decision.get("target")
    return [
        r
        for r in decision.get("rows", [])
        if r.get("candidate") == candidate and (not target or r.get("metric") == target)
    ]


def _row_speedup(row: Mapping[str, Any]) -> float | None:
    """The simulated speedup where there is one (exact), else the wall-time one."""
    for v in ((row.get("simulated") or {}).get("speedup"), (row.get("comparison") or {}).get("speedup")):
        if isinstance(v, (int, float)) and v > 0 and math.isfinite(v):
            return float(v)
    return None


def _speedup(decision: Mapping[str, Any], candidate: str) -> float | None:
    """Geometric mean over archs of the target speedup; None when not measured."""
    vals = [v for v in (_row_speedup(r) for r in _target_rows(decision, candidate)) if v is not None]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else None


def _significantly_worse(decision: Mapping[str, Any], stack: str, single: str) -> str | None:
    """An arch where the single winner beats the stack: by >= 1% in simulated cost (exact), or, without a
    simulated figure, with its wall-time CI entirely above the stack's."""
    sims = {r["arch"]: r.get("simulated") or {} for r in _target_rows(decision, single)}
    for row in _target_rows(decision, stack):
        mine, theirs = (row.get("simulated") or {}).get("speedup"), sims.get(row["arch"], {}).get("speedup")
        if isinstance(mine, (int, float)) and isinstance(theirs, (int, float)) and theirs > 1.01 * mine:
            return (
                f"on {row['arch']} {single} alone costs {theirs:.3f}x less than the baseline in simulated "
                f"cycles, the stack {mine:.3f}x"
            )
    singles = {r["arch"]: r["comparison"] for r in _target_rows(decision, single) if r.get("comparison")}
    for row in _target_rows(decision, stack):
        if (row.get("simulated") or {}).get("speedup") is not None:
            continue
        mine, theirs = row.get("comparison"), singles.get(row["arch"])
        if mine and theirs and (theirs.get("ci_low") or 0) > (mine.get("ci_high") or math.inf):
            return (
                f"on {row['arch']} {single} alone ({theirs['speedup']:.2f}x, CI from {theirs['ci_low']:.2f}) "
                f"beats the stack ({mine['speedup']:.2f}x, CI up to {mine['ci_high']:.2f})"
            )
    return None


def _best_single(
    stack_decision: Mapping[str, Any] | None, single_decisions: Mapping[str, Any], stack_name: str
) -> tuple[str | None, Mapping[str, Any]]:
    """Best single winner, preferring its re-measurement next to the stack (same machines, same session)."""
    winners = [w for w in single_decisions.get("winners", []) if w != stack_name]
    if not winners:
        return None, single_decisions
    if stack_decision:
        remeasured = [w for w in winners if _speedup(stack_decision, w) is not None]
        if remeasured:
            return max(remeasured, key=lambda w: _speedup(stack_decision, w) or 0.0), stack_decision
    return max(winners, key=lambda w: _speedup(single_decisions, w) or 0.0), single_decisions


def choose_publication(
    stack_decision: Mapping[str, Any] | None,
    single_decisions: Mapping[str, Any],
    *,
    stack_name: str = "stack",
    stack_parts: Sequence[str] | None = None,
) -> dict[str, Any]:
    """{"kind": "stack"|"single"|"none", "candidate", "reason", "speedup"} from the measured decisions.

    stack_decision: Decision.to_dict() of the verification run (stack vs baseline, ideally with the single
    winners re-measured alongside); single_decisions: Decision.to_dict() of the candidates' run.
    stack_parts (StackResult.applied): a stack of a single part is published as that single candidate.
    """
    if stack_parts is not None and len(stack_parts) < 2:
        stack_decision = None
    best, best_from = _best_single(stack_decision, single_decisions, stack_name)
    single = (
        {"kind": "single", "candidate": best, "speedup": _speedup(best_from, best)}
        if best
        else {"kind": "none", "candidate": None, "speedup": None}
    )
    if best is None:
        return {**single, "reason": "no candidate was significantly faster and correct"}
    stack_rows = [r for r in (stack_decision or {}).get("rows", []) if r.get("candidate") == stack_name]
    if not stack_rows:
        return {**single, "reason": f"no stack was measured; {best} is the best single winner"}
    failed = [r for r in stack_rows if r.get("verdict") in FAILED or r.get("status") != "ok"]
    if failed:
        r = failed[0]
        return {
            **single,
            "reason": f"the stack failed on {r['arch']} ({r['verdict'].replace('_', ' ')}); "
            f"offering {best} alone",
        }
    if stack_name not in (stack_decision or {}).get("winners", []):
        verdicts = sorted(
            {
                f"{r['arch']}: {r['verdict'].replace('_', ' ')}"
                for r in _target_rows(stack_decision or {}, stack_name)
            }
        )
        return {
            **single,
            "reason": f"the stack is not significantly faster than the baseline ({'; '.join(verdicts)}): "
            f"it loses what its parts gained; offering {best} alone",
        }
    worse = _significantly_worse(stack_decision or {}, stack_name, best)
    if worse:
        return {**single, "reason": f"the stack is slower than its best part: {worse}; offering {best} alone"}
    return {
        "kind": "stack",
        "candidate": stack_name,
        "speedup": _speedup(stack_decision or {}, stack_name),
        "reason": "the stack was re-measured correct and significantly faster than the baseline",
    }


# --------------------------------------------------------------------------- branch names


def pr_branch_name(issue: int, slug: str, attempt: int = 1) -> str:
    """`autoresearch/<issue>/<slug>`, then `-2`, `-3`... for re-runs, so no attempt overwrites another."""
    if int(issue) <= 0:
        raise ValueError(f"issue number must be positive, got {issue}")
    if int(attempt) < 1:
        raise ValueError(f"attempt starts at 1, got {attempt}")
    name = f"autoresearch/{int(issue)}/{slugify(slug)}"
    return name if attempt == 1 else f"{name}-{int(attempt)}"


def next_pr_branch(existing: Iterable[str], issue: int, slug: str) -> str:
    """The first pr_branch_name attempt not already taken."""
    taken = set(existing)
    attempt = 1
    while pr_branch_name(issue, slug, attempt) in taken:
        attempt += 1
    return pr_branch_name(issue, slug, attempt)
