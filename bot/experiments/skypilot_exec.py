"""SkyPilot executor: one cluster per architecture per run, reused across the run's batches, always torn down.

Every SkyPilot 0.14 SDK call goes through the local API server and returns a request id; ``sdk.get``
waits for it. The first batch of a run on an arch ``launch``es the run's cluster for that arch (autostop+down
as a safety net); later batches of the same run (the stack verification, further waves, the final
measurement) ``exec`` on it while ``status`` says it is UP (ccache and build trees under the synced workdir
stay warm), and launch a fresh one when it is gone. Per batch and arch: launch/exec request -> its request id
is saved before ``stream_and_get`` waits on it (provisioning log) -> ``tail_logs`` of the job into
``<arch>.log`` -> the result is the last ``AUTORESEARCH_RESULT <json>`` line of that log (or, from a VM that
died, the last ``AUTORESEARCH_PARTIAL <json>`` line, kept with ``complete: false``). A batch that ends
without a final result (launch failure, preemption, lost VM) downs its cluster and is retried once on a fresh
one. ``release(run_id)`` (the pipeline calls it when a run is done, failed or cancelled) downs the run's
clusters; ``cancel`` downs the batch's clusters at once. With ``keep_warm_minutes`` > 0 ``release`` keeps a
cluster whose last batch finished cleanly in the warm pool (``<state_dir>/warm.json``: repo, arch, resources
fingerprint, warm_until); the next run of the same repository adopts it (taken out of the pool under a file
lock, then ``exec``), and ``reconcile()`` downs it past warm_until. Its warm time is charged to the run that
released it (the batch's ``vm_seconds`` and the ``charge`` callback) when it is adopted or downed.

A spot arch (``use_spot: true``) runs each batch as a SkyPilot managed job instead (``sky.jobs.launch``, named
``arj-r<run>-<hex6>-<arch>-<seq>``): the jobs controller provisions the spot VM, recovers the job after a
preemption and tears its cluster down; the bot follows ``sky.jobs.tail_logs`` (the log survives the VM), reads
the final state from ``sky.jobs.queue`` and cancels with ``sky.jobs.cancel`` (an attempt that ends without a
result cancels its job unless it is known finished). Managed jobs get no cluster reuse (a fresh spot VM each).

No VM outlives its run: a teardown counts only once ``status`` no longer lists the cluster; a failed or
unconfirmed ``down`` is retried with backoff, and the cluster stays in ``<state_dir>/teardown.json`` ("pending
teardown") until it is confirmed gone. ``reconcile()`` (at worker start and every few minutes) retries those
and tears down every cluster named like the bot's (``ar-r<run>-<hex6>-...``) that belongs to no active batch
and is not the kept cluster of a run still in progress (``run_active``, from the store, says which runs are),
and cancels the bot's unfinished managed jobs that no active batch follows.

Before anything is launched, every architecture's price is quoted (SkyPilot's catalog, else the configured
``price_per_hour``); an unknown price refuses the batch. VM seconds are counted per arch, failed ones included
(``costs()``); a batch on a reused cluster is charged from the end of the previous batch on it (the idle gap).

State lives on disk: ``<state_dir>/runs/<run key>.json`` (the run's cluster per arch, which batch holds it,
billed-until) and ``<state_dir>/<handle>/state.json`` (cluster names, request ids, job ids, per-arch status,
VM seconds, $/h), so a restarted bot re-attaches to a running job, or to an in-flight launch/exec request by
its id, and reuses the run's clusters.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import json
import logging
import math
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bot.experiments.executors import Capabilities

log = logging.getLogger("autoresearch.skypilot")

RESULT_MARK = "AUTORESEARCH_RESULT "
PARTIAL_MARK = "AUTORESEARCH_PARTIAL "
TERMINAL = ("done", "failed", "cancelled")
TaskConfigs = Mapping[str, Mapping[str, Any]]
Renderer = Callable[[Mapping[str, Any], str, Path], Mapping[str, Any]]  # (spec, arch, files_dir)
Pricer = Callable[[str, Mapping[str, Any]], Any]  # (arch, arch config | resources) -> PriceQuote | $/h | None
MAX_CLUSTER_NAME = 40
OUR_CLUSTER = re.compile(r"^ar-(?P<key>r\d+-[0-9a-f]{6})-")  # every cluster this executor names
LIVE_REQUEST = ("PENDING", "WAITING", "RUNNING", "SUCCEEDED")  # api_status states a restarted bot attaches to
CLUSTER_GONE = ("ClusterDoesNotExist", "ClusterNotUpError")  # exec on a cluster that went away
OUR_JOB = re.compile(r"^arj-(?P<key>r\d+-[0-9a-f]{6})-")  # every managed job this executor names (spot archs)
# sky.jobs.ManagedJobStatus.terminal_statuses()
MANAGED_TERMINAL = (
    "SUCCEEDED",
    "CANCELLED",
    "FAILED",
    "FAILED_SETUP",
    "FAILED_PRECHECKS",
    "FAILED_NO_RESOURCE",
    "FAILED_CONTROLLER",
)
MANAGED_MARK = "managed-jobs-used"  # in state_dir once a managed job was submitted: the reconciler sweeps


def parse_result_log(text: str) -> tuple[dict[str, Any] | None, bool]:
    """(result, complete) from a job log: the last final result line, else the last partial one."""
    final = partial = None
    for line in text.splitlines():
        pos = line.find(RESULT_MARK)
        mark = RESULT_MARK
        if pos < 0:
            pos, mark = line.find(PARTIAL_MARK), PARTIAL_MARK
        if pos < 0:
            continue
        try:
            obj = json.loads(line[pos + len(mark) :])
        except json.JSONDecodeError:
            continue  # a line cut off by a dying VM
        if not isinstance(obj, dict):
            continue
        if mark == RESULT_MARK:
            final = obj
        else:
            partial = obj
    if final is not None:
        return final, True
    return partial, False


def _read_result(log_path: Path) -> tuple[dict[str, Any] | None, bool]:
    """The driver's result as the log holds it (parse_result_log); nothing when there is no log yet."""
    if not log_path.exists():
        return None, False
    return parse_result_log(log_path.read_text(encoding="utf-8", errors="replace"))


def _progress(result: Mapping[str, Any] | None) -> int:
    """How far a (partial) result got: number of samples collected plus finished variants."""
    if not result:
        return -1
    score = 0
    for v in (result.get("variants") or {}).values():
        score += sum(len(s) for s in (v.get("samples") or {}).values()) + len(v.get("pairs") or [])
        score += v.get("status") not in (None, "pending")
    return score


def build_task(config: Mapping[str, Any], *, skip_workdir: bool = False) -> Any:
    """A validated ``sky.Task`` from a rendered task dict (instance types checked against the catalog)."""
    from bot.resources import skypilot

    task = skypilot().Task.from_yaml_config(dict(config))
    task.validate(skip_workdir=skip_workdir)
    return task


