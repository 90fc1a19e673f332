"""Thin git CLI helpers over the sandbox's bare repositories (real git, no mocks)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

# git(repo or None, *args, input=, alternates=, check=) -> stdout: the one runner, as api/render/state call it
from bot.gitutil import ok, run
from bot.gitutil import output as git


def init_bare(path: Path, default_branch: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    git(None, "init", "-q", "--bare", "-b", default_branch, str(path))
    git(path, "config", "http.receivepack", "true")
    git(path, "config", "receive.denyDeleteCurrent", "warn")


def import_local(bare: Path, source: Path) -> str:
    """Push all branches and tags of the local repo `source` into `bare`; return source's current branch."""
    git(source, "push", "-q", str(bare), "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
    head = git(source, "symbolic-ref", "--short", "-q", "HEAD", check=False).strip()
    return head


def seed_readme(bare: Path, branch: str, text: str) -> None:
    """Create an initial commit with README.md on `branch` of an empty bare repo."""
    with tempfile.TemporaryDirectory(prefix="sandbox-seed-") as tmp:
        env_args = ["-c", "user.name=sandbox", "-c", "user.email=sandbox@localhost"]
        git(None, "init", "-q", "-b", branch, tmp)
        Path(tmp, "README.md").write_text(text)
        git(Path(tmp), "add", "README.md")
        git(Path(tmp), *env_args, "commit", "-q", "-m", "Initial commit")
        git(Path(tmp), "push", "-q", str(bare), f"{branch}:refs/heads/{branch}")


def clone_bare(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    git(None, "clone", "-q", "--bare", str(source), str(dest))
    git(dest, "config", "http.receivepack", "true")


def fetch_commit(bare: Path, source: Path, sha: str, ref: str) -> None:
    """Copy commit `sha` (and what it needs) from the bare repo `source` into `bare` as `ref` (GitHub keeps a
    pull request's head as refs/pull/<n>/head in the base repository, whichever repository the head is in)."""
    if source != bare:
        git(bare, "fetch", "-q", "--no-tags", str(source), sha)
    git(bare, "update-ref", ref, sha)


def keep_only_branch(bare: Path, branch: str) -> None:
    """Delete every branch but `branch` (a fork made with default_branch_only)."""
    for name in refs(bare):
        if name.startswith("refs/heads/") and name != f"refs/heads/{branch}":
            git(bare, "update-ref", "-d", name)


def refs(bare: Path) -> dict[str, str]:
    out = git(bare, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads", "refs/tags")
    pairs = (line.split(" ", 1) for line in out.splitlines() if line)
    return {name: sha for name, sha in pairs}


def branch_sha(bare: Path, branch: str) -> str | None:
    out = git(bare, "rev-parse", "-q", "--verify", f"refs/heads/{branch}^{{commit}}", check=False).strip()
    return out or None


def resolve(bare: Path, rev: str, alternates: list[Path] | None = None) -> str | None:
    """Resolve a branch name, tag or (abbreviated) sha to a commit sha."""
    for cand in (f"refs/heads/{rev}", f"refs/tags/{rev}", rev):
        out = git(
            bare, "rev-parse", "-q", "--verify", f"{cand}^{{commit}}", check=False, alternates=alternates
        ).strip()
        if out:
            return out
    return None


def has_object(bare: Path, sha: str) -> bool:
    return bool(git(bare, "cat-file", "-t", sha, check=False).strip() == "commit")


def update_ref(bare: Path, ref: str, sha: str) -> None:
    git(bare, "update-ref", ref, sha)


def delete_ref(bare: Path, ref: str) -> None:
    git(bare, "update-ref", "-d", ref)


def is_ancestor(bare: Path, old: str, new: str) -> bool:
    return ok(bare, "merge-base", "--is-ancestor", old, new)


@dataclass
class CommitInfo:
    sha: str
    tree: str
    parents: list[str]
    author_name: str
    author_email: str
    author_date: str
    committer_name: str
    committer_email: str
    committer_date: str
    message: str


def commit_info(bare: Path, sha: str, alternates: list[Path] | None = None) -> CommitInfo:
    fmt = "%H%x00%T%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B"
    out = git(bare, "show", "-s", f"--format={fmt}", sha, alternates=alternates)
    f = out.split("\x00")
    return CommitInfo(f[0], f[1], f[2].split(), f[3], f[4], f[5], f[6], f[7], f[8], f[9].rstrip("\n"))


def commits_between(bare: Path, base: str, head: str, alternates: list[Path] | None = None) -> list[str]:
    out = git(bare, "rev-list", "--reverse", f"{base}..{head}", alternates=alternates)
    return out.split()


def merge_base(bare: Path, a: str, b: str, alternates: list[Path] | None = None) -> str | None:
    return git(bare, "merge-base", a, b, check=False, alternates=alternates).strip() or None


def ahead_behind(bare: Path, base: str, head: str, alternates: list[Path] | None = None) -> tuple[int, int]:
    out = git(bare, "rev-list", "--left-right", "--count", f"{base}...{head}", alternates=alternates).split()
    return int(out[1]), int(out[0])


@dataclass
class FileChange:
    filename: str
    status: str
    additions: int
    deletions: int
    patch: str | None
    blob_sha: str
    previous_filename: str | None = None


_STATUS = {"A": "added", "M": "modified", "D": "removed", "R": "renamed", "C": "copied", "T": "changed"}


def diff_files(bare: Path, base: str, head: str, alternates: list[Path] | None = None) -> list[FileChange]:
    """Files changed from `base` to `head` with per-file patches, computed by git."""
    status = git(bare, "diff", "--name-status", "-M", "-z", base, head, alternates=alternates).split("\x00")
    numstat = git(bare, "diff", "--numstat", "-M", "-z", base, head, alternates=alternates)
    changes: list[FileChange] = []
    i = 0
    while i < len(status) and status[i]:
        code = status[i][0]
        if code in "RC":
            old, new = status[i + 1], status[i + 2]
            i += 3
        else:
            old, new = None, status[i + 1]
            i += 2
        changes.append(FileChange(new, _STATUS.get(code, "modified"), 0, 0, None, "", old))
    counts = _parse_numstat(numstat)
    for ch in changes:
        add, dele = counts.get(ch.filename, (0, 0))
        ch.additions, ch.deletions = add, dele
        paths = [ch.filename] if ch.previous_filename is None else [ch.previous_filename, ch.filename]
        patch = git(bare, "diff", "-M", base, head, "--", *paths, alternates=alternates)
        ch.patch = _strip_header(patch)
        if ch.status != "removed":
            ch.blob_sha = git(
                bare, "rev-parse", f"{head}:{ch.filename}", check=False, alternates=alternates
            ).strip()
        else:
            ch.blob_sha = git(
                bare, "rev-parse", f"{base}:{ch.filename}", check=False, alternates=alternates
            ).strip()
    return changes


def _parse_numstat(out: str) -> dict[str, tuple[int, int]]:
    parts = out.split("\x00")
    res: dict[str, tuple[int, int]] = {}
    i = 0
    while i < len(parts) and parts[i]:
        fields = parts[i].split("\t")
        add = int(fields[0]) if fields[0].isdigit() else 0
        dele = int(fields[1]) if fields[1].isdigit() else 0
        if len(fields) >= 3 and fields[2]:
            res[fields[2]] = (add, dele)
            i += 1
        else:  # rename: "add\tdel\t" NUL old NUL new
            res[parts[i + 2]] = (add, dele)
            i += 3
    return res


def _strip_header(patch: str) -> str | None:
    lines = patch.splitlines()
    for idx, line in enumerate(lines):
        if line.startswith("@@"):
            return "\n".join(lines[idx:])
    return None


def read_blob(bare: Path, ref: str, path: str) -> tuple[str, bytes] | None:
    """(blob sha, content) of `path` at `ref`, or None when it is not a file there."""
    spec = f"{ref}:{path}"
    kind = git(bare, "cat-file", "-t", spec, check=False).strip()
    if kind != "blob":
        return None
    sha = git(bare, "rev-parse", spec).strip()
    return sha, blob_bytes(bare, sha)


def blob_bytes(bare: Path, sha: str) -> bytes:
    return run(bare, "cat-file", "blob", sha).stdout


def list_tree(bare: Path, ref: str, path: str) -> list[tuple[str, str, str, int]] | None:
    """Entries (type, sha, name, size) of directory `path` at `ref`, or None when it is not a directory."""
    spec = f"{ref}:{path}" if path else f"{ref}^{{tree}}"
    if git(bare, "cat-file", "-t", spec, check=False).strip() != "tree":
        return None
    out = git(bare, "ls-tree", "-l", "-z", spec)
    entries = []
    for item in out.split("\x00"):
        if not item:
            continue
        meta, name = item.split("\t", 1)
        _mode, typ, sha, size = meta.split()
        entries.append((typ, sha, name, int(size) if size.isdigit() else 0))
    return entries
