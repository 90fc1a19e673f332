#!/usr/bin/env python3
"""Benchmark driver: builds, validates and benchmarks baseline + candidates on ONE machine.

Stdlib only (runs on a bare VM image with python3, git, a C compiler, maybe cmake and ccache).

    python3 driver.py --spec spec.json --out result.json --workdir DIR

Spec and result shapes: docs/ARCHITECTURE.md. The result is rewritten atomically after every phase and
every benchmark visit, so a crashed machine still leaves partial results (`"complete": false`, variants
not reached yet have status "pending"). After each phase and bench round the partial result is also printed
as one stdout line `AUTORESEARCH_PARTIAL <json>`, and the final one as `AUTORESEARCH_RESULT <json>`, so a
remote executor can read it from the job log. Extra keys beyond docs/ARCHITECTURE.md: `complete`,
`schedule_plan`, variant `error` / `protected_restored`, build `strategy` / `strategy_reason`.

Builds (`project.build.strategy`, default "auto"; `project.build.ccache`, default true): the baseline builds
in a fresh worktree. A candidate that only modifies translation units (.c/.cpp/...) in a non-CMake tree gets a
copy of the baseline's built tree with the candidate checked out over it, so only its changed files rebuild
(correct even without header dependency tracking). Any other candidate gets a fresh worktree built through
ccache (cc/gcc/g++/clang masqueraded on PATH; CCACHE_BASEDIR + NOHASHDIR make hits path-independent).
"incremental" / "ccache" / "clean" force one strategy. Never two benchmark invocations at once; benchmarks
are pinned to the first `benchmark.threads` cpus (taskset) with OMP_NUM_THREADS/THREADS set.

Trust: checks and benchmark scripts come from the baseline. Every candidate worktree gets the baseline's
copy of `project.paths.protected` before it is built, and only the spec's project dict (the baseline's
config) supplies commands.

Preset hook interface (one code path for every preset):
    build(worktree: Path, ctx: Ctx) -> tuple[bool, str]          # (ok, log); run in the prepared worktree
    prepare(ctx: Ctx) -> None                                     # once, after the baseline worktree exists
    validate(worktree: Path, baseline_worktree: Path, ctx: Ctx) -> list[dict]
        # each {"name": str, "ok": bool, "detail": str}; called after build, baseline included
    bench(worktree: Path, ctx: Ctx) -> dict[str, list[float]]    # ONE invocation; may yield several samples
        # raise BenchError (or any exception) when the invocation failed
`project["preset_hooks"]` (set by the bot from the preset's HOOKS, e.g. "llamacpp") names the hook module, a
file shipped next to this one (sky/llamacpp.py); without it the driver uses `GenericPreset` below.
Presets use `ctx.run(...)` for subprocesses (logs, timeouts, env, cpu pinning).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import stat
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import blindspots  # noqa: E402  (sky/blindspots.py: what the simulated tier cannot see, per candidate diff)
import emulate  # noqa: E402  (sky/emulate.py: another arch's correctness under qemu-user)
import exercised  # noqa: E402  (sky/exercised.py: do the changed functions run natively at all)
import gitrun  # noqa: E402  (sky/gitrun.py: the bot runs git through the same file)
import paired  # noqa: E402  (sky/paired.py, shipped next to this file)
import pathglob  # noqa: E402  (sky/pathglob.py: the bot's agent and push checks match paths with it too)
import roofline  # noqa: E402  (sky/roofline.py: memory bandwidth and compute peak of this machine)
import sandbox  # noqa: E402  (sky/sandbox.py: every candidate-code invocation runs in one of its sandboxes)
import simulate  # noqa: E402  (sky/simulate.py, shipped next to this file)

SCHEMA = 1
LOG_TAIL = 4000
NUMBER = r"[-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|nan|inf)"
METRIC_RE = re.compile(
    rf"^[ \t]*METRIC[ \t]+([A-Za-z0-9_.:\-]{{1,100}})[ \t]*=[ \t]*({NUMBER})[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
MAX_METRIC_VALUES = 10_000  # METRIC lines per invocation (declared or not): more fails the invocation
SAFE_ENV_KEYS = ("LANG", "LC_ALL", "TERM", "CCACHE_REMOTE_STORAGE", "CCACHE_MAXSIZE")
SANDBOX_ENV = "AUTORESEARCH_SANDBOX"  # "off" (local_trust: all), a JSON plan, or unset (required: defaults)


class Tampered(RuntimeError):
    """The sealed baseline changed: nothing this run measured can be trusted."""


STRATEGIES = ("auto", "ccache", "incremental", "clean")


class BenchError(Exception):
    """One benchmark invocation failed (crash, non-zero exit, missing metric)."""


def log(msg: str) -> None:
    print(f"[driver] {time.strftime('%H:%M:%S')} {msg}", flush=True)


def signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants (found through /proc), leaving our process group alone."""
    children: dict = {}
    for st_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = st_file.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(st_file.parent.name))
    todo, victims = [pid], []
    while todo:
        p = todo.pop()
        victims.append(p)
        todo.extend(children.get(p, []))
    for p in victims:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


def tail(text: str, n: int = LOG_TAIL) -> str:
    return text if len(text) <= n else "..." + text[-n:]