def cluster_name(key: str, arch: str, seq: int) -> str:
    """Valid SkyPilot cluster name (lowercase, starts with a letter, <= 40 chars), unique per run key
    (``r<run>-<hex6>``), arch and sequence number (every cluster a run launches on an arch gets the next one):
    the sequence suffix is never cut, and an arch name that had to be shortened or changed carries a hash of
    the original (so "x86_64" and "x86-64", or two long names sharing 40 characters, never collide)."""
    head = re.sub(r"[^a-z0-9-]", "-", f"ar-{key}".lower())
    tail = f"-{int(seq)}"
    slug = re.sub(r"[^a-z0-9]+", "-", arch.lower()).strip("-") or "arch"
    room = MAX_CLUSTER_NAME - len(head) - 1 - len(tail)
    if slug != arch or len(slug) > room:
        digest = hashlib.sha1(arch.encode()).hexdigest()[:6]
        slug = f"{slug[: max(0, room - len(digest) - 1)].strip('-')}-{digest}".lstrip("-")
    if room < 6:
        raise ValueError(f"run key {key!r} too long for a cluster name")
    return f"{head}-{slug}{tail}"


def run_key(handle: str) -> str:
    """The run key (``r<run>-<hex6>``) of a batch handle (``r<run>-<hex6>-b<n>``; a handle from before cluster
    reuse, ``r<run>-<hex6>``, is its own key)."""
    m = re.fullmatch(r"(r\d+-[0-9a-f]{6})(?:-b\d+)?", handle)
    return m[1] if m else handle


def _refuse(message: str) -> None:
    """Refuse a batch before any launch, in plain words on the issue (a StageFailed)."""
    from bot.model import StageFailed  # noqa: PLC0415

    raise StageFailed(message)


def default_price(arch: str, cfg: Mapping[str, Any]) -> Any:
    from bot.experiments.cost import arch_quote  # noqa: PLC0415  (the one pricing function)

    return arch_quote(arch, cfg)


def _field(record: Any, name: str) -> str:
    """A field of an API server record (a response model, or a dict) as a string; enums by their value."""
    value = record.get(name) if isinstance(record, Mapping) else getattr(record, name, None)
    value = getattr(value, "value", value)
    return "" if value is None else str(value)


def _record_name(record: Any) -> str:
    """Cluster name of a ``status`` record (StatusResponse from the API server, or a dict)."""
    return _field(record, "name")


def is_managed(config: Mapping[str, Any]) -> bool:
    """Does this rendered task run as a SkyPilot managed job? Yes for a spot arch (``use_spot: true``)."""
    return bool((config.get("resources") or {}).get("use_spot"))


def _records(got: Any) -> list[Any]:
    """The records of ``sky.jobs.queue`` (version 2 answers (records, total, counts, total unfiltered))."""
    return list((got[0] if isinstance(got, tuple) else got) or [])


