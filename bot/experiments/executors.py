"""Executors run a benchmark batch (one spec per architecture) somewhere and hand back result dicts.

`LocalExecutor` runs the very same rendered task as SkyPilot would (its `run` section, and `setup` only when
asked) on this machine: one detached runner process per batch, architectures one after another, and a
file lock so that no two benchmarks on this machine ever overlap. Handles are directory names under
`base_dir`, so a restarted bot re-attaches through the pid file and the result files.

The driver builds and runs candidate code (fork commits, agent output, user branches): unless the operator
set `local_trust: all`, the runner starts it inside the jail (bot/experiments/jail.py: bubblewrap, only the
batch's own files writable, toolchain read-only, no network, no secrets, a minimal explicit environment). A
host where no jail starts gets its batches refused (`UntrustedRefused`) with the reason and the ways out.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from bot.experiments import buildcache, jail, tasks
from bot.experiments import results as results_mod
from bot.resources import sky_module

_sandbox = sky_module("sandbox")  # sky/sandbox.py: read_regular, the same file the driver uses

PollState = Literal["running", "done", "failed"]
# The environment a local benchmark sees: candidate code runs there, so no tokens from the bot's environment.
SAFE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TERM", "USER", "CCACHE_DIR", "CCACHE_MAXSIZE")
LOG_LIMIT = 200_000
RESULT_LIMIT = 64 << 20  # the largest result.json the bot reads
SANDBOX_ENV = "AUTORESEARCH_SANDBOX"  # read by sky/driver.py
LOG = logging.getLogger(__name__)


@dataclass
class Batch:
    """Everything one benchmark stage sends out: a spec and a machine config per architecture."""

    run_id: int
    specs: dict[str, dict[str, Any]]  # arch -> spec dict (ARCHITECTURE.md)
    bundle: Path | None = None  # git bundle with baseline + candidates (spec.source else)
    arch_configs: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # arch -> Settings.architectures[arch]
    repo: str = ""  # "owner/name": SkyPilot adopts a warm cluster only from a run of the same repository


@dataclass(frozen=True)
class Capabilities:
    """What an executor declares about itself, so callers ask it instead of comparing executor names."""

    # host: measures on this machine (its arch only); configured: a machine per Settings.architectures entry
    archs: Literal["host", "configured"]
    priced: bool  # its machines cost the arch's $/h (catalog or price_per_hour); else measuring is free
    vm_seconds: bool  # vm_seconds(handle) counts each arch's machine launch to teardown (failed ones too)
    logs: bool  # logs(handle) returns the batch's log (shown when a batch returns no result)
    jail: bool  # runs candidate code on this host, in the jail (Settings.local_trust)
    reconciler: bool  # start_reconciler(interval_s) tears down what crashed runs left (worker process only)


class Executor(Protocol):
    capabilities: Capabilities
    poll_interval: float  # seconds between polls while a batch runs

    def submit(self, batch: Batch) -> str: ...
    def poll(self, handle: str) -> PollState: ...
    def collect(self, handle: str) -> dict[str, dict[str, Any]]: ...
    def cancel(self, handle: str) -> None: ...
    def logs(self, handle: str) -> str: ...
    def vm_seconds(self, handle: str) -> dict[str, float]: ...
    # the run is over: give up what was kept for it across batches (SkyPilot: the run's clusters); returns
    # {arch: {"seconds", "usd"}} of machine time not yet charged, which the pipeline records as usage
    def release(self, run_id: int) -> dict[str, dict[str, float]]: ...


class ExecutorError(RuntimeError):
    """A batch could not be submitted, or a handle is unknown."""


class UntrustedRefused(ExecutorError):
    """Candidate code would run unisolated on the bot's host: refused (no isolation here, trust not given)."""


TRUST_LEVELS = ("none", "all")  # none: every candidate runs in the jail; all: UNSAFE, no jail


