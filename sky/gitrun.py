"""The one git runner: every git command of the bot (through bot.gitutil) and of the VM driver goes through
`run`. Stdlib only (shipped to the VM next to driver.py; the bot loads this same file).

Hardening, the same everywhere: repository hooks never run (`core.hooksPath=/dev/null`), nothing is signed
(`commit.gpgsign`, `tag.gpgsign` false), git never prompts for credentials (`GIT_TERMINAL_PROMPT=0`, stdin
closed unless `input` is given), a timeout (a hung git raises GitError), and credentials in URLs
(`https://user:token@host`) never reach an error message. `isolated` (the default) also ignores the system
and the user's global git config (`GIT_CONFIG_NOSYSTEM`, `GIT_CONFIG_GLOBAL=/dev/null`), so the result does
not depend on the host; callers that talk to a remote forge may pass `isolated=False` to keep the host's
proxy, CA and URL settings.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

HARDENING = ("-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false")
ENV = {"GIT_TERMINAL_PROMPT": "0"}
ISOLATED_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
TIMEOUT_S = 1800.0
ERROR_TAIL = 2000
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


class GitError(RuntimeError):
    """A git command failed (non-zero exit when checked, or a timeout); the message names the command
    (credentials redacted) and ends with the tail of git's stderr."""

    def __init__(self, message: str, returncode: int | None = None, stderr: str = "") -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


def redact_urls(text: str) -> str:
    """`text` with the user/password part of every URL replaced by `***`."""
    return _USERINFO.sub("***@", text)


def run(
    cwd: str | Path | None,
    *args: str,
    input: bytes | str | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float | None = TIMEOUT_S,
    alternates: Sequence[str | Path] = (),
    isolated: bool = True,
    text: bool = False,
    redact: Callable[[str], str] | None = None,
    inherit_env: bool = True,
) -> subprocess.CompletedProcess:
    """Run `git -C cwd <args>` (no -C when cwd is None) with the hardening above.

    input: bytes (or str, encoded as UTF-8) for git's stdin; env: extra variables (author identity, index
    file), on top of this process's environment unless not inherit_env (a CGI's exact env); alternates:
    repositories whose objects this one may read (GIT_ALTERNATE_OBJECT_DIRECTORIES); text: stdout/stderr
    decoded as UTF-8 (undecodable bytes replaced); redact: applied to error messages on top of the URL
    redaction. Returns the CompletedProcess; with check, a non-zero exit raises GitError."""
    full_env = {
        **(os.environ if inherit_env else {}),
        **ENV,
        **(ISOLATED_ENV if isolated else {}),
        **(env or {}),
    }
    if alternates:
        full_env["GIT_ALTERNATE_OBJECT_DIRECTORIES"] = os.pathsep.join(
            str(Path(p) / "objects") for p in alternates
        )
    cmd = ["git", *HARDENING, *(["-C", str(cwd)] if cwd is not None else []), *args]
    data = input.encode() if isinstance(input, str) else input
    try:
        proc = subprocess.run(
            cmd,
            input=data,
            stdin=subprocess.DEVNULL if data is None else None,
            capture_output=True,
            env=full_env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise GitError(_message(args, f"timed out after {timeout:g} s", "", redact), None) from None
    if text:
        proc.stdout = proc.stdout.decode("utf-8", "replace")
        proc.stderr = proc.stderr.decode("utf-8", "replace")
    if check and proc.returncode != 0:
        err = proc.stderr if text else proc.stderr.decode("utf-8", "replace")
        raise GitError(_message(args, f"failed ({proc.returncode})", err, redact), proc.returncode, err)
    return proc


def output(cwd: str | Path | None, *args: str, **kw) -> str:
    """`run(...)`'s stdout as text (not stripped)."""
    return run(cwd, *args, text=True, **kw).stdout


def ok(cwd: str | Path | None, *args: str, **kw) -> bool:
    """Whether the command exits 0 (e.g. `cat-file -e`, `merge-base --is-ancestor`)."""
    return run(cwd, *args, check=False, **kw).returncode == 0


def _message(args: Sequence[str], what: str, stderr: str, redact: Callable[[str], str] | None) -> str:
    tail = stderr.strip()[-ERROR_TAIL:]
    message = redact_urls(f"git {' '.join(args)} {what}" + (f": {tail}" if tail else ""))
    return redact(message) if redact else message