def fingerprint(config: Mapping[str, Any]) -> str:
    """What a warm cluster must match to be adopted: the task's resources (and node count)."""
    what = {k: config.get(k) for k in ("resources", "num_nodes")}
    return hashlib.sha1(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _batch_number(handle: str) -> int:
    tail = handle.rsplit("-b", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class SkyPilotExecutor:
    """Executor protocol over SkyPilot: submit/poll/collect/cancel (see docs/ARCHITECTURE.md)."""

    capabilities = Capabilities(
        archs="configured", priced=True, vm_seconds=True, logs=True, jail=False, reconciler=True
    )
    poll_interval = 1.0  # seconds between polls while a batch runs (the VMs measure, not this host)

    def __init__(
        self,
        state_dir: str | Path,
        *,
        sdk: Any = None,
        render: Renderer | None = None,
        task_from_config: Callable[[Mapping[str, Any]], Any] | None = None,
        max_attempts: int = 2,
        autostop_minutes: int = 10,
        clock: Callable[[], float] = time.time,
        price: Pricer | None = None,
        sleep: Callable[[float], None] = time.sleep,
        down_tries: int = 4,
        down_backoff: tuple[float, float] = (5.0, 120.0),
        run_active: Callable[[int], bool] | None = None,
        keep_warm_minutes: float = 0.0,
        charge: Callable[[int, str, float], None] | None = None,
    ) -> None:
        if sdk is None:
            from bot.resources import skypilot

            sdk = skypilot()  # the real SDK; imported lazily (slow import)
        self.sdk = sdk
        self.state_dir = Path(state_dir)
        self.render = render
        self.task_from_config = task_from_config
        self.max_attempts = max_attempts
        self.autostop_minutes = autostop_minutes
        self.clock = clock
        self.price = price or default_price
        self.sleep = sleep
        self.down_tries = max(1, down_tries)
        self.down_backoff = down_backoff  # (first wait, longest wait) in seconds, doubling in between
        self.run_active = run_active  # run id -> still in progress? (the store); None: runs end by release()
        self.keep_warm_minutes = max(0.0, float(keep_warm_minutes))  # 0: a released run's clusters go down
        self.charge = charge  # (run id, detail, usd): VM time of a warm cluster, charged when adopted/downed
        self._lock = threading.RLock()
        self._threads: dict[tuple[str, str], threading.Thread] = {}
        self._reconciler: threading.Thread | None = None
        self._reconciler_stop = threading.Event()

    # ------------------------------------------------------------------ state
    def _dir(self, handle: str) -> Path:
        if not re.fullmatch(r"[a-z0-9-]{1,40}", handle):
            raise ValueError(f"not a SkyPilot executor handle: {handle!r}")
        return self.state_dir / handle

    def load_state(self, handle: str) -> dict[str, Any]:
        path = self._dir(handle) / "state.json"
        if not path.exists():
            raise KeyError(f"unknown handle {handle!r}")
        return json.loads(path.read_text())

    def _save(self, handle: str, state: Mapping[str, Any]) -> None:
        path = self._dir(handle) / "state.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
        tmp.replace(path)

    def _update(self, handle: str, arch: str, **fields: Any) -> dict[str, Any]:
        with self._lock:
            state = self.load_state(handle)
            state["archs"][arch].update(fields)
            self._save(handle, state)
            return state

    # ------------------------------------------------------------------ run records (one per run key)
    def _run_records(self) -> list[dict[str, Any]]:
        runs = self.state_dir / "runs"
        out = []
        for path in sorted(runs.glob("*.json")) if runs.exists() else []:
            try:
                out.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return out

    def _load_run(self, key: str) -> dict[str, Any]:
        path = self.state_dir / "runs" / f"{key}.json"
        if not path.exists():  # a batch submitted before cluster reuse: a run of its own, nothing kept yet
            m = re.match(r"r(\d+)-", key)
            return {"run_id": int(m[1]) if m else 0, "key": key, "released": False, "batches": 0, "archs": {}}
        return json.loads(path.read_text())

    def _save_run(self, rec: Mapping[str, Any]) -> None:
        runs = self.state_dir / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        path = runs / f"{rec['key']}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(rec, indent=1, sort_keys=True))
        tmp.replace(path)

    def _open_run(self, run_id: int) -> dict[str, Any]:
        """The run's record while it is in use (not released), else a fresh one with a new key (unsaved)."""
        for rec in self._run_records():
            if rec.get("run_id") == run_id and not rec.get("released"):
                return rec
        return {
            "run_id": run_id,
            "key": f"r{run_id}-{secrets.token_hex(3)}",
            "released": False,
            "batches": 0,
            "archs": {},
        }

    def _batches(self, key: str) -> list[str]:
        """Handles of every batch of run key ``key`` whose state is here, oldest first."""
        found = (
            [p.parent.name for p in self.state_dir.glob(f"{key}-b*/state.json")]
            if self.state_dir.exists()
            else []
        )
        return sorted((h for h in found if run_key(h) == key), key=_batch_number)

    # ------------------------------------------------------------------ protocol
    def submit(self, batch: Any) -> str:
        """Write the per-arch task configs and start every arch in its own thread (launch, or exec on the
        run's cluster)."""
        run_id = int(getattr(batch, "run_id", 0) or 0)
        with self._lock:
            rec = self._open_run(run_id)
            rec["batches"] = int(rec.get("batches") or 0) + 1
            handle = f"{rec['key']}-b{rec['batches']}"
            hdir = self._dir(handle)
            hdir.mkdir(parents=True, exist_ok=False)
            try:
                configs = self._task_configs(batch, hdir)
                prices = self._prices(batch, configs)
            except BaseException:
                shutil.rmtree(hdir, ignore_errors=True)
                raise
            state = {
                "handle": handle,
                "run_id": run_id,
                "cancelled": False,
                "created": self.clock(),
                "archs": {
                    a: {
                        "status": "pending",
                        "attempt": 0,
                        "cluster": None,
                        "mode": None,
                        "launch_request": None,
                        "job_id": None,
                        "down": [],
                        "vm_seconds": 0.0,
                        "errors": [],
                        "complete": False,
                        "usd_per_hour": prices[a],
                    }
                    for a in configs
                },
            }
            for arch, cfg in configs.items():
                (hdir / f"{arch}.task.json").write_text(json.dumps(cfg, indent=1, sort_keys=True))
                state["archs"][arch]["fingerprint"] = fingerprint(cfg)
            rec["repo"] = rec.get("repo") or str(getattr(batch, "repo", "") or "")
            self._save_run(rec)
            self._save(handle, state)
        for arch in configs:
            self._start(handle, arch, resume=False)
        return handle

    def poll(self, handle: str) -> str:
        state = self.load_state(handle)
        for arch, a in state["archs"].items():
            if a["status"] not in TERMINAL and not self._alive(handle, arch):
                self._start(handle, arch, resume=True)  # this process restarted: re-attach
        state = self.load_state(handle)
        statuses = [a["status"] for a in state["archs"].values()]
        if any(s not in TERMINAL for s in statuses):
            return "running"
        return "done" if any(s == "done" for s in statuses) else "failed"

    def collect(self, handle: str) -> dict[str, dict[str, Any]]:
        """{arch: result} for every arch that produced one (partial results carry complete=False)."""
        hdir = self._dir(handle)
        out = {}
        for arch, a in self.load_state(handle)["archs"].items():
            path = hdir / f"{arch}.result.json"
            if path.exists():
                res = json.loads(path.read_text())
                res.setdefault("errors", [])
                res["errors"] = list(res["errors"]) + [e for e in a["errors"] if e not in res["errors"]]
                res["complete"] = bool(a.get("complete"))
                out[arch] = res
        return out

    def cancel(self, handle: str) -> None:
        """Stop everything: cancel in-flight launches and tear every cluster down (waits for it)."""
        with self._lock:
            state = self.load_state(handle)
            state["cancelled"] = True
            self._save(handle, state)
        for arch, a in state["archs"].items():
            if a["status"] not in TERMINAL and a.get("launch_request"):
                try:
                    self.sdk.api_cancel(a["launch_request"])
                except Exception:  # noqa: BLE001 - best effort; down follows
                    pass
            if a.get("mode") == "managed" and a["status"] not in TERMINAL and a.get("job_id") is not None:
                self._cancel_managed(handle, arch, int(a["job_id"]))
            for name in self._clusters(a):
                self._down(handle, arch, name)
            if a["status"] not in TERMINAL:
                self._update(handle, arch, status="cancelled")
        for arch in state["archs"]:
            t = self._threads.get((handle, arch))
            if t is not None:
                t.join(timeout=60)

    def release(self, run_id: int) -> dict[str, dict[str, float]]:
        """The run is over (done, failed or stopped): cancel its batches still in flight and down the clusters
        kept for it. Returns {arch: {"seconds", "usd"}}: VM time from the end of the run's last batch on the
        arch to the teardown (also added to that batch's ``vm_seconds``), for the caller to record."""
        with self._lock:
            recs = [r for r in self._run_records() if r.get("run_id") == run_id and not r.get("released")]
            for rec in recs:
                rec["released"] = True
                self._save_run(rec)
        out: dict[str, dict[str, float]] = {}
        for rec in recs:
            self._cancel_live_batches(rec["key"])
            rec = self._load_run(rec["key"])  # as the cancelled batches left it
            for arch, e in rec["archs"].items():
                name = e.get("cluster")
                if not name:
                    continue
                last = e.get("last_handle")
                known = bool(last) and (self.state_dir / str(last) / "state.json").exists()
                warm = self._warmable(rec, arch, e, last) if known else None
                if warm is None:
                    self._down(last if known else None, arch if known else None, name, force=True)
                if not known or e.get("billed_until") is None:
                    continue
                ended = self.clock()
                seconds = max(0.0, ended - float(e["billed_until"]))
                with self._lock:
                    state = self.load_state(last)
                    a = state["archs"][arch]
                    a["vm_seconds"] += seconds
                    self._save(last, state)
                if warm is not None:  # the rest of its time is charged to this run when adopted or downed
                    warm.update(billed_until=ended, warm_until=ended + self.keep_warm_minutes * 60.0)
                    with self._warm_pool() as pool:
                        pool[name] = warm
                got = out.setdefault(arch, {"seconds": 0.0, "usd": 0.0})
                got["seconds"] += seconds
                got["usd"] += seconds / 3600.0 * float(a.get("usd_per_hour") or 0.0)
        return out

    # ------------------------------------------------------------------ warm pool (keep_warm_minutes)
    @contextlib.contextmanager
    def _warm_pool(self) -> Any:
        """``<state_dir>/warm.json`` ({cluster: record}) for a read-modify-write under this executor's lock
        and a file lock (another process on the same state dir): a record taken out of it
        is adopted by one run."""
        with self._lock:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            with open(self.state_dir / "warm.lock", "a") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    path = self.state_dir / "warm.json"
                    pool = json.loads(path.read_text()) if path.exists() else {}
                    yield pool
                    tmp = path.with_suffix(".wtmp")
                    tmp.write_text(json.dumps(pool, indent=1, sort_keys=True))
                    tmp.replace(path)
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)

    def warm_clusters(self) -> dict[str, dict[str, Any]]:
        """Released clusters waiting for the next run of their repository: {name: record}."""
        with self._warm_pool() as pool:
            return copy.deepcopy(pool)

    def _warmable(
        self, rec: Mapping[str, Any], arch: str, e: Mapping[str, Any], last: str
    ) -> dict[str, Any] | None:
        """The warm record of a released run's cluster, or None (down it): only with ``keep_warm_minutes``, a
        known repository, and a last batch that finished cleanly (a final result) on it."""
        if self.keep_warm_minutes <= 0 or not rec.get("repo") or e.get("billed_until") is None:
            return None
        state = self.load_state(last)
        a = state["archs"].get(arch) or {}
        if state.get("cancelled") or a.get("status") != "done" or not a.get("complete"):
            return None
        if not a.get("fingerprint") or e["cluster"] in a.get("down", []):
            return None
        return {
            "repo": rec["repo"],
            "arch": arch,
            "fingerprint": a["fingerprint"],
            "run_id": rec["run_id"],
            "key": rec["key"],
            "handle": last,
            "usd_per_hour": float(a.get("usd_per_hour") or 0.0),
        }

    def _charge_warm(self, name: str, w: Mapping[str, Any], until: float) -> None:
        """The warm time of cluster ``name`` (released -> adopted or downed), charged to the run that released
        it: added to its last batch's ``vm_seconds`` and reported through ``charge`` (the store's usage)."""
        seconds = max(0.0, until - float(w.get("billed_until") or until))
        usd = seconds / 3600.0 * float(w.get("usd_per_hour") or 0.0)
        handle, arch = str(w.get("handle") or ""), str(w.get("arch") or "")
        with self._lock:
            if handle and (self.state_dir / handle / "state.json").exists():
                state = self.load_state(handle)
                if arch in state["archs"]:
                    state["archs"][arch]["vm_seconds"] += seconds
                    self._save(handle, state)
        if self.charge is not None:
            try:
                self.charge(int(w.get("run_id") or 0), f"warm/{arch} {name}: {seconds:.0f} s", usd)
            except Exception:  # noqa: BLE001 - the seconds are in the batch's vm_seconds regardless
                log.exception("charging the warm time of %s failed", name)

    def _adopt(self, handle: str, arch: str) -> tuple[str, float] | None:
        """(cluster, since) of a warm cluster this run takes over for ``arch``: same repository, same
        resources fingerprint, not past ``warm_until``, and UP. Taken out of the pool before anything else (so
        no second run gets it), then recorded as this run's own cluster; one that is not UP is downed and the
        next one tried."""
        key = run_key(handle)
        with self._lock:
            repo = self._load_run(key).get("repo") or ""
            fp = self.load_state(handle)["archs"][arch].get("fingerprint")
        if self.keep_warm_minutes <= 0 or not repo or not fp:
            return None
        while True:
            now = self.clock()
            with self._lock:
                with self._warm_pool() as pool:
                    name = next(
                        (
                            n
                            for n, w in sorted(pool.items())
                            if (w.get("repo"), w.get("arch"), w.get("fingerprint")) == (repo, arch, fp)
                            and float(w.get("warm_until") or 0) > now
                        ),
                        None,
                    )
                    if name is None:
                        return None
                    w = pool.pop(name)
                rec = self._load_run(key)
                rec["archs"][arch].update(cluster=name, billed_until=None, adopted_from=w.get("key"))
                self._save_run(rec)
            try:
                up = self._cluster_status(name) == "UP"
            except Exception:  # noqa: BLE001 - unknown: not adopted; the orphan pass downs it
                up = False
            now = self.clock()
            self._charge_warm(name, w, now)
            if up:
                log.info("%s adopts the warm cluster %s (%s, %s)", handle, name, repo, arch)
                return name, now
            self._down(w.get("handle"), arch, name, force=True)
            with self._lock:
                rec = self._load_run(key)
                if rec["archs"][arch].get("cluster") == name:
                    rec["archs"][arch]["cluster"] = None
                    self._save_run(rec)

    def _reconcile_warm(self, listed: set[str], asked: float, report: dict[str, list[str]]) -> set[str]:
        """Down the warm clusters past ``warm_until`` (their time charged to the run that released them);
        drop the records of ones ``status`` no longer lists. The warm clusters still
        waiting, for the orphan pass."""
        now = self.clock()
        with self._warm_pool() as pool:
            over = {n: pool.pop(n) for n, w in list(pool.items()) if float(w.get("warm_until") or 0) <= now}
            # gone (autostop, a manual down): not one released after `status` was asked
            over |= {
                n: pool.pop(n)
                for n, w in list(pool.items())
                if n not in listed and float(w.get("billed_until") or 0) < asked
            }
            waiting = set(pool)
        for name, w in over.items():
            if name in listed:
                log.info("reconcile: the warm cluster %s was not adopted in time; tearing it down", name)
                ok = self._down(w.get("handle"), w.get("arch"), name, force=True, tries=1)
                (report["downed"] if ok else report["pending"]).append(name)
            self._charge_warm(name, w, self.clock())
        return waiting

    def _cancel_live_batches(self, key: str) -> None:
        for handle in self._batches(key):
            state = self.load_state(handle)
            live = any(a["status"] not in TERMINAL for a in state["archs"].values())
            if live and not state.get("cancelled"):
                self.cancel(handle)

    def wait(self, handle: str, timeout: float | None = None) -> str:
        """Block until every arch thread of this process finished (tests, CLI)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for (h, _), t in list(self._threads.items()):
            if h == handle:
                t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return self.poll(handle)

    def logs(self, handle: str, limit: int = 200_000) -> str:
        """The tail of every arch's log (provisioning + job output)."""
        hdir = self._dir(handle)
        parts = []
        for arch in self.load_state(handle)["archs"]:
            path = hdir / f"{arch}.log"
            if path.exists():
                parts.append(f"### {arch}\n" + path.read_text(encoding="utf-8", errors="replace")[-limit:])
        return "\n".join(parts)

    def vm_seconds(self, handle: str) -> dict[str, float]:
        """VM seconds per arch, launch to confirmed teardown, every attempt and failed archs included."""
        return {arch: float(a["vm_seconds"]) for arch, a in self.load_state(handle)["archs"].items()}

    def costs(self, handle: str) -> dict[str, float]:
        """$ per arch (VM seconds x the price quoted at submit), failed and cancelled archs included."""
        return {
            arch: float(a["vm_seconds"]) / 3600.0 * float(a.get("usd_per_hour") or 0.0)
            for arch, a in self.load_state(handle)["archs"].items()
        }

    # ------------------------------------------------------------------ teardown and reconciliation
    def pending_teardown(self) -> dict[str, dict[str, Any]]:
        """Clusters whose teardown is not confirmed yet: {name: {handle, arch, attempts, next_at, error}}."""
        path = self.state_dir / "teardown.json"
        with self._lock:
            return json.loads(path.read_text()) if path.exists() else {}

    def _set_pending(self, name: str, entry: Mapping[str, Any] | None) -> None:
        path = self.state_dir / "teardown.json"
        with self._lock:
            pending = json.loads(path.read_text()) if path.exists() else {}
            if entry is None:
                pending.pop(name, None)
            else:
                pending[name] = dict(entry)
            self.state_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(pending, indent=1, sort_keys=True))
            tmp.replace(path)

    def _active_clusters(self) -> set[str]:
        """Current clusters of every arch that is still pending, launching or running (any handle), and the
        clusters kept for runs that are not released."""
        active = set()
        if not self.state_dir.exists():
            return active
        for path in self.state_dir.glob("*/state.json"):
            try:
                state = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            for a in state.get("archs", {}).values():
                if a.get("status") not in TERMINAL and a.get("cluster"):
                    active.add(a["cluster"])
        for rec in self._run_records():
            if not rec.get("released"):
                active |= {e["cluster"] for e in rec.get("archs", {}).values() if e.get("cluster")}
        return active

    def _close_finished_runs(self) -> None:
        """Runs that ended without ``release`` (the bot died in between): released now, so the orphan pass
        downs their clusters."""
        if self.run_active is None:
            return
        for rec in self._run_records():
            if rec.get("released"):
                continue
            try:
                active = self.run_active(int(rec["run_id"]))
            except Exception:  # noqa: BLE001 - unknown is active: autostop stays the backstop
                active = True
            if not active:
                log.warning("reconcile: run %s is over; releasing its clusters", rec["run_id"])
                with self._lock:
                    rec = self._load_run(rec["key"])
                    rec["released"] = True
                    self._save_run(rec)
                self._cancel_live_batches(rec["key"])

    def _owner(self, name: str) -> tuple[str | None, str | None]:
        """(handle, arch) of the last batch that ran on cluster ``name``, when its state is still here."""
        m = OUR_CLUSTER.match(name)
        owner: tuple[str | None, str | None] = (None, None)
        for handle in self._batches(m["key"]) if m else []:
            for arch, a in self.load_state(handle)["archs"].items():
                if a.get("cluster") == name:
                    owner = (handle, arch)
        return owner

    def reconcile(self) -> dict[str, list[str]]:
        """Retry due pending teardowns; tear down the bot's clusters that belong to no active batch and to no
        run in progress (``run_active``).

        Only clusters named by this executor (``ar-r<run>-<hex6>-...``) are touched; one bot per SkyPilot
        user, since a second bot's clusters would look like orphans."""
        report: dict[str, list[str]] = {"downed": [], "kept": [], "pending": [], "errors": []}
        self._close_finished_runs()
        self._reconcile_managed(report)
        now = self.clock()
        for name, entry in self.pending_teardown().items():
            if float(entry.get("next_at", 0)) <= now:
                (
                    report["downed"]
                    if self._down(entry.get("handle"), entry.get("arch"), name, tries=1)
                    else report["pending"]
                ).append(name)
        asked = self.clock()
        try:
            records = self.sdk.get(self.sdk.status(cluster_names=None, all_users=False))
        except Exception as exc:  # noqa: BLE001 - API server down: try again next time
            report["errors"].append(f"status: {type(exc).__name__}: {exc}")
            return report
        active = self._active_clusters() | self._reconcile_warm(
            {_record_name(r) for r in records or []}, asked, report
        )
        for record in records or []:
            name = _record_name(record)
            if not OUR_CLUSTER.match(name) or name in report["downed"] or name in report["pending"]:
                continue
            if name in active:
                report["kept"].append(name)
                continue
            handle, arch = self._owner(name)
            log.warning("reconcile: %s belongs to no active batch; tearing it down", name)
            ok = self._down(handle, arch, name, force=True, tries=1)
            (report["downed"] if ok else report["pending"]).append(name)
        return report

    def start_reconciler(self, interval_s: float = 300.0) -> threading.Thread:
        """``reconcile()`` now and every ``interval_s`` seconds in a daemon thread (the worker starts it)."""
        with self._lock:
            if self._reconciler is not None and self._reconciler.is_alive():
                return self._reconciler

            def loop() -> None:
                while True:
                    try:
                        report = self.reconcile()
                        if any(report[k] for k in ("downed", "pending", "errors")):
                            log.info("reconcile: %s", report)
                    except Exception:  # noqa: BLE001 - never let the reconciler die
                        log.exception("reconcile failed")
                    if self._reconciler_stop.wait(interval_s):
                        return

            self._reconciler_stop.clear()
            self._reconciler = threading.Thread(target=loop, daemon=True, name="sky-reconciler")
            self._reconciler.start()
            return self._reconciler

    def stop_reconciler(self, timeout: float = 10.0) -> None:
        self._reconciler_stop.set()
        if self._reconciler is not None:
            self._reconciler.join(timeout)

    # ------------------------------------------------------------------ internals
    def _task_configs(self, batch: Any, hdir: Path) -> dict[str, dict[str, Any]]:
        """Per-arch task dicts: the batch's own ``tasks`` if it has them, else files + render_task."""
        if getattr(batch, "tasks", None):
            return {a: dict(c) for a, c in batch.tasks.items()}
        from bot.experiments import tasks

        if not batch.specs:
            raise ValueError("batch has no architectures")
        configs = {}
        for arch, spec in batch.specs.items():
            files_dir = hdir / re.sub(r"[^A-Za-z0-9_.-]", "_", arch)
            tasks.write_batch_files(spec, files_dir, batch.bundle)
            render = self.render or (lambda s, a, f: tasks.render_task(s, batch.arch_configs.get(a, {}), f))
            configs[arch] = dict(render(spec, arch, files_dir))
        return configs

    def _prices(self, batch: Any, configs: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
        """$/h per arch, quoted before anything is launched; an unknown price refuses the whole batch."""
        arch_configs = getattr(batch, "arch_configs", None) or {}
        prices, problems = {}, []
        for arch, config in configs.items():
            cfg = arch_configs.get(arch) or dict(config.get("resources") or {})
            quote = self.price(arch, cfg)
            usd = getattr(quote, "usd_per_hour", quote)
            if usd is None:
                note = getattr(quote, "note", "") or "price unknown"
                problems.append(f"`{arch}`: {note}")
            else:
                prices[arch] = float(usd)
        if problems:
            _refuse(
                "No VM was launched: the price of " + "; ".join(problems) + ". An unknown price would "
                "make the budget meaningless. Set `price_per_hour` for the architecture in the bot's "
                "settings, or put SkyPilot's catalog in place (`sky show-gpus` / `sky check` fetch it)."
            )
        return prices

    def _make_task(self, config: Mapping[str, Any]) -> Any:
        # a copy: sky.Task.from_yaml_config empties the dict it is given (a retry needs it whole)
        return (self.task_from_config or build_task)(copy.deepcopy(dict(config)))

    @staticmethod
    def _clusters(a: Mapping[str, Any]) -> list[str]:
        names = [a["cluster"]] if a.get("cluster") else []
        return [n for n in names if n not in a.get("down", [])]

    def _alive(self, handle: str, arch: str) -> bool:
        t = self._threads.get((handle, arch))
        return t is not None and t.is_alive()

    def _start(self, handle: str, arch: str, *, resume: bool) -> None:
        with self._lock:
            if self._alive(handle, arch):
                return
            t = threading.Thread(
                target=self._run_arch, args=(handle, arch, resume), daemon=True, name=f"sky-{handle}-{arch}"
            )
            self._threads[(handle, arch)] = t
            t.start()

    def _cancelled(self, handle: str) -> bool:
        return bool(self.load_state(handle).get("cancelled"))

    def _run_arch(self, handle: str, arch: str, resume: bool) -> None:
        try:
            self._run_arch_attempts(handle, arch, resume)
        except Exception as exc:  # noqa: BLE001 - never leave an arch "running" with no thread
            self._error(handle, arch, f"executor error: {type(exc).__name__}: {exc}")
            self._update(handle, arch, status="failed")

    def _run_arch_attempts(self, handle: str, arch: str, resume: bool) -> None:
        hdir = self._dir(handle)
        config = json.loads((hdir / f"{arch}.task.json").read_text())
        a = self.load_state(handle)["archs"][arch]
        best: dict[str, Any] | None = None
        if (hdir / f"{arch}.result.json").exists():
            best = json.loads((hdir / f"{arch}.result.json").read_text())
        attempt = a["attempt"]
        managed = a.get("mode") == "managed"
        target = a.get("job_name") if managed else a.get("cluster")
        reattach = None
        if resume and target and a.get("job_id") is not None:
            reattach = "job"  # the job runs (or ran): follow its log again
        elif resume and target and a.get("launch_request") and self._request_live(a["launch_request"]):
            reattach = "request"  # the launch/exec request is still in flight (or done): wait on it by its id
        elif resume and target and not managed:
            # died while launching and the request is gone: unknown state -> give the cluster up
            self._hand_back(handle, arch, a["cluster"], a.get("mode") or "launch", False, self.clock())
            self._down(handle, arch, a["cluster"])
        if reattach:
            result, complete = (self._attempt_managed if managed else self._attempt)(
                handle, arch, config, attempt, reattach=reattach
            )
            best = self._keep(hdir, arch, best, result, complete)
            if complete or self._cancelled(handle):
                return self._finish(handle, arch, best, complete)
        while attempt < self.max_attempts and not self._cancelled(handle):
            attempt += 1
            result, complete = (self._attempt_managed if is_managed(config) else self._attempt)(
                handle, arch, config, attempt, reattach=None
            )
            best = self._keep(hdir, arch, best, result, complete)
            if complete:
                return self._finish(handle, arch, best, True)
        self._finish(handle, arch, best, False)

    def _request_live(self, request_id: str) -> bool:
        """Is this launch/exec request pending, running or succeeded on the API server (``api_status``)?"""
        try:
            records = self.sdk.api_status([request_id])
        except Exception as exc:  # noqa: BLE001 - API server unreachable: not attachable, tear down instead
            log.warning("api_status %s: %s: %s", request_id, type(exc).__name__, exc)
            return False
        return any(
            _field(r, "request_id") == request_id and _field(r, "status").upper() in LIVE_REQUEST
            for r in records or []
        )

    def _cluster_status(self, name: str) -> str:
        """The cluster's status in SkyPilot (``UP``, ``INIT``, ``STOPPED``), "" when ``status`` lists none."""
        records = self.sdk.get(self.sdk.status(cluster_names=[name], all_users=False))
        for record in records or []:
            if _record_name(record) == name:
                return _field(record, "status").upper() or "UNKNOWN"
        return ""

    def _holds(self, handle: str, arch: str) -> bool:
        """Is batch ``handle`` still working on ``arch`` (so the run's cluster is busy)?"""
        try:
            a = self.load_state(handle)["archs"].get(arch) or {}
        except (KeyError, OSError, ValueError):
            return False
        return a.get("status") not in TERMINAL

    def _acquire(self, handle: str, arch: str) -> tuple[str, str, float | None]:
        """(cluster, mode, charged from) for this batch's next attempt on ``arch``: "exec" on the run's
        cluster while ``status`` says it is UP; "launch" of the run's next cluster when there is none (or it
        is gone, or not UP: then it is downed first); "private" (this batch's own, downed after it) while
        another active batch of the run holds the run's cluster, or the run was released."""
        key = run_key(handle)
        with self._lock:
            rec = self._load_run(key)
            e = rec["archs"].setdefault(
                arch, {"cluster": None, "seq": 0, "holder": None, "billed_until": None, "last_handle": None}
            )
            holder = e.get("holder")
            if rec.get("released") or (holder and holder != handle and self._holds(holder, arch)):
                e["seq"] += 1
                self._save_run(rec)
                return cluster_name(key, arch, e["seq"]), "private", None
            e["holder"] = handle
            existing, since = e.get("cluster"), e.get("billed_until")
            self._save_run(rec)
        if existing:
            status = self._cluster_status(existing)
            if status == "UP":
                return existing, "exec", since
            if status:  # INIT (a launch that failed half-way) or STOPPED: not reusable
                self._down(handle, arch, existing, force=True)
        adopted = self._adopt(handle, arch)  # a warm cluster a previous run of the repository left
        if adopted is not None:
            return adopted[0], "exec", adopted[1]
        with self._lock:
            rec = self._load_run(key)
            e = rec["archs"][arch]
            e["seq"] += 1
            e.update(cluster=cluster_name(key, arch, e["seq"]), billed_until=None)
            self._save_run(rec)
            return e["cluster"], "launch", None

    def _failed_attempt(
        self, handle: str, arch: str, attempt: int, exc: BaseException, log_path: Path
    ) -> tuple[dict[str, Any] | None, bool]:
        """An attempt that raised (launch failure, preemption, lost connection): record why, keep what the
        log holds as a partial result."""
        self._error(handle, arch, f"attempt {attempt}: {type(exc).__name__}: {exc}")
        return _read_result(log_path)[0], False

    def _hand_back(self, handle: str, arch: str, name: str, mode: str, keep: bool, ended: float) -> bool:
        """After an attempt: keep the run's cluster for the run's next batch (True) or give it up (False: the
        caller downs it). Kept only after a final result, for a run not released, a batch not cancelled."""
        if mode == "private":
            return False
        with self._lock:
            rec = self._load_run(run_key(handle))
            e = rec["archs"].get(arch) or {}
            mine = e.get("cluster") == name
            keep = keep and mine and not rec.get("released") and not self._cancelled(handle)
            if mine:
                e.update(holder=None, last_handle=handle, billed_until=ended if keep else None)
                if not keep:
                    e["cluster"] = None
                self._save_run(rec)
            return keep

    def _request_job(self, handle: str, arch: str, name: str, mode: str, config: Mapping[str, Any]) -> Any:
        """Send the launch (or exec) request; its id is on disk before anyone waits on it."""
        autostop = self.autostop_minutes
        if self.keep_warm_minutes > 0:  # autostop stays the backstop, past the warm period
            autostop += math.ceil(self.keep_warm_minutes)
            res = config.get("resources") or {}
            if (
                isinstance(res.get("autostop"), Mapping)
                and int(res["autostop"].get("idle_minutes") or 0) < autostop
            ):
                config = copy.deepcopy(dict(config))
                config["resources"]["autostop"] = {**res["autostop"], "idle_minutes": autostop}
        task = self._make_task(config)
        if mode == "exec":
            rid = self.sdk.exec(task, cluster_name=name, down=False)
        else:
            rid = self.sdk.launch(
                task,
                cluster_name=name,
                retry_until_up=False,
                idle_minutes_to_autostop=autostop,
                down=True,
            )
        self._update(handle, arch, launch_request=str(rid))
        return rid

    def _attempt(
        self, handle: str, arch: str, config: Mapping[str, Any], attempt: int, *, reattach: str | None
    ) -> tuple[dict[str, Any] | None, bool]:
        """One attempt on one cluster: launch, exec on the run's cluster, or re-attach (to the job, or to the
        launch/exec request by its id). The cluster is kept for the run's next batch only after a final
        result; otherwise it is downed here."""
        hdir = self._dir(handle)
        a = self.load_state(handle)["archs"][arch]
        if reattach:
            name, mode, since = a["cluster"], a.get("mode") or "launch", None
        else:
            self._update(
                handle,
                arch,
                status="launching",
                attempt=attempt,
                cluster=None,
                mode=None,
                job_id=None,
                launch_request=None,
            )
            try:
                name, mode, since = self._acquire(handle, arch)
            except Exception as exc:  # noqa: BLE001 - no `status` answer: the attempt fails, nothing launched
                self._error(handle, arch, f"attempt {attempt}: {type(exc).__name__}: {exc}")
                return None, False
            self._update(handle, arch, cluster=name, mode=mode)
        log_path = hdir / f"{arch}.log"
        started = self.clock() if since is None else float(since)
        complete = False
        try:
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(
                    f"\n=== {arch} attempt {attempt} cluster {name} "
                    f"{'re-attach to the ' + reattach if reattach else mode}\n"
                )
                log.flush()
                if reattach == "job":
                    job_id = a["job_id"]
                else:
                    rid = (
                        a["launch_request"]
                        if reattach
                        else self._request_job(handle, arch, name, mode, config)
                    )
                    try:
                        job_id, _ = self.sdk.stream_and_get(rid, output_stream=log)
                    except Exception as exc:
                        gone = type(exc).__name__ in CLUSTER_GONE or isinstance(exc, ValueError)
                        if mode != "exec" or not gone or self._cancelled(handle):
                            raise
                        # the run's cluster went away between `status` and `exec`: launch the run's next one
                        log.write(
                            f"\n=== {name} is gone ({type(exc).__name__}: {exc}); launching a fresh one\n"
                        )
                        self._hand_back(handle, arch, name, mode, False, self.clock())
                        self._down(handle, arch, name, force=True)
                        name, mode, _ = self._acquire(handle, arch)
                        self._update(handle, arch, cluster=name, mode=mode)
                        started = self.clock()
                        rid = self._request_job(handle, arch, name, mode, config)
                        job_id, _ = self.sdk.stream_and_get(rid, output_stream=log)
                    self._update(handle, arch, status="running", job_id=job_id)
                if self._cancelled(handle):
                    return None, False
                code = self.sdk.tail_logs(name, job_id, follow=True, output_stream=log)
                log.write(f"\n=== job exit code {code}\n")
            result, complete = _read_result(log_path)
            if not complete:
                self._error(
                    handle,
                    arch,
                    f"attempt {attempt}: job ended (exit {code}) without a final result"
                    f"{' (partial kept)' if result else ''}",
                )
            return result, complete
        except Exception as exc:  # noqa: BLE001 - launch failure, preemption, lost connection
            return self._failed_attempt(handle, arch, attempt, exc, log_path)
        finally:
            ended = self.clock()
            if not self._hand_back(handle, arch, name, mode, complete, ended):
                # even if cancel() downed it while the request was in flight
                self._down(handle, arch, name, force=True)
                ended = self.clock()
            with self._lock:
                state = self.load_state(handle)
                state["archs"][arch]["vm_seconds"] += max(0.0, ended - started)
                self._save(handle, state)

    # ------------------------------------------------------------------ managed jobs (spot archs)
    def _managed_name(self, handle: str, arch: str) -> str:
        """``arj-r<run>-<hex6>-<arch>-<seq>``: never a cluster name of ours (``ar-``), so the cluster
        reconciler leaves the jobs controller's clusters alone; the managed-job sweep knows the prefix."""
        key = run_key(handle)
        with self._lock:
            rec = self._load_run(key)
            e = rec["archs"].setdefault(
                arch, {"cluster": None, "seq": 0, "holder": None, "billed_until": None, "last_handle": None}
            )
            e["seq"] += 1
            self._save_run(rec)
            (self.state_dir / MANAGED_MARK).touch()
            return "arj-" + cluster_name(key, arch, e["seq"])[len("ar-") :]

    def _managed_status(self, job_id: int) -> tuple[str, int]:
        """(status, recovery count) of a managed job from ``sky.jobs.queue``; ("", 0) when unknown."""
        try:
            got = self.sdk.get(self.sdk.jobs.queue(refresh=False, job_ids=[int(job_id)], version=2))
        except Exception as exc:  # noqa: BLE001 - unknown status: the caller treats it as not finished
            log.warning("jobs.queue %s: %s: %s", job_id, type(exc).__name__, exc)
            return "", 0
        for record in _records(got):
            if _field(record, "job_id") == str(job_id):
                return _field(record, "status").upper(), int(_field(record, "recovery_count") or 0)
        return "", 0

    def _cancel_managed(self, handle: str | None, arch: str | None, job_id: int) -> bool:
        """``sky.jobs.cancel``: the jobs controller stops the job and tears its cluster down."""
        try:
            self.sdk.get(self.sdk.jobs.cancel(job_ids=[int(job_id)]))
            return True
        except Exception as exc:  # noqa: BLE001 - the reconciler's managed-job sweep tries again
            message = f"cancel managed job {job_id}: {type(exc).__name__}: {exc}; the reconciler retries"
            if handle and arch:
                self._error(handle, arch, message)
            log.warning(message)
            return False

    def _reconcile_managed(self, report: dict[str, list[str]]) -> None:
        """Cancel the bot's unfinished managed jobs (``arj-r<run>-<hex6>-...``) no active batch follows."""
        if not (self.state_dir / MANAGED_MARK).exists():
            return  # never used: do not wake a jobs controller for nothing
        try:
            got = self.sdk.get(self.sdk.jobs.queue(refresh=False, skip_finished=True, version=2))
        except Exception as exc:  # noqa: BLE001 - API server or controller down: next time
            report["errors"].append(f"jobs.queue: {type(exc).__name__}: {exc}")
            return
        records = _records(got)
        active = set()
        for path in self.state_dir.glob("*/state.json"):
            try:
                state = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            active |= {
                a.get("job_name")
                for a in state.get("archs", {}).values()
                if a.get("mode") == "managed" and a.get("status") not in TERMINAL
            }
        for record in records:
            name = _field(record, "job_name")
            if not OUR_JOB.match(name) or _field(record, "status").upper() in MANAGED_TERMINAL:
                continue
            if name in active:
                report["kept"].append(name)
                continue
            log.warning("reconcile: managed job %s belongs to no active batch; cancelling it", name)
            ok = self._cancel_managed(None, None, int(_field(record, "job_id")))
            (report["downed"] if ok else report["pending"]).append(name)

    def _attempt_managed(
        self, handle: str, arch: str, config: Mapping[str, Any], attempt: int, *, reattach: str | None
    ) -> tuple[dict[str, Any] | None, bool]:
        """One attempt as a SkyPilot managed job (``sky.jobs.launch``): the jobs controller provisions the
        spot VM, recovers from preemption and tears the job's cluster down; its logs outlive the cluster.
        An attempt that ends without a final result cancels its job (unless the job is known finished)."""
        hdir = self._dir(handle)
        a = self.load_state(handle)["archs"][arch]
        if reattach:
            name = a["job_name"]
        else:
            self._update(
                handle,
                arch,
                status="launching",
                attempt=attempt,
                cluster=None,
                mode="managed",
                job_name=None,
                job_id=None,
                launch_request=None,
            )
            name = self._managed_name(handle, arch)
            self._update(handle, arch, job_name=name)
        log_path = hdir / f"{arch}.log"
        started = self.clock()
        job_id = a.get("job_id") if reattach == "job" else None
        status, complete = "", False
        try:
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(
                    f"\n=== {arch} attempt {attempt} managed job {name} "
                    f"{'re-attach to the ' + reattach if reattach else 'launch'}\n"
                )
                log.flush()
                if reattach != "job":
                    if reattach == "request":
                        rid = a["launch_request"]
                    else:
                        rid = self.sdk.jobs.launch(self._make_task(config), name=name)
                        self._update(handle, arch, launch_request=str(rid))
                    job_ids, _ = self.sdk.stream_and_get(rid, output_stream=log)
                    job_id = int(job_ids[0] if isinstance(job_ids, (list, tuple)) else job_ids)
                    self._update(handle, arch, status="running", job_id=job_id)
                if self._cancelled(handle):
                    return None, False
                code = self.sdk.jobs.tail_logs(job_id=job_id, follow=True, output_stream=log)
                status, recoveries = self._managed_status(job_id)
                log.write(
                    f"\n=== managed job {job_id}: {status or 'status unknown'}, exit code {code}, "
                    f"recovered {recoveries} time(s)\n"
                )
            result, complete = _read_result(log_path)
            if not complete:
                self._error(
                    handle,
                    arch,
                    f"attempt {attempt}: managed job {job_id} ended "
                    f"({status or f'exit {code}'}) without a final result"
                    f"{' (partial kept)' if result else ''}",
                )
            return result, complete
        except Exception as exc:  # noqa: BLE001 - launch refused, lost connection to the API server
            return self._failed_attempt(handle, arch, attempt, exc, log_path)
        finally:
            if not complete and job_id is not None and status not in MANAGED_TERMINAL:
                self._cancel_managed(handle, arch, int(job_id))
            with self._lock:
                state = self.load_state(handle)
                state["archs"][arch]["vm_seconds"] += max(0.0, self.clock() - started)
                self._save(handle, state)

    def _keep(
        self,
        hdir: Path,
        arch: str,
        best: dict[str, Any] | None,
        new: dict[str, Any] | None,
        complete: bool = False,
    ) -> dict[str, Any] | None:
        # a final result always wins over a dead attempt's partial one (a retry may stop earlier)
        if new is not None and (complete or _progress(new) >= _progress(best)):
            (hdir / f"{arch}.result.json").write_text(json.dumps(new))
            return new
        return best

    def _finish(self, handle: str, arch: str, best: Mapping[str, Any] | None, complete: bool) -> None:
        if self._cancelled(handle):
            status = "cancelled"
        else:
            status = "done" if best is not None else "failed"
        self._update(handle, arch, status=status, complete=complete)

    def _error(self, handle: str, arch: str, message: str) -> None:
        with self._lock:
            state = self.load_state(handle)
            state["archs"][arch]["errors"].append(message)
            self._save(handle, state)

    def _gone(self, name: str) -> bool:
        """True once SkyPilot's ``status`` no longer lists the cluster (any state, STOPPED included)."""
        records = self.sdk.get(self.sdk.status(cluster_names=[name], all_users=False))
        return not any(_record_name(r) == name for r in records or [])

    def _down(
        self,
        handle: str | None,
        arch: str | None,
        name: str,
        *,
        force: bool = False,
        tries: int | None = None,
    ) -> bool:
        """Tear ``name`` down until ``status`` confirms it is gone (retried with backoff); True if confirmed.

        Skipped when already confirmed unless ``force``. Unconfirmed after ``tries``: the cluster stays in
        ``teardown.json`` (pending teardown) and ``reconcile()`` keeps retrying it."""
        known = handle is not None and arch is not None and (self.state_dir / handle / "state.json").exists()
        with self._lock:
            if not force and known and name in self.load_state(handle)["archs"][arch]["down"]:
                return True
        entry = {
            "handle": handle,
            "arch": arch,
            "attempts": 0,
            "error": "",
            "since": self.clock(),
            **self.pending_teardown().get(name, {}),
        }
        first, longest = self.down_backoff
        tries = self.down_tries if tries is None else tries
        for i in range(tries):
            entry["attempts"] = int(entry["attempts"]) + 1
            try:
                self.sdk.get(self.sdk.down(name))
            except Exception as exc:  # noqa: BLE001 - a cluster that is already gone is fine; status decides
                if "does not exist" not in str(exc).lower() and type(exc).__name__ != "ClusterDoesNotExist":
                    entry["error"] = f"down: {type(exc).__name__}: {exc}"
            try:
                gone = self._gone(name)
                if not gone:
                    entry["error"] = entry["error"] or "status still lists the cluster"
            except Exception as exc:  # noqa: BLE001 - unknown is not gone
                gone, entry["error"] = False, f"status: {type(exc).__name__}: {exc}"
            if gone:
                self._set_pending(name, None)
                if known:
                    with self._lock:
                        state = self.load_state(handle)
                        if name not in state["archs"][arch]["down"]:
                            state["archs"][arch]["down"].append(name)
                        self._save(handle, state)
                return True
            wait = min(longest, first * 2 ** (int(entry["attempts"]) - 1))
            entry["next_at"] = self.clock() + wait
            self._set_pending(name, entry)
            if i + 1 < tries:
                self.sleep(wait)
        message = (
            f"down {name}: not confirmed gone after {entry['attempts']} tries ({entry['error']}); "
            "pending teardown, retried by the reconciler"
        )
        if known:
            self._error(handle, arch, message)
        log.warning(message)
        return False