class LocalExecutor:
    """Runs batches on this machine in scratch directories `base_dir/<handle>/`."""

    capabilities = Capabilities(
        archs="host", priced=False, vm_seconds=False, logs=True, jail=True, reconciler=False
    )
    poll_interval = 3.0  # seconds between polls while a batch runs: the bot stays idle beside its benchmark

    def __init__(
        self,
        base_dir: Path,
        run_setup: bool = False,
        python: str = sys.executable,
        lock_path: Path | None = None,
        trust: str = "none",
        jail_paths: list[str] | tuple[str, ...] = (),
        jail_uid: int = jail.JAIL_UID,
        shared_cache: Path | None = None,
        limits: dict[str, int] | None = None,
    ):
        if trust not in TRUST_LEVELS:
            raise ExecutorError(f"local_trust must be one of {', '.join(TRUST_LEVELS)}, got {trust!r}")
        self.base_dir = Path(base_dir).resolve()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        # one lock for the whole machine (not per bot instance): two bots, or a bot and its tests, on one host
        # must never benchmark at the same time
        self.lock_path = Path(lock_path or bench_lock_path())
        self.run_setup = run_setup
        self.python = python
        self.trust = trust
        self.jail_paths = tuple(jail_paths)
        self.jail_uid = int(jail_uid)
        self.limits = dict(limits or {})  # per-invocation sandbox limits (sky/sandbox.py Limits)
        self._children: dict[str, subprocess.Popen] = {}
        # compiler cache shared by batches, written by baseline-only warm runs (bot/experiments/buildcache)
        self.shared_cache = Path(shared_cache) if shared_cache else self.base_dir / buildcache.DIR_NAME

    def jail_plan(self) -> dict[str, Any] | None:
        """The jail this executor's batches run in; None with `local_trust: all`; UntrustedRefused when a jail
        is needed and cannot start here."""
        if self.trust == "all":
            return None
        ok, why = jail.probe(self.python, self.jail_uid)
        if not ok:
            raise UntrustedRefused(
                f"The local executor refuses to build and run candidate code here: candidates (fork commits, "
                f"agent output, user branches) are untrusted and this host cannot isolate them ({why}). "
                f"To fix: {jail.INSTALL_HINT}."
            )
        try:
            plan = jail.make_plan(self.python, self.jail_paths, self.jail_uid)
        except jail.JailError as exc:
            raise UntrustedRefused(f"The local executor refuses to run the benchmark driver: {exc}.") from exc
        return {**plan, "limits": self.limits}

    # ------------------------------------------------------------------ protocol

    def submit(self, batch: Batch) -> str:
        if not batch.specs:
            raise ExecutorError("batch has no architectures")
        jail_plan = self.jail_plan()
        handle = f"local-{int(batch.run_id)}-{uuid.uuid4().hex[:10]}"
        hdir = self.base_dir / handle
        hdir.mkdir()
        plan: dict[str, Any] = {
            "handle": handle,
            "run_id": batch.run_id,
            "repo": batch.repo,  # what the batch measures (for operators reading batch.json)
            "arches": list(batch.specs),
            "run_setup": self.run_setup,
            "lock": str(self.lock_path),
            "tasks": {},
            "trust": self.trust,
            "jail": jail_plan,
        }
        for arch, spec in batch.specs.items():
            files_dir = hdir / _safe(arch)
            # jailed: a copy, never a hard link (the jail may write its files dir; the bundle is shared)
            tasks.write_batch_files(spec, files_dir, batch.bundle, link_bundle=jail_plan is None)
            plan["tasks"][arch] = tasks.render_task(spec, batch.arch_configs.get(arch, {}), files_dir)
            if buildcache.wanted(spec):
                plan.setdefault("shared_cache", {"dir": str(self.shared_cache), "keys": {}})
                plan["shared_cache"]["keys"][arch] = buildcache.warm_key(spec, arch)
        _write_json(hdir / "batch.json", plan)
        log = open(hdir / "runner.log", "ab")
        try:
            proc = subprocess.Popen(
                [self.python, "-m", "bot.experiments.executors", "run-local", str(hdir)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=str(hdir),
                env=_runner_env(self.python),
            )
        finally:
            log.close()
        _write_json(hdir / "runner.pid", {"pid": proc.pid, "start": _proc_start_time(proc.pid)})
        self._children[handle] = proc
        return handle

    def poll(self, handle: str) -> PollState:
        hdir = self._dir(handle)
        done = _read_json(hdir / "done.json")
        if done is not None:
            return "done" if self._finished_ok(hdir, done) else "failed"
        if self._alive(handle, hdir):
            return "running"
        # the runner may have finished between the two checks
        done = _read_json(hdir / "done.json")
        return "done" if done is not None and self._finished_ok(hdir, done) else "failed"

    def collect(self, handle: str) -> dict[str, dict[str, Any]]:
        """{arch: result} for every arch that left a valid result (partial ones included, `complete`
        false)."""
        hdir = self._dir(handle)
        plan = _read_json(hdir / "batch.json") or {}
        warm_runs = _read_json(hdir / "warm.json") or {}  # the shared compiler cache's warm runs, if any
        out: dict[str, dict[str, Any]] = {}
        for arch in plan.get("arches", []):
            path = _result_path(plan, arch)
            if not os.path.lexists(path):
                continue
            try:
                out[arch] = results_mod.load_result(_read_regular_json(path), partial=True)
            except (results_mod.ResultError, OSError, ValueError) as e:
                LOG.warning("%s/%s: result left out: %s", handle, arch, e)
                continue
            warm = warm_runs.get(arch)
            if warm:  # the warm run before the batch is build time too
                out[arch]["timings"]["cache_warm_s"] = float(warm.get("seconds") or 0.0)
            if plan.get("shared_cache"):  # what the builds actually hit: the demo's COLD/WARM comes from it
                task = plan["tasks"][arch]
                out[arch]["compiler_cache"] = {
                    "warm_up": warm or None,
                    "batch": buildcache.ccache_stats(
                        _baseline_ccache(Path(task["workdir"]) / _bench_workdir(task))
                    ),
                }
        return out

    def cancel(self, handle: str) -> None:
        hdir = self._dir(handle)
        (hdir / "cancelled").write_text(str(time.time()))
        pid = self._live_pid(handle, hdir)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        child = self._children.get(handle)
        if not _wait_group_gone(pid, child, 5.0):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            _wait_group_gone(pid, child, 5.0)

    def logs(self, handle: str) -> str:
        path = self._dir(handle) / "runner.log"
        if not path.exists():
            return ""
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - LOG_LIMIT))
            return f.read().decode(errors="replace")

    # ------------------------------------------------------------------ helpers

    def vm_seconds(self, handle: str) -> dict[str, float]:
        """No VM: the driver's own timings.total_s is what a batch took (capabilities.vm_seconds is False)."""
        return {}

    def release(self, run_id: int) -> dict[str, dict[str, float]]:
        """Nothing is kept across a run's batches on this host."""
        return {}

    def _dir(self, handle: str) -> Path:
        if not handle or "/" in handle or handle.startswith(".") or not (self.base_dir / handle).is_dir():
            raise ExecutorError(f"unknown handle {handle!r}")
        return self.base_dir / handle

    def _finished_ok(self, hdir: Path, done: dict[str, Any]) -> bool:
        if done.get("cancelled"):
            return False
        plan = _read_json(hdir / "batch.json") or {}
        for arch in plan.get("arches", []):
            if done.get("exit", {}).get(arch) != 0:
                return False
            try:
                result = _read_regular_json(_result_path(plan, arch))
            except (OSError, ValueError):
                result = None
            if not isinstance(result, dict) or result.get("complete") is False:
                return False
        return True

    def _alive(self, handle: str, hdir: Path) -> bool:
        return self._live_pid(handle, hdir) is not None

    def _live_pid(self, handle: str, hdir: Path) -> int | None:
        child = self._children.get(handle)
        if child is not None and child.poll() is not None:  # reap our own child (no zombie)
            return None
        info = _read_json(hdir / "runner.pid")
        if not info:
            return None
        pid = int(info["pid"])
        start = _proc_start_time(pid)
        if start is None or (info.get("start") is not None and start != info["start"]) or _is_zombie(pid):
            return None
        return pid


