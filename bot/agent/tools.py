"""Sandboxed file operations inside one throwaway git worktree; every refusal is recorded."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from bot import pathglob

ALWAYS_PROTECTED = (".github/**", ".autoresearch.yml")
MAX_READ_LINES = 2000
MAX_READ_CHARS = 24_000
MAX_WRITE_BYTES = 1_000_000
MAX_SEARCH_MATCHES = 200
MAX_SEARCH_CHARS = 20_000
MAX_SEARCH_FILE_BYTES = 2_000_000
MAX_LIST = 1000
OUTPUT_TAIL_CHARS = 8000
_SECRET_ENV = re.compile(r"TOKEN|SECRET|PASSWORD|API_KEY|PRIVATE_KEY|CREDENTIAL|_KEY$", re.IGNORECASE)


class ToolError(Exception):
    """A tool call that cannot be done (bad input or refused); its text goes back to the model."""


@dataclass
class Refusal:
    tool: str
    path: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class Workspace:
    """File tools confined to `root`: reads anywhere in it except .git; writes only to `allowed`
    paths that are not `protected` (which always includes .github/** and .autoresearch.yml)."""

    root: Path
    allowed: list[str]
    protected: list[str] = field(default_factory=list)
    build_commands: list[str] = field(default_factory=list)
    check_commands: list[str] = field(default_factory=list)
    command_timeout_s: float = 600.0
    isolate: bool = True  # build/check commands run agent-written code: only in the jail
    refusals: list[Refusal] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve(strict=True)
        self.allowed = list(self.allowed)
        self.protected = list(dict.fromkeys([*ALWAYS_PROTECTED, *self.protected]))

    # ---- path safety -----------------------------------------------------------------------------
    def _refuse(self, tool: str, path: str, reason: str) -> ToolError:
        self.refusals.append(Refusal(tool, str(path), reason))
        return ToolError(f"refused: {reason}")

    def _resolve(self, tool: str, path: str, *, write: bool) -> tuple[Path, str]:
        """-> (absolute path, root-relative posix path) or raise ToolError (recorded)."""
        if not isinstance(path, str) or not path.strip() or "\x00" in path:
            raise self._refuse(tool, str(path), "empty or invalid path")
        posix = path.replace("\\", "/")
        if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix) or posix.startswith("~"):
            raise self._refuse(
                tool, path, "absolute paths are not allowed; use a path relative to the repository root"
            )
        parts = PurePosixPath(posix).parts
        if ".." in parts:
            raise self._refuse(tool, path, "'..' is not allowed in paths")
        rel = "/".join(p for p in parts if p not in ("", "."))
        if not rel:
            raise self._refuse(tool, path, "path names the repository root")
        target = self.root / rel
        resolved = target.resolve()
        try:
            resolved_rel = resolved.relative_to(self.root).as_posix()
        except ValueError:
            raise self._refuse(tool, path, "path resolves outside the repository (symlink)") from None
        for candidate in {rel, resolved_rel}:
            if candidate == ".git" or candidate.startswith(".git/") or "/.git/" in f"/{candidate}/":
                raise self._refuse(tool, path, ".git is not accessible")
        if write:
            self._check_writable(tool, path, rel, resolved_rel, target)
        return resolved, rel

    def _check_writable(self, tool: str, path: str, rel: str, resolved_rel: str, target: Path) -> None:
        for candidate in dict.fromkeys([rel, resolved_rel]):
            if pathglob.protected(candidate, self.protected):
                raise self._refuse(tool, path, f"{candidate} is protected")
            if not pathglob.match(candidate, self.allowed):
                raise self._refuse(tool, path, f"{candidate} is outside the allowed paths {self.allowed}")
        probe = self.root
        for part in PurePosixPath(rel).parts:
            probe = probe / part
            if probe.is_symlink():
                raise self._refuse(tool, path, "writing through a symlink is not allowed")

    # ---- tools -----------------------------------------------------------------------------------
    def read_file(self, path: str, start: int = 1, end: int | None = None) -> str:
        """Numbered lines start..end (1-based, inclusive), bounded."""
        target, rel = self._resolve("read_file", path, write=False)
        if not target.is_file():
            raise ToolError(f"{rel}: no such file")
        lines = target.read_text(encoding="utf-8", errors="replace").splitlines()
        start = max(1, int(start or 1))
        end = len(lines) if end is None else min(len(lines), int(end))
        end = min(end, start + MAX_READ_LINES - 1)
        out, size = [], 0
        for n in range(start, end + 1):
            line = f"{n:6d}\t{lines[n - 1]}"
            size += len(line) + 1
            if size > MAX_READ_CHARS:
                out.append(f"... (truncated at line {n}; read further with start={n})")
                break
            out.append(line)
        header = f"{rel} lines {start}-{min(end, len(lines))} of {len(lines)}"
        return header + "\n" + "\n".join(out)

    def _walk(self, pattern: str) -> list[str]:
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if d != ".git")
            base = Path(dirpath).relative_to(self.root).as_posix()
            for name in sorted(filenames):
                rel = name if base == "." else f"{base}/{name}"
                if name != ".git" and pathglob.match(rel, [pattern]):
                    found.append(rel)
        return found

    def list_files(self, glob: str = "**") -> str:
        files = self._walk(glob or "**")
        extra = f"\n... ({len(files) - MAX_LIST} more)" if len(files) > MAX_LIST else ""
        return "\n".join(files[:MAX_LIST]) + extra if files else f"no files match {glob!r}"

    def search(self, regex: str, glob: str = "**") -> str:
        try:
            rx = re.compile(regex)
        except re.error as e:
            raise ToolError(f"invalid regex: {e}") from e
        out: list[str] = []
        size = 0
        for rel in self._walk(glob or "**"):
            p = self.root / rel
            if p.is_symlink() or p.stat().st_size > MAX_SEARCH_FILE_BYTES:
                continue
            data = p.read_bytes()
            if b"\x00" in data[:8192]:
                continue
            for n, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
                if rx.search(line):
                    entry = f"{rel}:{n}: {line[:300]}"
                    size += len(entry) + 1
                    if len(out) >= MAX_SEARCH_MATCHES or size > MAX_SEARCH_CHARS:
                        return "\n".join(out) + "\n... (more matches; narrow the regex or glob)"
                    out.append(entry)
        return "\n".join(out) if out else "no matches"

    def replace(self, path: str, old: str, new: str) -> str:
        """Replace the single exact occurrence of `old` with `new`."""
        target, rel = self._resolve("replace", path, write=True)
        if not target.is_file():
            raise ToolError(f"{rel}: no such file (write_file creates new files)")
        if not old:
            raise ToolError("old text must not be empty")
        text = target.read_text(encoding="utf-8")
        count = text.count(old)
        if count == 0:
            raise ToolError(f"{rel}: old text not found (it must match exactly, whitespace included)")
        if count > 1:
            raise ToolError(f"{rel}: old text occurs {count} times; include more context to make it unique")
        target.write_text(text.replace(old, new, 1), encoding="utf-8")
        self.touched.add(rel)
        return f"{rel}: replaced 1 occurrence"

    def write_file(self, path: str, content: str) -> str:
        """Create a new file (never overwrites; use replace for existing files)."""
        target, rel = self._resolve("write_file", path, write=True)
        if target.exists() or target.is_symlink():
            raise ToolError(f"{rel} exists; use replace to edit existing files")
        data = content.encode("utf-8")
        if len(data) > MAX_WRITE_BYTES:
            raise ToolError(f"content too large ({len(data)} bytes > {MAX_WRITE_BYTES})")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        self.touched.add(rel)
        return f"{rel}: created ({len(data)} bytes)"

    def run_build(self) -> str:
        return self._run_commands(self.build_commands, "build")

    def run_check(self) -> str:
        return self._run_commands(self.check_commands, "check")

    def _run_commands(self, commands: list[str], what: str) -> str:
        if not commands:
            return f"no {what} commands configured"
        reports = []
        for cmd in commands:
            rc, tail = run_command(cmd, self.root, self.command_timeout_s, isolate=self.isolate)
            reports.append(f"$ {cmd}\nexit {rc}\n{tail}")
            if rc != 0:
                return f"{what} FAILED\n" + "\n".join(reports)
        return f"{what} OK\n" + "\n".join(reports)

    def refusal_dicts(self) -> list[dict[str, str]]:
        return [r.to_dict() for r in self.refusals]


def scrubbed_env() -> dict[str, str]:
    """The current environment without anything that looks like a credential."""
    return {k: v for k, v in os.environ.items() if not _SECRET_ENV.search(k)}


def run_command(cmd: str, cwd: Path, timeout_s: float, isolate: bool = True) -> tuple[int | str, str]:
    """Run a configured shell command in its own process group; (exit code or 'timeout', output tail).

    It builds and runs code the agent wrote (or an injected text made it write): with `isolate` (unless the
    operator set `local_trust: all`) only inside the jail of bot/experiments/jail.py, with the worktree as
    the one writable directory, no network, no secrets; ('refused', why) where no jail starts."""
    from bot.experiments import jail
    from bot.experiments.executors import host_work

    argv, env, plan, owner, etc = ["bash", "-c", cmd], scrubbed_env(), None, None, None
    if isolate:
        ok, why = jail.probe(sys.executable)
        if not ok:
            return "refused", f"not run: no jail for agent-written code on this host ({why})"
        plan = jail.make_plan(sys.executable)
        etc = Path(tempfile.mkdtemp(prefix="autoresearch-agent-jail-"))
        owner = jail.lend_tree(plan, Path(cwd))
        jail.write_etc(plan, etc)
        argv, env = jail.command(plan, Path(cwd), etc, argv), jail.jail_env(plan)
    try:
        with host_work():  # never beside a local benchmark (the machine-wide lock, shared)
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
            try:
                out, _ = proc.communicate(timeout=timeout_s)
                rc: int | str = proc.returncode
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                out, _ = proc.communicate()
                rc = f"timeout after {timeout_s:g}s"
    finally:
        if plan is not None:
            jail.return_tree(Path(cwd), owner)
            shutil.rmtree(etc or "", ignore_errors=True)
    text = out.decode("utf-8", errors="replace")
    return rc, text[-OUTPUT_TAIL_CHARS:]


TOOL_DEFINITIONS: list[dict[str, Any]] = [
    {
        "name": "read_file",
        "description": "Read numbered lines of a file (path relative to the repo root).",
        "input_schema": {
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "start": {"type": "integer", "minimum": 1},
                "end": {"type": "integer", "minimum": 1},
            },
            "required": ["path"],
        },
    },
    {
        "name": "list_files",
        "description": "List files matching a glob ('**' any depth, '*' one level).",
        "input_schema": {"type": "object", "properties": {"glob": {"type": "string"}}},
    },
    {
        "name": "search",
        "description": "Search file lines with a Python regex, optionally within a glob.",
        "input_schema": {
            "type": "object",
            "properties": {"regex": {"type": "string"}, "glob": {"type": "string"}},
            "required": ["regex"],
        },
    },
    {
        "name": "replace",
        "description": "Replace the single exact occurrence of `old` with `new` in a file.",
        "input_schema": {
            "type": "object",
            "properties": {"path": {"type": "string"}, "old": {"type": "string"}, "new": {"type": "string"}},
            "required": ["path", "old", "new"],
        },
    },
    {
        "name": "write_file",
        "description": "Create a NEW file with the given content.",
        "input_schema": {
            "type": "object",
            "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
            "required": ["path", "content"],
        },
    },
    {
        "name": "run_build",
        "description": "Run the project's build commands; returns exit code and output tail.",
        "input_schema": {"type": "object", "properties": {}},
    },
    {
        "name": "run_check",
        "description": "Run the project's quick correctness checks.",
        "input_schema": {"type": "object", "properties": {}},
    },
    {
        "name": "finish",
        "description": "Stop: the change is complete (or no change is worthwhile).",
        "input_schema": {
            "type": "object",
            "properties": {"summary": {"type": "string"}},
            "required": ["summary"],
        },
    },
]


def dispatch(ws: Workspace, name: str, args: dict[str, Any]) -> str:
    """Run workspace tool `name` with model-provided `args`; ToolError on bad input."""
    if not isinstance(args, dict):
        raise ToolError("tool input must be an object")
    try:
        if name == "read_file":
            return ws.read_file(args["path"], args.get("start", 1), args.get("end"))
        if name == "list_files":
            return ws.list_files(args.get("glob", "**"))
        if name == "search":
            return ws.search(args["regex"], args.get("glob", "**"))
        if name == "replace":
            return ws.replace(args["path"], args["old"], args["new"])
        if name == "write_file":
            return ws.write_file(args["path"], args["content"])
        if name == "run_build":
            return ws.run_build()
        if name == "run_check":
            return ws.run_check()
    except KeyError as e:
        raise ToolError(f"missing argument {e.args[0]!r}") from e
    except (TypeError, ValueError) as e:
        raise ToolError(f"bad arguments: {e}") from e
    raise ToolError(f"unknown tool {name!r}")