@dataclasses.dataclass
class Ctx:
    """What a preset sees: the machine-level settings of this run."""

    workdir: Path
    project: dict
    threads: int
    env: dict  # environment for builds and benchmarks (thread pins, ccache)
    ccache_env: dict  # the ccache part of env ({} when ccache is not used)
    cpus: list  # cpu ids benchmarks are pinned to ([] = no pinning)
    seed: int = 1
    baseline_worktree: Path | None = None
    log: Callable[[str], None] = log
    state: dict = dataclasses.field(default_factory=dict)  # scratch space for presets (models, caches)
    emulate: dict | None = None  # spec.emulate: built for another arch, its programs run under qemu-user
    baseline_sha: str = ""
    # containment (sky/sandbox.py); sandbox None = unsandboxed (local_trust: all, or the driver's own tests)
    sandbox: Any = None
    cells: dict = dataclasses.field(default_factory=dict)  # variant name -> sandbox.Cell
    current: str | None = None  # the variant whose hook is running (the driver sets it)
    shared_ro: list = dataclasses.field(default_factory=list)  # inputs every sandbox sees read-only
    breaches: dict = dataclasses.field(default_factory=dict)  # variant -> the last limit it hit
    guard: Callable[[str], None] | None = None  # called before every invocation of a variant (seal check)
    cell_env: dict = dataclasses.field(default_factory=dict)  # variant -> env overrides (its CCACHE_DIR)

    def bench_prefix(self) -> list:
        """`taskset -c <cpus>` when pinning is available."""
        if self.cpus and shutil.which("taskset"):
            return ["taskset", "-c", ",".join(str(c) for c in self.cpus)]
        return []

    def cell_for(self, path: Path | None = None, owner: Path | str | None = None) -> Any:
        """The variant cell a command belongs to: `owner` (a variant name or a path of its cell), else the
        current variant when it owns `path`, else the one variant that owns it (None without cells)."""
        if not self.cells:
            return None
        if isinstance(owner, str) and owner in self.cells:
            return self.cells[owner]
        probe = Path(owner) if owner is not None else Path(path or ".")
        current = self.cells.get(self.current) if self.current else None
        if current is not None and current.owns(probe):
            return current
        owners = [c for c in self.cells.values() if c.owns(probe)]
        if len(owners) == 1:
            return owners[0]
        raise sandbox.SandboxError(f"no single variant owns {probe} (current: {self.current})")

    def scratch(self, worktree: Path) -> Path:
        """The variant's own writable directory for outputs (bound read-write into its sandboxes only)."""
        cell = self.cell_for(owner=worktree)
        if cell is None:
            d = Path(self.workdir) / "scratch" / safe_name(Path(worktree).name)
            d.mkdir(parents=True, exist_ok=True)
            return d
        return cell.scratch

    def private_dir(self, worktree: Path, name: str) -> Path:
        """A directory of the variant's own (outside its tree), e.g. its CMake build tree; the variant's uid
        owns it. Bind it where the preset needs it with `mount`."""
        cell = self.cell_for(owner=worktree)
        who = cell.name if cell is not None else Path(worktree).name
        d = Path(self.workdir) / "cells" / safe_name(who) / name
        if not d.exists():
            d.mkdir(parents=True)
            if cell is not None and self.sandbox is not None:
                self.sandbox.give(cell, d)
        return d

    def mount(self, worktree: Path, src: Path, dest: Path, writable: bool) -> None:
        """Bind src at dest in the variant's sandboxes (replacing an earlier mount at dest)."""
        cell = self.cell_for(owner=worktree)
        if cell is None:
            return
        cell.mounts = [m for m in cell.mounts if str(m[1]) != str(dest)] + [(str(src), str(dest), writable)]

    def run(
        self,
        cmd: str | list,
        cwd: Path,
        timeout: float = 3600,
        pin: bool = False,
        extra_env: dict | None = None,
        owner: Path | str | None = None,
        merge_stderr: bool = True,
    ) -> tuple[int, str]:
        """Run a command (a shell string or argv list); return (returncode, stdout+stderr). With a sandbox,
        in the sandbox of the variant that owns cwd (or `owner`): its cell only, within its limits."""
        argv = ["bash", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        cell = self.cell_for(cwd, owner) if self.sandbox is not None else None
        env = dict(self.env)
        if cell is not None:
            env.update(self.cell_env.get(cell.name, {}))
        env.update(extra_env or {})
        if self.emulate:
            argv = emulate.wrap(argv, cwd, self.emulate, env.get("PATH", ""))
        if pin:
            argv = self.bench_prefix() + argv
        if self.sandbox is None:
            rc, raw, timed_out = run_captured(argv, cwd, env, timeout, merge_stderr=merge_stderr)
            if timed_out:
                return 124, raw.decode(errors="replace") + f"\n[driver] timeout after {timeout}s"
            out = raw.decode(errors="replace")
            if rc < 0:
                out += f"\n[driver] killed by signal {-rc} ({signal_name(-rc)})"
            return rc, out
        if self.guard is not None:
            self.guard(cell.name)
        res = self.sandbox.run(cell, argv, Path(cwd), env, timeout, self.shared_ro, merge_stderr=merge_stderr)
        out = res.output.decode(errors="replace")
        if res.reason:
            self.breaches[cell.name] = res.reason
            out += f"\n[driver] killed: {res.reason}"
            return (124 if res.reason.startswith("timeout") else res.rc or 137), out
        if res.rc < 0:
            out += f"\n[driver] killed by signal {-res.rc} ({signal_name(-res.rc)})"
        return res.rc, out


# ---------------------------------------------------------------- generic preset


class GenericPreset:
    """Commands straight from the project config (`build.commands`, `validate.*`, `benchmark.command`)."""

    @staticmethod
    def prepare(ctx: Ctx) -> None:
        return None

    @staticmethod
    def build(worktree: Path, ctx: Ctx) -> tuple:
        logs = []
        for cmd in ctx.project.get("build", {}).get("commands", []):
            rc, out = ctx.run(cmd, worktree, timeout=float(ctx.project.get("build", {}).get("timeout", 3600)))
            logs.append(f"$ {cmd}\n{out}")
            if rc != 0:
                logs.append(f"[driver] exit status {rc}")
                return False, "\n".join(logs)
        return True, "\n".join(logs)

    @staticmethod
    def validate(worktree: Path, baseline_worktree: Path, ctx: Ctx) -> list:
        val = ctx.project.get("validate", {})
        timeout = float(val.get("timeout", 1800))
        checks = []
        for cmd in val.get("commands", []):
            rc, out = ctx.run(cmd, worktree, timeout=timeout)
            checks.append(
                {"name": cmd, "ok": rc == 0, "detail": tail(out, 1500) + ("" if rc == 0 else f"\nexit {rc}")}
            )
        cmp_cmd = val.get("compare_output")
        if cmp_cmd:
            checks.append(_compare_output(cmp_cmd, worktree, baseline_worktree, ctx, timeout))
        return checks

    @staticmethod
    def bench(worktree: Path, ctx: Ctx) -> dict:
        bench = ctx.project.get("benchmark", {})
        cmd = bench.get("command")
        if not cmd:
            raise BenchError("benchmark.command is empty")
        rc, out = ctx.run(cmd, worktree, timeout=float(bench.get("timeout", 600)), pin=True)
        if rc != 0:
            what = f"killed by {signal_name(-rc)}" if rc < 0 else f"exit status {rc}"
            raise BenchError(f"{what}\n{tail(out, 1500)}")
        return parse_metrics(out)


def _compare_output(cmd: str, worktree: Path, baseline_worktree: Path, ctx: Ctx, timeout: float) -> dict:
    """stdout of `cmd` in the variant must equal stdout in the baseline (cached per run)."""
    name = f"compare_output: {cmd}"
    cache = ctx.state.setdefault("compare_output", {})
    if cmd not in cache:
        cache[cmd] = _stdout_of(cmd, baseline_worktree, ctx, timeout)
    base_rc, base_out = cache[cmd]
    if base_rc != 0:
        return {"name": name, "ok": False, "detail": f"baseline exit {base_rc}: {tail(base_out, 800)}"}
    if Path(worktree).resolve() == Path(baseline_worktree).resolve():
        return {"name": name, "ok": True, "detail": "baseline reference"}
    rc, out = _stdout_of(cmd, worktree, ctx, timeout)
    if rc != 0:
        return {"name": name, "ok": False, "detail": f"exit {rc}: {tail(out, 800)}"}
    if out == base_out:
        return {"name": name, "ok": True, "detail": f"{len(out)} bytes identical"}
    return {"name": name, "ok": False, "detail": _first_difference(base_out, out)}


def _stdout_of(cmd: str, cwd: Path, ctx: Ctx, timeout: float) -> tuple:
    if ctx.sandbox is not None:  # Ctx.run wraps emulation too
        return ctx.run(cmd, cwd, timeout=timeout, merge_stderr=False)
    argv = ["bash", "-c", cmd]
    if ctx.emulate:
        argv = emulate.wrap(argv, cwd, ctx.emulate, ctx.env.get("PATH", ""))
    rc, raw, _ = run_captured(argv, cwd, ctx.env, timeout, merge_stderr=False)
    return rc, raw.decode(errors="replace")


def run_captured(argv: list, cwd: Path, env: dict, timeout: float, merge_stderr: bool) -> tuple:
    """(returncode, stdout bytes, timed_out); on timeout the whole process tree is killed and rc is 124."""
    p = subprocess.Popen(
        argv,
        cwd=str(cwd),
        env=env,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.DEVNULL,
    )
    try:
        raw, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(p.pid)
        raw, _ = p.communicate()
        return 124, raw, True
    return p.returncode, raw, False


def _first_difference(expected: str, got: str) -> str:
    a, b = expected.splitlines(), got.splitlines()
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"line {i + 1} differs: expected {x[:200]!r}, got {y[:200]!r}"
    return f"output length differs: expected {len(a)} lines, got {len(b)}"


def parse_metrics(text: str, cap: int = MAX_METRIC_VALUES) -> dict:
    """`METRIC name=value` lines -> {name: [values...]} in order of appearance; more than `cap` lines is an
    error (BenchError), whatever their names."""
    out: dict = {}
    for n, (name, value) in enumerate(METRIC_RE.findall(text)):
        if n >= cap:
            raise BenchError(f"more than {cap} METRIC lines in one invocation")
        out.setdefault(name, []).append(float(value))
    return out


def declared_metrics(project: dict) -> set:
    """The metric names the baseline's config declares (benchmark.metrics and the target)."""
    bench = project.get("benchmark") or {}
    names = {str(m.get("name")) for m in bench.get("metrics") or [] if isinstance(m, dict) and m.get("name")}
    if bench.get("target"):
        names.add(str(bench["target"]))
    return names


HOOKS_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
HOOK_FUNCTIONS = ("prepare", "build", "validate", "bench")
NOT_HOOKS = ("driver", "paired", "simulate", "sandbox", "gitrun", "pathglob")  # the driver's own modules


def load_preset(project: dict) -> Any:
    """The preset's hook module: `project["preset_hooks"]` (the bot's preset registry sets it) names a module
    shipped next to this file (sky/<name>.py); none: the built-in `GenericPreset`."""
    name = project.get("preset_hooks")
    if not name:
        return GenericPreset
    here = Path(__file__).resolve().parent
    if (
        not isinstance(name, str)
        or not HOOKS_RE.match(name)
        or name in NOT_HOOKS
        or not (here / f"{name}.py").is_file()
    ):
        raise ValueError(f"preset_hooks {name!r} is not a hook module shipped next to driver.py")
    if str(here) not in sys.path:
        sys.path.insert(0, str(here))
    module = importlib.import_module(name)
    missing = [f for f in HOOK_FUNCTIONS if not callable(getattr(module, f, None))]
    if missing:
        raise ValueError(f"preset_hooks {name!r} lacks the hook(s) {', '.join(missing)}")
    return module


# ---------------------------------------------------------------- machine facts


def machine_facts() -> dict:
    """CPU model, feature flags, kernel, nproc, arch from /proc/cpuinfo and platform."""
    cpu, flags = "", []
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, val = line.partition(":")
        key, val = key.strip().lower(), val.strip()
        if key in ("model name", "cpu model", "hardware") and val and not cpu:
            cpu = val
        elif key in ("flags", "features") and val and not flags:
            flags = sorted(set(val.split()))
    if not cpu and shutil.which("lscpu"):
        out = subprocess.run(["lscpu"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
        out = out.decode(errors="replace")
        m = re.search(r"^Model name:\s*(.+)$", out, re.MULTILINE)
        cpu = m.group(1).strip() if m else ""
    return {
        "cpu": cpu or platform.processor() or platform.machine(),
        "flags": flags,
        "kernel": platform.release(),
        "nproc": os.cpu_count() or 1,
        "arch": platform.machine(),
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [],
        "python": platform.python_version(),
    }


# ---------------------------------------------------------------- git


def fetch_source(spec: dict, spec_dir: Path, mirror: Path) -> None:
    """Fill a bare mirror from `source.bundle` (path relative to the spec) or `source.url` (read-only)."""
    source = spec.get("source") or {}
    if not (mirror / "HEAD").exists():
        gitrun.output(None, "init", "-q", "--bare", str(mirror))
    if source.get("bundle"):
        bundle = (spec_dir / source["bundle"]).resolve()
        gitrun.output(mirror, "bundle", "verify", str(bundle))
        gitrun.output(mirror, "fetch", "-q", "--no-tags", str(bundle), "+refs/*:refs/remotes/bundle/*")
    elif source.get("url"):
        url = source["url"]
        gitrun.output(mirror, "fetch", "-q", "--no-tags", url, "+refs/heads/*:refs/remotes/origin/*")
        for sha in spec_shas(spec):
            if not has_commit(mirror, sha):
                gitrun.output(mirror, "fetch", "-q", "--no-tags", url, sha, check=False)
    else:
        raise ValueError("spec.source needs 'bundle' or 'url'")


def spec_shas(spec: dict) -> list:
    return [spec["baseline"]["sha"]] + [c["sha"] for c in spec.get("candidates", [])]


def has_commit(mirror: Path, sha: str) -> bool:
    return gitrun.ok(mirror, "cat-file", "-e", f"{sha}^{{commit}}")


def add_worktree(mirror: Path, path: Path, sha: str, checkout: bool = True) -> None:
    if path.exists():
        gitrun.output(mirror, "worktree", "remove", "--force", str(path), check=False)
        shutil.rmtree(path, ignore_errors=True)
    gitrun.output(mirror, "worktree", "prune")
    no_checkout = [] if checkout else ["--no-checkout"]
    gitrun.output(mirror, "worktree", "add", "-q", "--detach", *no_checkout, str(path), sha)


def overlay_protected(worktree: Path, baseline_sha: str, sha: str, patterns: list) -> list:
    """Restore the baseline's version of protected files the candidate changed; return restored paths."""
    if not patterns or sha == baseline_sha:
        return []
    changed = gitrun.output(worktree, "diff", "--name-only", "-z", "--no-renames", baseline_sha, sha).split(
        "\0"
    )
    restored = []
    for path in (p for p in changed if p and pathglob.protected(p, patterns)):
        if gitrun.ok(worktree, "cat-file", "-e", f"{baseline_sha}:{path}"):
            gitrun.output(worktree, "checkout", "-q", baseline_sha, "--", path)
        else:
            gitrun.output(worktree, "rm", "-q", "-f", "--cached", "--ignore-unmatch", "--", path)
            (worktree / path).unlink(missing_ok=True)
        restored.append(path)
    return restored


# ---------------------------------------------------------------- build strategy


def ccache_file_url(path: Path) -> str:
    """A ccache `file:` remote-storage URL: percent-encoded, since CCACHE_REMOTE_STORAGE separates its
    backends by spaces (a checkout under "/tmp/my work" must not split the URL; ccache decodes %20)."""
    return "file:" + urllib.parse.quote(str(path))


def ccache_setup(workdir: Path) -> dict:
    """Env that routes cc/gcc/g++/clang through ccache (masquerade dir on PATH); {} without ccache."""
    ccache = shutil.which("ccache")
    if not ccache:
        return {}
    masq = workdir / "ccache-bin"
    masq.mkdir(parents=True, exist_ok=True)
    for name in ("cc", "gcc", "c++", "g++", "clang", "clang++"):
        link = masq / name
        if shutil.which(name) and not link.exists():
            link.symlink_to(ccache)
    return {
        "PATH": f"{masq}{os.pathsep}{os.environ.get('PATH', '')}",
        "CCACHE_DIR": os.environ.get("CCACHE_DIR") or str(workdir / "ccache"),
        "CCACHE_BASEDIR": str(workdir),
        "CCACHE_NOHASHDIR": "1",
        "CCACHE_SLOPPINESS": "include_file_mtime,include_file_ctime,time_macros,pch_defines",
        "CCACHE_MAXSIZE": os.environ.get("CCACHE_MAXSIZE", "5G"),
        "CCACHE_BIN": ccache,
    }


HARDWARE_ONLY_ALPHA = 0.1  # = bot/experiments/stats/policy.py's: the level factor of a wall-only verdict
SOURCE_SUFFIXES = (".c", ".cc", ".cpp", ".cxx", ".c++", ".m", ".mm", ".cu", ".s", ".S", ".f90", ".rs", ".go")


def is_cmake_tree(tree: Path) -> bool:
    return any(tree.glob("CMakeCache.txt")) or any(tree.glob("*/CMakeCache.txt"))


def changed_files(mirror: Path, base_sha: str, sha: str) -> list:
    """[(status letter, path)] between two commits (no rename detection)."""
    out = gitrun.output(mirror, "diff", "--name-status", "-z", "--no-renames", base_sha, sha).split("\0")
    return [(out[i][:1], out[i + 1]) for i in range(0, len(out) - 1, 2) if out[i]]


def choose_strategy(requested: str, has_ccache: bool, cmake_tree: bool, changes: list) -> tuple:
    """(strategy, reason) for one candidate; strategy is "incremental", "ccache" or "clean".

    auto: copy the baseline's built tree (incremental) when that is safe whatever the build system's
    dependency tracking: not a CMake tree (its caches hold absolute paths) and the candidate only modifies
    translation units, whose new mtimes force their rebuild. Otherwise a fresh worktree, through ccache
    when available (ccache hashes the preprocessed input, so headers can never go stale).
    """
    fresh = "ccache" if has_ccache else "clean"
    if requested == "clean":
        return "clean", "requested"
    if requested == "ccache":
        return (fresh, "requested" if has_ccache else "ccache not installed")
    if cmake_tree:
        return fresh, "CMake build tree (absolute paths) cannot be copied"
    if requested == "incremental":
        return "incremental", "requested"
    others = [path for status, path in changes if status != "M" or not path.endswith(SOURCE_SUFFIXES)]
    if others:
        return fresh, f"changes beyond translation units ({others[0]}{', ...' if len(others) > 1 else ''})"
    return "incremental", "only translation units modified"


def make_writable(tree: Path) -> None:
    """Owner write bits back on a tree copied from the sealed (read-only) baseline."""
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in [".", *dirnames, *filenames]:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if not stat.S_ISLNK(st.st_mode) and not st.st_mode & 0o200:
                os.chmod(p, stat.S_IMODE(st.st_mode) | 0o200)


def copy_built_tree(src: Path, dst: Path) -> None:
    """Copy a built worktree (minus its .git link) keeping mtimes, so unchanged outputs stay up to date."""
    for entry in src.iterdir():
        if entry.name == ".git":
            continue
        target = dst / entry.name
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, target, symlinks=True, dirs_exist_ok=True, copy_function=shutil.copy2)
        else:
            shutil.copy2(entry, target, follow_symlinks=False)


def prepare_candidate_tree(
    mirror: Path, path: Path, sha: str, base_tree: Path, base_sha: str, strategy: str
) -> None:
    if strategy != "incremental":
        add_worktree(mirror, path, sha)
        return
    add_worktree(mirror, path, base_sha, checkout=False)
    copy_built_tree(base_tree, path)
    make_writable(path)  # the baseline is sealed (read-only): its copy is the candidate's to change
    gitrun.output(path, "reset", "-q")  # index := baseline, stat of the copied files
    gitrun.output(path, "checkout", "-q", "-f", "--detach", sha)  # rewrites only differing files (new mtimes)


# ---------------------------------------------------------------- the run


class Driver:
    def __init__(self, spec: dict, spec_path: Path, out: Path, workdir: Path):
        self.spec, self.spec_dir, self.out, self.workdir = spec, spec_path.parent, out, workdir
        self.project = spec.get("project") or {}
        self.t0 = time.monotonic()
        self.result = {
            "schema": SCHEMA,
            "arch": spec.get("arch"),
            "run_id": spec.get("run_id"),
            "complete": False,
            "machine": machine_facts(),
            "variants": {},
            "schedule": [],
            "timings": {
                "fetch_s": 0.0,
                "prepare_s": 0.0,
                "build_s": 0.0,
                "validate_s": 0.0,
                "simulate_s": 0.0,
                "bench_s": 0.0,
                "total_s": 0.0,
            },
            "errors": [],
        }
        self.names = [spec["baseline"]["name"]] + [c["name"] for c in spec.get("candidates", [])]
        self.shas = dict(zip(self.names, spec_shas(spec), strict=True))
        for name in self.names:
            self.result["variants"][name] = {
                "sha": self.shas[name],
                "status": "pending",
                "build": {"ok": False, "seconds": 0.0, "log_tail": ""},
                "validation": {"ok": False, "checks": []},
                "samples": {},
            }
        self.mirror = workdir / "mirror.git"
        self.trees = {name: workdir / "wt" / safe_name(name) for name in self.names}
        self.ctx: Ctx | None = None
        self.preset: Any = None
        self.seconds: dict = {}  # seconds per benchmark invocation, per variant
        self.box: Any = None  # sandbox.Sandbox, set in phase_prepare unless the sandbox is off
        self.plan: dict = {}
        self.sealed: dict = {}  # {"roots", "digest", "signature"} once the baseline is sealed

    @property
    def baseline(self) -> str:
        return self.names[0]

    def variant(self, name: str) -> dict:
        return self.result["variants"][name]

    def write(self, announce: bool = False) -> None:
        """Atomically rewrite result.json; announce=True also prints it as an AUTORESEARCH_PARTIAL line."""
        self.result["timings"]["total_s"] = round(time.monotonic() - self.t0, 3)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".result-", dir=str(self.out.parent))
        with os.fdopen(fd, "w") as f:
            json.dump(self.result, f, indent=1)
        os.replace(tmp, self.out)
        if announce:
            print("AUTORESEARCH_PARTIAL " + json.dumps(self.result, separators=(",", ":")), flush=True)

    def error(self, msg: str) -> None:
        log(f"ERROR {msg}")
        self.result["errors"].append(msg)

    def run(self) -> dict:
        try:
            self.phase_fetch()
            self.phase_prepare()
            self.phase_build()
            self.note_blind_spots()
            if self.spec.get("warm_only"):
                if not self.spec.get("emulate"):  # an emulated arch is never simulated
                    self.phase_warm_simulation_build()
            elif self.spec.get("emulate"):  # correctness only: timing and simulation need the real machine
                self.phase_validate()
                self.result["emulated"] = dict(self.spec["emulate"])
                self.result["simulation"] = {"available": False, "reason": "emulated: correctness only"}
                for v in self.result["variants"].values():
                    v["status"] = "ok" if v["status"] == "pending" else v["status"]
            else:
                self.phase_validate()
                self.measure_roofline()
                self.phase_bench()
                self.check_exercised()
                self.phase_simulate()
            self.final_seal_check()
        except Tampered as e:
            self.tampered(str(e))
        except Exception as e:  # noqa: BLE001  (recorded, never lost)
            self.error(f"{type(e).__name__}: {e}")
        for v in self.result["variants"].values():
            if v["status"] == "pending":
                v["status"] = "bench_failed"
                v.setdefault("error", "not reached (run aborted)")
        self.result["complete"] = True
        self.write()
        log(
            f"done in {self.result['timings']['total_s']}s: "
            + ", ".join(f"{n}={v['status']}" for n, v in self.result["variants"].items())
        )
        return self.result

    def tampered(self, why: str) -> None:
        """The sealed baseline changed: nothing measured is trusted; every candidate is rejected."""
        self.error(why)
        self.result["tampered"] = why
        for name in self.names[1:]:
            v = self.variant(name)
            v["status"] = "bench_failed" if v["status"] in ("ok", "pending") else v["status"]
            v["error"] = f"{why}; the run is not trusted"
            v["samples"] = {}
            v.pop("pairs", None)
            v.pop("stop", None)
            v.pop("simulated", None)

    def simulating(self) -> bool:
        sim_cfg = self.project.get("simulate") or {}
        primary = str((self.project.get("decision") or {}).get("primary", "both"))
        return (
            bool(getattr(self.preset, "simulate_build", None))
            and primary != "wall"
            and sim_cfg.get("enabled") is not False
        )

    def phase_fetch(self) -> None:
        t = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        log(f"fetching source into {self.mirror}")
        fetch_source(self.spec, self.spec_dir, self.mirror)
        for name in self.names:
            if not has_commit(self.mirror, self.shas[name]):
                self.fail(name, "build_failed", f"commit {self.shas[name]} not found in source")
        self.result["timings"]["fetch_s"] = round(time.monotonic() - t, 3)
        if self.variant(self.baseline)["status"] != "pending":
            raise RuntimeError("baseline commit is missing")
        add_worktree(self.mirror, self.trees[self.baseline], self.shas[self.baseline])
        self.write(announce=True)

    def make_sandbox(self) -> Any:
        """The sandbox every candidate-code invocation runs in (AUTORESEARCH_SANDBOX: unset = required with
        this host's defaults, a JSON plan from the local executor, or "off" = unsandboxed); SandboxError when
        it is required and cannot be built here: nothing is run then."""
        raw = os.environ.get(SANDBOX_ENV, "")
        if raw.strip().lower() == "off":
            self.result["sandbox"] = {"enabled": False, "reason": f"{SANDBOX_ENV}=off (local_trust: all)"}
            return None
        plan = json.loads(raw) if raw.strip() else {}
        if not isinstance(plan, dict):
            raise sandbox.SandboxError(f"{SANDBOX_ENV} must be a JSON object or 'off'")
        limits = dict(plan.get("limits") or {})
        limits.update(self.project.get("limits") or {})
        plan["limits"] = limits
        ro = list(plan.get("ro") or [])
        exe = Path(sys.executable).absolute()
        for p in (exe.parent.parent, exe.resolve().parent.parent):  # the interpreter presets may call
            if (p / "bin").is_dir() and str(p) != "/usr" and str(p) not in ro and str(p) != "/":
                ro.append(str(p))
        plan["ro"] = ro
        self.plan = plan
        box = sandbox.Sandbox(plan)
        box.write_etc(self.workdir / "sandbox-etc")
        lim = dataclasses.asdict(box.limits)
        self.result["sandbox"] = {"enabled": True, "mode": box.mode, "limits": lim}
        log(f"sandbox: bubblewrap {box.mode} mode, one per invocation, limits {lim}")
        return box

    def make_cells(self) -> None:
        """One cell per variant: its tree, a scratch dir, its own uid (root mode) and ccache dir."""
        ctx = self.ctx
        store = self.workdir / "ccache-store"
        own = self.workdir / "ccache-own"
        for i, name in enumerate(self.names):
            scratch = self.workdir / "scratch" / safe_name(name)
            scratch.mkdir(parents=True, exist_ok=True)
            cell = sandbox.Cell(name, self.box.uid_for(i), self.trees[name], scratch)
            ctx.cells[name] = cell
            self.box.give(cell, scratch)
            if ctx.ccache_env:
                # its own ccache dir, bound at one path for all (the same environment for every variant); the
                # baseline's build also fills a batch store, which candidates see read-only
                cdir = self.workdir / "ccache" / safe_name(name)
                cdir.mkdir(parents=True, exist_ok=True)
                self.box.give(cell, cdir)
                cell.mounts.append((str(cdir), str(own), True))
                if i == 0:
                    store.mkdir(parents=True, exist_ok=True)
                    self.box.give(cell, store)
                cell.mounts.append((str(store), str(store), i == 0))
                remote = (
                    [os.environ["CCACHE_REMOTE_STORAGE"]] if os.environ.get("CCACHE_REMOTE_STORAGE") else []
                )
                env = {
                    "CCACHE_DIR": str(own),
                    "CCACHE_REMOTE_STORAGE": " ".join([*remote, ccache_file_url(store)]),
                }
                ctx.cell_env[name] = env
        for p in self.plan.get("baseline_rw") or []:  # the warm-only run's shared compiler cache store
            ctx.cells[self.baseline].mounts.append((str(p), str(p), True))
        ctx.shared_ro.extend(str(p) for p in self.plan.get("shared_ro") or [])
        if ctx.ccache_env:
            ctx.shared_ro.append(str(self.workdir / "ccache-bin"))
        ctx.guard = self.guard

    def seal_baseline(self) -> None:
        """The baseline is built (before any candidate code ran): make its tree and its private dirs
        root-owned and read-only, and record their digest; every later baseline invocation checks it."""
        cell = self.ctx.cells[self.baseline]
        roots = [str(cell.tree)] + [src for src, _dest, _rw in cell.mounts if not self._is_store(src)]
        t = time.monotonic()
        dig = sandbox.seal(roots)
        cell.tree_writable = False
        cell.mounts = [(src, dest, rw and self._is_store(src)) for src, dest, rw in cell.mounts]
        self.sealed = {"roots": roots, "digest": dig, "signature": sandbox.signature(roots)}
        self.result["sandbox"]["sealed"] = {
            "digest": dig,
            "roots": [os.path.relpath(r, self.workdir) for r in roots],
            "seconds": round(time.monotonic() - t, 3),
        }
        log(f"{self.baseline}: sealed (sha256 {dig[:16]}, {len(roots)} trees)")

    def _is_store(self, src: str) -> bool:
        return str(src) in [str(p) for p in self.plan.get("baseline_rw") or []]

    def guard(self, name: str) -> None:
        """Before an invocation of the sealed baseline: its trees must be exactly as sealed."""
        if name != self.baseline or not self.sealed:
            return
        if sandbox.signature(self.sealed["roots"]) != self.sealed["signature"]:
            raise Tampered("tampering: the sealed baseline's files changed before a baseline invocation")

    def final_seal_check(self) -> None:
        if self.sealed and sandbox.digest(self.sealed["roots"]) != self.sealed["digest"]:
            raise Tampered("tampering: the sealed baseline's content changed during the run")

    def make_ctx(self) -> Ctx:
        bench = self.project.get("benchmark", {})
        threads = int(bench.get("threads") or 0) or (os.cpu_count() or 1)
        allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        cpus = allowed[:threads] if threads <= len(allowed) else []
        cc_env = ccache_setup(self.workdir) if self.project.get("build", {}).get("ccache", True) else {}
        if self.box is not None:  # an explicit environment: nothing of the driver's own
            env = {k: os.environ[k] for k in SAFE_ENV_KEYS if k in os.environ}
            env.update(
                PATH=os.environ.get("PATH", "/usr/bin:/bin"),
                HOME="/tmp",
                TMPDIR="/tmp",
                USER="autoresearch",
                LOGNAME="autoresearch",
            )
            env.setdefault("LANG", "C.UTF-8")
        else:
            env = dict(os.environ)
        env.update({k: v for k, v in cc_env.items() if k != "CCACHE_BIN"})
        for key in ("OMP_NUM_THREADS", "THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[key] = str(threads)
        env["AUTORESEARCH_THREADS"] = str(threads)
        if self.spec.get("emulate"):
            env.update(emulate.env(self.spec["emulate"], self.workdir))
        return Ctx(
            workdir=self.workdir,
            project=self.project,
            threads=threads,
            env=env,
            ccache_env=cc_env,
            cpus=cpus,
            seed=int(self.spec.get("seed", 1)),
            baseline_worktree=self.trees[self.baseline],
            emulate=self.spec.get("emulate") or None,
            baseline_sha=self.shas[self.baseline],
            sandbox=self.box,
        )

    def phase_prepare(self) -> None:
        t = time.monotonic()
        self.box = self.make_sandbox()
        self.ctx = self.make_ctx()
        if self.box is not None:
            self.make_cells()
            self.box.give(self.ctx.cells[self.baseline], self.trees[self.baseline])
        self.preset = load_preset(self.project)
        log(
            f"preset {self.project.get('preset', 'generic')}, threads {self.ctx.threads}, "
            f"cpus {self.ctx.cpus}, ccache {'on' if self.ctx.ccache_env else 'off'}"
        )
        self.preset.prepare(self.ctx)
        self.result["timings"]["prepare_s"] = round(time.monotonic() - t, 3)
        self.write()

    def fail(self, name: str, status: str, detail: str) -> None:
        v = self.variant(name)
        v["status"] = status
        reason = self.ctx.breaches.pop(name, None) if self.ctx is not None else None
        if reason:
            v["limit"] = reason
            detail = f"{reason}: {detail}"
        v["error"] = tail(detail, 1500)
        lines = [ln for ln in detail.splitlines() if ln.strip()]
        log(
            f"{name}: {status}: "
            f"{lines[0] if status == 'bench_failed' and lines else (lines[-1] if lines else '')}"
        )

    def phase_build(self) -> None:
        t = time.monotonic()
        protected = self.project.get("paths", {}).get("protected", [])
        requested = str(self.project.get("build", {}).get("strategy", "auto"))
        if requested not in STRATEGIES:
            self.error(f"unknown build.strategy {requested!r}; using auto")
            requested = "auto"
        cmake_tree = False
        for name in self.names:
            if self.variant(name)["status"] != "pending":
                continue
            if name == self.baseline:
                ok, seconds, text = self.build_one(name)
                cmake_tree = is_cmake_tree(self.trees[name])
                if not ok:
                    self.write()
                    raise RuntimeError("baseline build failed")
                if self.simulating() and not self.spec.get("warm_only"):
                    # the baseline's simulation build too, before any candidate code runs (then sealed)
                    built, _ = self.simulation_build(name, self.preset.simulate_build)
                    log(f"{name}: simulation build {'ok' if built else 'FAILED'}")
                if self.box is not None and not self.spec.get("warm_only"):
                    self.seal_baseline()
                continue
            try:
                changes = changed_files(self.mirror, self.shas[self.baseline], self.shas[name])
                strategy, why = choose_strategy(requested, bool(self.ctx.ccache_env), cmake_tree, changes)
                log(f"{name}: {len(changes)} changed files; build strategy {strategy} ({why})")
                prepare_candidate_tree(
                    self.mirror,
                    self.trees[name],
                    self.shas[name],
                    self.trees[self.baseline],
                    self.shas[self.baseline],
                    strategy,
                )
                restored = overlay_protected(
                    self.trees[name], self.shas[self.baseline], self.shas[name], protected
                )
            except Exception as e:  # noqa: BLE001
                self.variant(name)["build"].update({"ok": False, "log_tail": str(e)[-LOG_TAIL:]})
                self.fail(name, "build_failed", f"worktree: {e}")
                continue
            if restored:
                log(f"{name}: restored baseline copies of protected files: {', '.join(restored)}")
                self.variant(name)["protected_restored"] = restored
            if self.box is not None:  # git is done with it: from now on the tree is the candidate's
                make_writable(self.trees[name])
                self.box.give(self.ctx.cells[name], self.trees[name])
            self.build_one(name, strategy, why)
        self.result["timings"]["build_s"] = round(time.monotonic() - t, 3)
        self.write(announce=True)

    def build_one(self, name: str, strategy: str = "fresh", reason: str = "baseline") -> tuple:
        log(f"{name}: building")
        t = time.monotonic()
        self.ctx.current = name
        try:
            ok, text = self.preset.build(self.trees[name], self.ctx)
        except Tampered:
            raise
        except Exception as e:  # noqa: BLE001
            ok, text = False, f"{type(e).__name__}: {e}"
        seconds = round(time.monotonic() - t, 3)
        self.variant(name)["build"] = {
            "ok": bool(ok),
            "seconds": seconds,
            "log_tail": tail(text),
            "strategy": strategy,
            "strategy_reason": reason,
        }
        log(f"{name}: build {'ok' if ok else 'FAILED'} in {seconds}s")
        if not ok:
            self.fail(name, "build_failed", tail(text, 1500))
        self.write()
        return ok, seconds, text

    def phase_validate(self) -> None:
        t = time.monotonic()
        for name in self.names:
            if self.variant(name)["status"] != "pending":
                continue
            self.ctx.current = name
            try:
                checks = list(self.preset.validate(self.trees[name], self.trees[self.baseline], self.ctx))
            except Tampered:
                raise
            except Exception as e:  # noqa: BLE001
                checks = [{"name": "validate", "ok": False, "detail": f"{type(e).__name__}: {e}"}]
            ok = all(c.get("ok") for c in checks)
            self.variant(name)["validation"] = {"ok": ok, "checks": checks}
            log(f"{name}: validation {'ok' if ok else 'FAILED'} ({len(checks)} checks)")
            if not ok:
                bad = next(c for c in checks if not c.get("ok"))
                self.fail(name, "validation_failed", f"{bad.get('name')}: {bad.get('detail', '')}")
            self.write()
        self.result["timings"]["validate_s"] = round(time.monotonic() - t, 3)
        self.write(announce=True)
        if self.variant(self.baseline)["status"] != "pending":
            raise RuntimeError("baseline failed validation; nothing to compare against")

    def measure_roofline(self) -> None:
        """result["roofline"]: the triad bandwidth and FMA peak at the benchmark's threads (~2 s)."""
        try:
            rec = roofline.measure(self.ctx.threads if self.ctx else 1, workdir=self.workdir)
        except Exception as e:  # noqa: BLE001  (a diagnosis, never a failed run)
            rec = {"ok": False, "error": f"{type(e).__name__}: {e}"[:300]}
        facts = getattr(self.preset, "model_facts", None)
        if facts and rec.get("ok"):
            try:
                rec.update(facts(self.ctx))
            except Exception as e:  # noqa: BLE001
                rec["model_error"] = f"{type(e).__name__}: {e}"[:300]
        self.result["roofline"] = rec
        log(
            f"roofline: {rec['bandwidth_gbs']} GB/s triad, {rec['peak_gflops']} GFLOP/s FMA at "
            f"{rec['threads']} threads"
            if rec.get("ok")
            else f"roofline not measured: {rec.get('error')}"
        )

    def check_exercised(self) -> None:
        """variant["exercised"]: breakpoint hits of each changed function in one short native run
        (sky/exercised.py); only where the preset names a native command (exercise_command)."""
        command = getattr(self.preset, "exercise_command", None)
        if command is None:
            return
        base = self.shas[self.baseline]
        with tempfile.TemporaryDirectory(prefix="fnscan-") as tmp:
            args = exercised.diff_args(Path(tmp) / "attributes")
            for name in self.names[1:]:
                if self.variant(name)["status"] != "ok":
                    continue
                try:
                    diff = gitrun.output(
                        self.mirror, *args, "diff", "-U0", "--no-renames", base, self.shas[name]
                    )
                    names = exercised.functions(diff)
                    self.ctx.current = name
                    # the candidate's own binary: in its sandbox, like every other invocation of it
                    runner = (
                        (
                            lambda a, cwd, env, timeout, who=name: self.ctx.run(
                                a, cwd, timeout=timeout, owner=who
                            )
                        )
                        if self.box is not None
                        else None
                    )
                    rec = exercised.count_calls(
                        [str(a) for a in command(self.trees[name], self.ctx)],
                        self.trees[name],
                        dict(self.ctx.env),
                        names,
                        timeout=600,
                        runner=runner,
                    )
                except Exception as e:  # noqa: BLE001  (a diagnosis, never a failed run)
                    rec = {"ok": False, "error": f"{type(e).__name__}: {e}"[:300]}
                self.variant(name)["exercised"] = rec
                what = rec.get("functions") if rec.get("ok") else rec.get("error")
                log(f"{name}: changed functions' hits in a native run: {what}")
        self.write()

    def note_regime(self, info: dict) -> None:
        """info["regime"]: the measured model's bytes against the simulated last-level cache. Weights at least
        4x the LL are DRAM-resident in the simulation, as in real decode; fewer run from the simulated cache,
        so the simulated cost leaves out the memory traffic that bounds decode on real models."""
        facts = getattr(self.preset, "model_facts", None)
        if facts is None:
            return
        try:
            model = int(facts(self.ctx)["model_bytes"])
        except Exception as e:  # noqa: BLE001
            info["regime"] = {"error": f"{type(e).__name__}: {e}"[:200]}
            return
        ll = int(simulate.CACHE["LL"][0])
        resident = model >= 4 * ll
        info["regime"] = {"model_bytes": model, "ll_bytes": ll, "dram_resident": resident}
        log(
            f"simulated regime: model {model / 2**20:.1f} MiB vs simulated LL {ll / 2**20:.0f} MiB: "
            + (
                "DRAM-resident (>= 4x the LL)"
                if resident
                else "cache-resident (< 4x the LL): no DRAM streaming"
            )
        )

    def note_blind_spots(self) -> None:
        """variant["blind"]: what of each candidate's diff the simulated tier cannot see (blindspots.py)."""
        base = self.shas[self.baseline]
        for name in self.names[1:]:
            try:
                diff = gitrun.output(self.mirror, "diff", "-U0", "--no-renames", base, self.shas[name])
            except Exception as e:  # noqa: BLE001  (recorded: the bot then scans the function diff)
                self.variant(name)["blind_error"] = str(e)[:300]
                continue
            spots = blindspots.scan(diff)
            self.variant(name)["blind"] = spots
            if spots:
                log(f"{name}: the simulator is blind to: {blindspots.summary(spots)}")

    def phase_simulate(self) -> None:
        """One invocation per variant under cachegrind (sky/simulate.py); recorded as variant["simulated"]."""
        t = time.monotonic()
        sim_cfg = self.project.get("simulate") or {}
        primary = str((self.project.get("decision") or {}).get("primary", "both"))
        info: dict = {
            "tool": simulate.TOOL,
            "cache": simulate.cache_description(),
            "weights": simulate.WEIGHTS,
        }
        self.result["simulation"] = info
        if primary == "wall" or sim_cfg.get("enabled") is False:
            info.update(
                available=False, reason="turned off (decision.primary: wall or simulate.enabled: false)"
            )
            return
        ok, why = simulate.available()
        if not ok:
            info.update(available=False, reason=why)
            log(f"simulation skipped: {why}")
            self.write()
            return
        info.update(available=True, valgrind=why)
        self.note_regime(info)
        build_sim = getattr(self.preset, "simulate_build", None)
        sim_command = getattr(self.preset, "simulate_command", None)
        isa_of = getattr(self.preset, "simulate_isa", None)
        info["isa"] = isa_of(self.ctx) if isa_of else "the benchmark's own build"
        env = dict(self.ctx.env, AUTORESEARCH_SIMULATE="1")
        for name in self.names:
            if self.variant(name)["status"] != "ok":
                continue
            # after the wall tier (a hanging candidate already failed there): valgrind with the cache
            # simulation runs ~50x slower than native, so 100x the slowest invocation, at least a minute
            timeout = float(sim_cfg.get("timeout") or max(60.0, 100.0 * max(self.seconds.get(name) or [0.6])))
            tree = self.trees[name]
            if build_sim:
                done = self.variant(name).get("simulated_build")
                if done and done.get("ok"):  # the baseline's, built before any candidate code ran
                    built, text = True, ""
                else:
                    built, text = self.simulation_build(name, build_sim)
                if not built:
                    self.variant(name)["simulated"] = {
                        "ok": False,
                        "error": "simulation build failed\n" + tail(text, 1200),
                    }
                    log(f"{name}: simulation build FAILED")
                    self.write()
                    continue
            cmd = (
                sim_command(tree, self.ctx)
                if sim_command
                else (sim_cfg.get("command") or self.project.get("benchmark", {}).get("command"))
            )
            log(f"{name}: simulating ({simulate.TOOL})")
            # one path for every variant (a symlink): the same environment and stack layout, so the same cache
            # behaviour; with per-variant paths an A/A pair differed by 1.3e-4 in estimated cycles
            link = self.same_path(tree, "simulated-tree")
            out_dir = self.workdir / "sim" / "out"
            self.ctx.current = name
            cell = self.ctx.cells.get(name)
            if cell is None:
                rec = simulate.run(
                    cmd, link, dict(env, PWD=str(link)), out_dir, timeout=timeout, kill=kill_tree
                )
            else:
                rec = self.simulate_in_cell(cell, cmd, link, out_dir, dict(env, PWD=str(link)), timeout)
            rec["isa"] = info["isa"]
            self.variant(name)["simulated"] = rec
            log(
                f"{name}: simulated in {rec['seconds']}s: "
                + (
                    f"{rec['estimated_cycles']:,} estimated cycles, {rec['instructions']:,} instructions"
                    if rec["ok"]
                    else rec.get("error", "").splitlines()[0]
                )
            )
            self.write()
        self.result["timings"]["simulate_s"] = round(time.monotonic() - t, 3)
        self.write(announce=True)

    def simulate_in_cell(
        self, cell: Any, cmd: Any, link: Path, out_dir: Path, env: dict, timeout: float
    ) -> dict:
        """simulate.run in the variant's sandbox: its tree at `link`, a fresh output dir of its own at
        `out_dir` (the same paths for every variant), cost files read back as regular files only."""
        host = cell.scratch / "sim-out"
        if host.exists():
            shutil.rmtree(host)
        host.mkdir()
        self.box.give(cell, host)
        saved = list(cell.mounts)
        cell.mounts += [(str(cell.tree), str(link), cell.tree_writable), (str(host), str(out_dir), True)]

        def runner(argv: list, cwd: Path, env: dict, timeout: float) -> tuple:
            self.guard(cell.name)
            res = self.box.run(cell, argv, Path(cwd), env, timeout, self.ctx.shared_ro)
            return (124 if (res.reason or "").startswith("timeout") else res.rc), res.output, res.reason

        try:
            return simulate.run(
                cmd,
                link,
                env,
                out_dir,
                timeout=timeout,
                runner=runner,
                host_dir=host,
                read=lambda p: sandbox.read_regular(p, 512 << 20),
            )
        finally:
            cell.mounts = saved
            shutil.rmtree(host, ignore_errors=True)

    def phase_warm_simulation_build(self) -> None:
        """Warm-only spec (the local executor's shared compiler cache, filled from the baseline alone): after
        the baseline's own build, its simulation build too, so later runs hit both; nothing is measured."""
        sim_cfg = self.project.get("simulate") or {}
        primary = str((self.project.get("decision") or {}).get("primary", "both"))
        build_sim = getattr(self.preset, "simulate_build", None)
        base = self.baseline
        if build_sim and primary != "wall" and sim_cfg.get("enabled") is not False:
            built, _ = self.simulation_build(base, build_sim)
            log(f"{base}: simulation build {'ok' if built else 'FAILED'} (warm-only)")
        if self.variant(base)["status"] == "pending":
            self.variant(base)["status"] = "ok"

    def simulation_build(self, name: str, build_sim: Callable) -> tuple:
        """The preset's simulation build of one variant, recorded as variant["simulated_build"]."""
        bt = time.monotonic()
        self.ctx.current = name
        try:
            built, text = build_sim(self.trees[name], self.ctx)
        except Tampered:
            raise
        except Exception as e:  # noqa: BLE001
            built, text = False, f"{type(e).__name__}: {e}"
        self.variant(name)["simulated_build"] = {
            "ok": bool(built),
            "seconds": round(time.monotonic() - bt, 3),
            "log_tail": tail(text, 1500),
        }
        return built, text

    def same_path(self, tree: Path, link_name: str) -> Path:
        """workdir/<link_name>, a symlink pointing at `tree` now: one path for every variant."""
        link = self.workdir / link_name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(Path(tree).resolve(), target_is_directory=True)
        return link

    def phase_bench(self) -> None:
        """Paired wall-time design with planned looks (sky/paired.py): pairs (baseline, candidate) in random
        order, single invocations; each candidate stops at the first decisive look or at max_pairs."""
        t = time.monotonic()
        bench = self.project.get("benchmark", {})
        dec = self.project.get("decision") or {}
        rounds, reps = int(bench.get("rounds", 4)), int(bench.get("repetitions", 3))
        max_pairs = int(bench.get("max_pairs") or rounds * reps)
        min_pairs = min(int(bench.get("min_pairs") or 10), max_pairs)
        warmup, target = int(bench.get("warmup", 1)), bench.get("target")
        hib = next(
            (bool(m.get("higher_is_better")) for m in bench.get("metrics", []) if m.get("name") == target),
            False,
        )
        alpha, min_effect = float(dec.get("alpha", 0.05)), float(dec.get("min_effect", 0.02))
        looks = paired.look_schedule(min_pairs, max_pairs)
        live = [n for n in self.names if self.variant(n)["status"] == "pending"]
        # Bonferroni over looks AND candidates: a stop is a verdict the bot keeps; a shard of a fan-out
        # uses the whole wave's candidate count (spec "family"), so every shard keeps the same rule
        family = max(1, len(live) - 1, int(self.spec.get("family") or 0))
        a = alpha / (len(looks) * family)
        self.result["paired"] = {
            "min_pairs": looks[0],
            "max_pairs": looks[-1],
            "looks": looks,
            "alpha": alpha,
            "family": family,
            "alpha_per_look": a,
            "min_effect": min_effect,
            "target": target,
            "higher_is_better": hib,
        }
        rng = random.Random(int(self.spec.get("seed", 1)))
        for name in live:
            for i in range(warmup):
                self.invoke(name, f"warmup {i}", target, keep=False)
        if self.variant(self.baseline)["status"] != "pending":
            raise RuntimeError("baseline benchmark failed; stopping")
        active = [n for n in live if n != self.baseline and self.variant(n)["status"] == "pending"]
        if not active:  # nothing to compare: the baseline alone, min_pairs times
            for i in range(looks[0]):
                self.invoke(self.baseline, f"run {i}", target)
        rnd = 0
        while active:
            order = list(active)
            rng.shuffle(order)
            for c in order:
                base_first = rng.random() < 0.5
                got = {}
                for who in [self.baseline, c] if base_first else [c, self.baseline]:
                    got[who] = self.invoke(who, f"pair {rnd}", target)
                    if got[who] is None:
                        break
                if self.variant(self.baseline)["status"] != "pending":
                    raise RuntimeError("baseline benchmark failed; stopping")
                if got.get(c) is None:
                    active.remove(c)
                    continue
                v = self.variant(c)
                pairs = v.setdefault("pairs", [])
                pairs.append(
                    {
                        "first": "baseline" if base_first else "candidate",
                        "base": {m: statistics.median(x) for m, x in got[self.baseline].items()},
                        "cand": {m: statistics.median(x) for m, x in got[c].items()},
                    }
                )
                if len(pairs) in looks:
                    d = [
                        paired.log_ratio(p["base"][target], p["cand"][target], hib)
                        for p in pairs
                        if target in p["base"] and target in p["cand"]
                    ]
                    # a candidate the simulator is blind to is decided by this tier alone, at a stricter
                    # level (the bot's policy.HARDWARE_ONLY_ALPHA): stop it only where that level decides
                    mid, lo, hi = paired.median_ci(d, a * HARDWARE_ONLY_ALPHA if v.get("blind") else a)
                    outcome = paired.verdict(mid, lo, hi, min_effect)
                    v["stop"] = {
                        "pairs": len(pairs),
                        "look": looks.index(len(pairs)) + 1,
                        "reason": outcome or ("max_pairs" if len(pairs) >= looks[-1] else "continue"),
                        "median_log_ratio": mid,
                        "ci": [lo, hi],
                    }
                    log(
                        f"{c}: look {v['stop']['look']} at {len(pairs)} pairs: speedup {math.exp(mid):.4f} "
                        f"[{_exp(lo):.4f}, {_exp(hi):.4f}] -> {v['stop']['reason']}"
                    )
                    if outcome or len(pairs) >= looks[-1]:
                        v["status"] = "ok"
                        active.remove(c)
            rnd += 1
            self.result["timings"]["bench_s"] = round(time.monotonic() - t, 3)
            self.write(announce=bool(active))
        for name in live:
            if self.variant(name)["status"] == "pending":
                self.variant(name)["status"] = "ok"
        self.result["timings"]["bench_s"] = round(time.monotonic() - t, 3)

    def invoke(self, name: str, what: str, target: str | None, keep: bool = True) -> dict | None:
        """One benchmark invocation of a variant: {metric: [values]} (recorded in its samples), or None when
        it failed (the variant is then marked bench_failed)."""
        if keep:
            self.result["schedule"].append(name)
            self.write()  # who is running now is on disk (a hung invocation shows where it hangs)
        t = time.monotonic()
        env = self.ctx.env
        self.ctx.current = name
        cell = self.ctx.cells.get(name)
        try:
            # every variant runs from ONE path (a symlink swapped to its tree), with PWD set to it: the same
            # environment size, so the same stack alignment. With per-variant paths (wt/baseline vs wt/aa)
            # the environment differs by a few bytes, which shifts the stack and can bias one variant by a
            # few percent (Mytkowicz et al., ASPLOS 2009); the simulated tier does the same.
            link = self.same_path(self.trees[name], "bench-tree")
            if cell is not None:  # in its sandbox: its tree bound at that one path too
                self.ctx.mount(name, cell.tree, link, cell.tree_writable)
            self.ctx.env = dict(env, PWD=str(link))
            got = self.preset.bench(link, self.ctx)
            self.seconds.setdefault(name, []).append(time.monotonic() - t)
            declared = declared_metrics(self.project)
            if declared and got:
                got = {m: xs for m, xs in got.items() if m in declared}  # only what the baseline declares
            if not got:
                raise BenchError("no METRIC lines in output" + (f" for {sorted(declared)}" * bool(declared)))
            bad = [m for m, xs in got.items() if not xs or not all(math.isfinite(float(x)) for x in xs)]
            if bad:
                raise BenchError(f"non-finite values for {', '.join(bad)}")
            if target and target not in got:
                raise BenchError(f"target metric {target!r} missing (got {sorted(got)})")
        except Tampered:
            raise
        except Exception as e:  # noqa: BLE001
            self.fail(name, "bench_failed", f"{what}: {e}")
            return None
        finally:
            self.ctx.env = env
            if cell is not None:
                cell.mounts = [m for m in cell.mounts if str(m[1]) != str(self.workdir / "bench-tree")]
        if keep:
            samples = self.variant(name)["samples"]
            for metric, values in got.items():
                samples.setdefault(metric, []).extend(float(x) for x in values)
        return {m: [float(x) for x in xs] for m, xs in got.items()}


def _exp(x: float) -> float:
    return math.exp(x) if math.isfinite(x) else x


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:80] or "variant"


def check_spec(spec: Any) -> None:
    if not isinstance(spec, dict):
        raise ValueError("spec must be a JSON object")
    for key in ("baseline", "source", "project"):
        if key not in spec:
            raise ValueError(f"spec.{key} is missing")
    names = [spec["baseline"].get("name")] + [c.get("name") for c in spec.get("candidates", [])]
    if (
        any(not n for n in names)
        or len(set(names)) != len(names)
        or len(set(map(safe_name, names))) != len(names)
    ):
        raise ValueError(f"variant names must be non-empty and distinct: {names}")
    for sha in spec_shas(spec):
        if not re.fullmatch(r"[0-9a-f]{40}", str(sha)):
            raise ValueError(f"not a full commit sha: {sha!r}")


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=os.environ.get("SPEC", "spec.json"))
    ap.add_argument("--out", default=os.environ.get("OUT", "result.json"))
    ap.add_argument("--workdir", default=os.environ.get("BENCH_WORKDIR", "work"))
    args = ap.parse_args(argv)
    spec_path = Path(args.spec).resolve()
    spec = json.loads(spec_path.read_text())
    check_spec(spec)
    driver = Driver(spec, spec_path, Path(args.out).resolve(), Path(args.workdir).resolve())
    result = driver.run()
    print("AUTORESEARCH_RESULT " + json.dumps(result, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