# ---------------------------------------------------------------------- runner (the detached process)


def run_local_batch(hdir: Path) -> int:
    """Body of the detached runner: each arch's task in turn, under the machine-wide benchmark lock."""
    plan = json.loads((hdir / "batch.json").read_text())
    exits: dict[str, int] = {}
    cancelled = False
    for arch in plan["arches"]:
        task = plan["tasks"][arch]
        with _machine_lock(Path(plan["lock"])):
            if (hdir / "cancelled").exists():
                cancelled = True
                break
            note = _jail_note(plan.get("jail"))
            cache = plan.get("shared_cache") or {}
            key = (cache.get("keys") or {}).get(arch)
            extra: dict[str, Any] = {}
            if key:
                extra = _shared_cache(hdir, arch, task, Path(cache["dir"]), key, plan)
            print(f"[runner] {time.time():.3f} {arch}: start ({task['name']}, {note})", flush=True)
            exits[arch] = _run_task(
                task, bool(plan.get("run_setup")), plan.get("jail"), hdir / "jail-etc", **extra
            )
            print(f"[runner] {time.time():.3f} {arch}: exit {exits[arch]}", flush=True)
    _write_json(hdir / "done.json", {"exit": exits, "cancelled": cancelled, "finished": time.time()})
    return 0 if all(rc == 0 for rc in exits.values()) and not cancelled else 1


