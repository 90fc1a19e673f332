"""Thin wrappers around the git CLI for the bot's own mirror of a repository (never on benchmark VMs).

URLs that carry a token are passed to git on the command line only, and every error message is redacted by
the caller-provided `redact` function before it is stored or shown.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_AUTHOR_NAME": "autoresearch-bot",
    "GIT_AUTHOR_EMAIL": "autoresearch-bot@users.noreply.github.com",
    "GIT_COMMITTER_NAME": "autoresearch-bot",
    "GIT_COMMITTER_EMAIL": "autoresearch-bot@users.noreply.github.com",
}


class GitError(RuntimeError):
    pass


def git(cwd: Path, *args: str, check: bool = True, redact: Callable[[str], str] = lambda s: s,
        timeout: float = 600) -> str:
    env = {**os.environ, **GIT_ENV}
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        shown = " ".join(a for a in args if "@" not in a)  # never echo URLs with credentials
        raise GitError(redact(f"git {shown} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}"))
    return proc.stdout.strip()


class Mirror:
    """A bare clone of one repository under the bot's data dir, fetched on demand."""

    def __init__(self, root: Path, repo: str, redact: Callable[[str], str] = lambda s: s):
        self.repo = repo
        self.path = Path(root) / (repo.replace("/", "__") + ".git")
        self.redact = redact

    def git(self, *args: str, check: bool = True) -> str:
        return git(self.path, *args, check=check, redact=self.redact)

    def ensure(self, url: str) -> "Mirror":
        if not (self.path / "HEAD").exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            git(self.path.parent, "init", "--bare", "-q", str(tmp))
            tmp.rename(self.path)  # atomic: a half-made mirror is never mistaken for a good one
        self.fetch(url, "+refs/heads/*:refs/heads/*")
        return self

    def fetch(self, url: str, *refspecs: str) -> None:
        self.git("fetch", "--quiet", "--no-tags", url, *refspecs)

    def has(self, sha: str) -> bool:
        proc = subprocess.run(["git", "cat-file", "-e", f"{sha}^{{commit}}"], cwd=self.path, capture_output=True)
        return proc.returncode == 0

    def rev(self, ref: str) -> str:
        return self.git("rev-parse", f"{ref}^{{commit}}")

    def push(self, url: str, sha: str, branch: str, force: bool = False) -> None:
        self.git("push", "--quiet", url, f"{'+' if force else ''}{sha}:refs/heads/{branch}")

    @contextmanager
    def worktree(self, sha: str, prefix: str = "wt-") -> Iterator[Path]:
        """A throwaway detached worktree at `sha`; removed afterwards whatever happens."""
        tmp = Path(tempfile.mkdtemp(prefix=prefix))
        path = tmp / "tree"
        self.git("worktree", "add", "--detach", "--quiet", str(path), sha)
        try:
            yield path
        finally:
            self.git("worktree", "remove", "--force", str(path), check=False)
            shutil.rmtree(tmp, ignore_errors=True)
            self.git("worktree", "prune", check=False)
