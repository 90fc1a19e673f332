"""The bot's git layer: the one hardened runner (sky/gitrun.py, which the VM driver runs too: hooks off, no
signing, no prompts, a timeout, credentials redacted from errors) and the bot's mirror of a repository.

`run` returns the CompletedProcess (bytes, or str with text=True), `output` stdout as text, `ok` whether git
exits 0; all raise GitError (a RuntimeError). URLs that carry a token are passed to git on the command line
only, and every error message is redacted by the caller-provided `redact` function before it is stored or
shown.
"""

from __future__ import annotations

import fcntl
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .resources import sky_module

_shared = sky_module("gitrun")
GitError = _shared.GitError
run = _shared.run
output = _shared.output
ok = _shared.ok
redact_urls = _shared.redact_urls
BOT_IDENTITY = ("autoresearch-bot", "autoresearch-bot@users.noreply.github.com")  # until set_identity
GIT_ENV = {  # the bot's commits (publish stacks, ports) are authored/committed as the bot
    "GIT_AUTHOR_NAME": BOT_IDENTITY[0],
    "GIT_AUTHOR_EMAIL": BOT_IDENTITY[1],
    "GIT_COMMITTER_NAME": BOT_IDENTITY[0],
    "GIT_COMMITTER_EMAIL": BOT_IDENTITY[1],
}
_identity = list(BOT_IDENTITY)


def set_identity(name: str, email: str) -> None:
    """The identity of the bot's commits from now on, process-wide (the forge's account: an App's
    `<slug>[bot]` with its noreply address; see GitHubForge.commit_identity)."""
    _identity[:] = [name, email]
    GIT_ENV.update(
        GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email, GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=email
    )


def bot_identity() -> tuple[str, str]:
    """(name, email) the bot's commits carry now."""
    return _identity[0], _identity[1]


MIRROR_TIMEOUT_S = 600.0

__all__ = [
    "BOT_IDENTITY",
    "GIT_ENV",
    "bot_identity",
    "set_identity",
    "GitError",
    "Mirror",
    "ok",
    "output",
    "redact_urls",
    "run",
]


class Mirror:
    """A bare clone of one repository under the bot's data dir, fetched on demand."""

    def __init__(self, root: Path, repo: str, redact: Callable[[str], str] = lambda s: s):
        self.repo = repo
        self.path = Path(root) / (repo.replace("/", "__") + ".git")
        self.redact = redact

    def git(self, *args: str, check: bool = True) -> str:
        """stdout, stripped. Host git config is kept (isolated=False): the mirror talks to the forge."""
        return output(
            self.path,
            *args,
            check=check,
            redact=self.redact,
            timeout=MIRROR_TIMEOUT_S,
            env=GIT_ENV,
            isolated=False,
        ).strip()

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive use of the mirror for changes (init, fetch, worktree bookkeeping): concurrent runs of
        one repository (threads or processes) share it, and two fetches updating one ref would collide."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def ensure(self, url: str) -> Mirror:
        with self.locked():
            if not (self.path / "HEAD").exists():
                tmp = self.path.with_name(self.path.name + ".tmp")
                shutil.rmtree(tmp, ignore_errors=True)
                output(self.path.parent, "init", "--bare", "-q", str(tmp), redact=self.redact)
                tmp.rename(self.path)  # atomic: a half-made mirror is never mistaken for a good one
            self.git("fetch", "--quiet", "--no-tags", url, "+refs/heads/*:refs/heads/*")
        return self

    def fetch(self, url: str, *refspecs: str) -> None:
        with self.locked():
            self.git("fetch", "--quiet", "--no-tags", url, *refspecs)

    def has(self, sha: str) -> bool:
        return ok(self.path, "cat-file", "-e", f"{sha}^{{commit}}")

    def rev(self, ref: str) -> str:
        return self.git("rev-parse", f"{ref}^{{commit}}")

    def push(self, url: str, sha: str, branch: str, force: bool = False) -> None:
        self.git("push", "--quiet", url, f"{'+' if force else ''}{sha}:refs/heads/{branch}")

    @contextmanager
    def worktree(self, sha: str, prefix: str = "wt-") -> Iterator[Path]:
        """A throwaway detached worktree at `sha`; removed afterwards whatever happens."""
        tmp = Path(tempfile.mkdtemp(prefix=prefix))
        path = tmp / "tree"
        with self.locked():
            self.git("worktree", "add", "--detach", "--quiet", str(path), sha)
        try:
            yield path
        finally:
            with self.locked():
                self.git("worktree", "remove", "--force", str(path), check=False)
                shutil.rmtree(tmp, ignore_errors=True)
                self.git("worktree", "prune", check=False)