def _shared_cache(
    hdir: Path, arch: str, task: dict[str, Any], root: Path, key: str, plan: dict[str, Any]
) -> dict[str, Any]:
    """Warm the shared compiler cache from the baseline alone when this (baseline, arch, build settings) has
    not been warmed yet; return the extra arguments of the batch's own task: the store, read-only."""
    cache = buildcache.SharedCache(root)
    if not cache.warmed(key):
        t = time.monotonic()
        try:
            cache.prepare_store(plan.get("jail"))
            wtask = buildcache.warm_task(task, Path(task["workdir"]), hdir / f"{_safe(arch)}-warm")
        except OSError as exc:
            print(f"[runner] {arch}: shared compiler cache unavailable ({exc}); building cold", flush=True)
            return {}
        print(f"[runner] {time.time():.3f} {arch}: warming the shared compiler cache (baseline)", flush=True)
        rc = _run_task(
            wtask,
            False,
            plan.get("jail"),
            hdir / "jail-etc",
            extra_env={"CCACHE_REMOTE_STORAGE": cache.remote(writable=True)},
            rw=[str(cache.store)],
        )
        seconds = round(time.monotonic() - t, 3)
        wdir = Path(wtask["workdir"])
        failure = f"exit {rc}" if rc != 0 else buildcache.warm_failure(_read_json(_task_result_path(wtask)))
        stats = buildcache.ccache_stats(_baseline_ccache(wdir / _bench_workdir(wtask)))
        if not failure and not cache.files():
            failure = "the store is still empty"
        warm = _read_json(hdir / "warm.json") or {}
        warm[arch] = {"exit": rc, "seconds": seconds, "ok": not failure, "why": failure, "ccache": stats}
        _write_json(hdir / "warm.json", warm)
        print(
            f"[runner] {time.time():.3f} {arch}: warm run exit {rc} in {seconds}s: "
            + (f"NOT warm ({failure}); nothing marked" if failure else f"warm, ccache {stats}"),
            flush=True,
        )
        if failure:  # the batch's own run says what is wrong with the baseline; nothing is marked
            return {}
        cache.mark(key, {"arch": arch, "handle": hdir.name, "seconds": seconds, "at": time.time()})
    if not cache.store.is_dir():
        return {}
    return {"extra_env": {"CCACHE_REMOTE_STORAGE": cache.remote(writable=False)}, "ro": [str(cache.store)]}


def _run_task(
    task: dict[str, Any],
    run_setup: bool,
    jail_plan: dict[str, Any] | None = None,
    etc_dir: Path | None = None,
    extra_env: dict[str, str] | None = None,
    rw: list[str] | tuple[str, ...] = (),
    ro: list[str] | tuple[str, ...] = (),
) -> int:
    env = {k: os.environ[k] for k in SAFE_ENV if k in os.environ}
    env.update({k: str(v) for k, v in (task.get("envs") or {}).items()})
    env.update(extra_env or {})
    cwd = task["workdir"]
    if run_setup and task.get("setup"):  # the bot's own template (packages), never candidate code: unjailed
        rc = subprocess.call(["bash", "-c", task["setup"]], cwd=cwd, env=env, stdin=subprocess.DEVNULL)
        if rc != 0:
            print(f"[runner] setup failed with exit {rc}", flush=True)
            return rc
    argv = ["bash", "-c", task["run"]]
    if jail_plan is None:  # local_trust: all: the driver runs candidate code unsandboxed
        env[SANDBOX_ENV] = "off"
    else:
        # the driver is the bot's own code: it runs here (explicit environment, no secrets) and starts every
        # candidate-code invocation in a sandbox of its own (sky/sandbox.py): one cell per variant
        env = jail.jail_env(jail_plan, {**(task.get("envs") or {}), **(extra_env or {})})
        env[SANDBOX_ENV] = json.dumps(jail.sandbox_plan(jail_plan, baseline_rw=rw, shared_ro=ro))
    return subprocess.call(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL)


def _jail_note(jail_plan: dict[str, Any] | None) -> str:
    if jail_plan is None:
        return "NO jail (local_trust: all)"
    uid = jail_plan["uid"] if jail_plan["mode"] == "root" else os.getuid()
    return f"jailed: bubblewrap {jail_plan['mode']} mode, uid {uid}, no network"


def bench_lock_path() -> Path:
    """The machine-wide benchmark lock (`AUTORESEARCH_BENCH_LOCK`, else one file in the temp dir)."""
    return Path(
        os.environ.get("AUTORESEARCH_BENCH_LOCK") or Path(tempfile.gettempdir()) / "autoresearch-bench.lock"
    )


@contextlib.contextmanager
def host_work() -> Iterator[None]:
    """Other heavy work on this host (the agent's build/check commands): the benchmark lock held SHARED, so
    such commands overlap each other but never a local benchmark, which holds it exclusively (with
    `max_concurrent_runs` > 1 one run's agent may build while another run's batch measures)."""
    with _machine_lock(bench_lock_path(), shared=True):
        yield


@contextlib.contextmanager
def _machine_lock(path: Path, shared: bool = False) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


# ---------------------------------------------------------------------- small utilities


def _baseline_ccache(workdir: Path) -> Path:
    """The baseline build's ccache dir: the driver gives every variant its own (work/ccache/<variant>), the
    baseline's first; work/ccache itself unsandboxed (local_trust: all)."""
    own = workdir / "ccache" / "baseline"
    return own if own.is_dir() else workdir / "ccache"


def _result_path(plan: dict[str, Any], arch: str) -> Path:
    return _task_result_path(plan["tasks"][arch])


def _task_result_path(task: dict[str, Any]) -> Path:
    return Path(task["workdir"]) / str((task.get("envs") or {}).get("OUT", tasks.RESULT_NAME))


def _bench_workdir(task: dict[str, Any]) -> str:
    """The driver's --workdir (relative to the task's cwd): its own ccache is <it>/ccache."""
    return str((task.get("envs") or {}).get("BENCH_WORKDIR", "work"))


def _safe(name: str) -> str:
    out = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".")
    return out or "arch"


def _runner_env(python: str) -> dict[str, str]:
    """Scrubbed env; `python3` on PATH is the bot's interpreter (the llama.cpp preset needs gguf + numpy)."""
    env = {k: os.environ[k] for k in SAFE_ENV if k in os.environ}
    env["PATH"] = os.pathsep.join([str(Path(python).parent), env.get("PATH", "/usr/bin:/bin")])
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root
    return env


def _proc_start_time(pid: int) -> int | None:
    """Start time (clock ticks since boot) from /proc, to tell a live runner from a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _wait_group_gone(pgid: int, child: subprocess.Popen | None, timeout: float) -> bool:
    """Wait until no process of the group is left (reaping our own child); True when gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None:
            child.poll()
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        time.sleep(0.05)
    return False


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(_sandbox.read_regular(path, RESULT_LIMIT))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _read_regular_json(path: Path) -> Any:
    """A result file as the bot reads it: a regular file (no symlink, FIFO or device; never blocks), at most
    RESULT_LIMIT bytes, valid JSON (OSError / ValueError otherwise)."""
    return json.loads(_sandbox.read_regular(path, RESULT_LIMIT))


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "run-local":
        return run_local_batch(Path(argv[1]))
    print("usage: python -m bot.experiments.executors run-local <handle_dir>", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
