"""The SkyPilot SDK double (`FakeSky`, `FakeJobs`) shared by tests/test_skypilot_exec.py (which checks its
signatures against the real `sky`), tests/test_concurrent_runs.py and scripts/concurrent_runs.py.

``plans[arch][n]`` scripts the (n+1)-th launch/exec on an arch; ``Attempt.seconds`` is the simulated time the
job runs (setup + benchmark) before it prints its final result (a `down` ends it early).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sky.server.requests.payloads import RequestPayload
from sky.utils.common import StatusRefreshMode

import sky
from bot.experiments.skypilot_exec import SkyPilotExecutor
from sky import exceptions

SDK_METHODS = (
    "launch",
    "exec",
    "stream_and_get",
    "tail_logs",
    "down",
    "get",
    "job_status",
    "api_cancel",
    "status",
    "api_status",
)
PRICE = 0.1785


def result(arch: str, done: int, total: int = 2, complete: bool = True) -> dict:
    variants = {}
    for i, name in enumerate(["baseline", "cand"][:total]):
        variants[name] = (
            {"status": "ok", "samples": {"ns": [1.0, 1.1, 1.2]}}
            if i < done
            else {"status": "pending", "samples": {}}
        )
    return {"schema": 1, "arch": arch, "variants": variants, "complete": complete, "errors": []}


@dataclass
class Attempt:
    """What happens to the n-th launch or exec on an arch: 'ok' | 'launch_fail' | 'slow_launch' | 'preempt' |
    'die' | 'block'."""

    kind: str
    partial_variants: int = 1
    seconds: float = 0.0  # 'ok': how long the job runs before its final result (a `down` cuts it short)
    final: dict | None = None  # the final result the job prints (default: `result(arch, 2)`)


@dataclass
class FakeSky:
    """SkyPilot SDK double: request ids (with their status), async launch/exec, per-cluster job ids, logs,
    down. Signatures mirror the real SDK. ``plans[arch][n]`` is what the (n+1)-th launch/exec on arch does."""

    plans: dict[str, list[Attempt]]
    submitted: dict[str, int] = field(default_factory=dict)  # arch -> launches + execs so far
    queued: dict[tuple, Attempt] = field(default_factory=dict)  # (cluster, job id) -> plan
    managed: dict[int, dict] = field(default_factory=dict)  # managed job id -> name, plan, status, ...
    freeze: threading.Event | None = None  # set: this process "is killed": stream_and_get never returns
    vanish_on_exec: set[str] = field(default_factory=set)  # clusters that go away as an exec arrives
    status_errors: int = 0  # how many `status` calls fail (API server unreachable)
    calls: list[tuple] = field(default_factory=list)
    downed: list[str] = field(default_factory=list)
    released: dict[str, threading.Event] = field(default_factory=dict)
    requests: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    cancelled: threading.Event = field(default_factory=threading.Event)
    alive: set[str] = field(default_factory=set)  # clusters that exist (what `status` lists)
    down_failures: dict[str, int] = field(default_factory=dict)  # name -> how many `down` requests fail
    lingering: dict[str, int] = field(default_factory=dict)  # name -> `down`s that return but leave it up
    running: set[str] = field(default_factory=set)  # clusters whose job is running now (in `tail_logs`)
    peak: int = 0  # the most jobs that ran at once
    gate: int = 0  # > 0: an 'ok' job with seconds also ends once this many jobs ran at once (a latch)
    # (cluster or job name, sky.Task) -> Attempt: scripts each job from its task (a fan-out shard's spec is in
    # its workdir) instead of `plans`
    plan_for: Any = None

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)
        self.gate_open = False

    def _submit(self, cluster: str, task: Any = None) -> Attempt:
        arch = cluster.split("-")[-2]
        if self.plan_for is not None:
            return self.plan_for(cluster, task)
        with self.lock:
            self.submitted[arch] = self.submitted.get(arch, 0) + 1
            return self.plans[arch][self.submitted[arch] - 1]

    def _job(self, cluster: str, plan: Attempt) -> str:
        """Queue a job on the cluster (ids count up per cluster, as SkyPilot's job table does)."""
        with self.lock:
            job_id = 1 + sum(c == cluster for c, _ in self.queued)
            self.queued[(cluster, job_id)] = plan
        if plan.kind == "slow_launch":
            return self._request("slow_launch")
        if plan.kind == "launch_fail":
            return self._request(
                exceptions.ResourcesUnavailableError("c7g.xlarge: InsufficientInstanceCapacity")
            )
        return self._request((job_id, object()))

    def _request(self, value: Any) -> str:
        with self.lock:
            rid = f"req-{len(self.requests)}"
            self.requests[rid] = value
        return rid

    def launch(
        self,
        task,
        cluster_name=None,
        retry_until_up=False,
        idle_minutes_to_autostop=None,
        wait_for=None,
        dryrun=False,
        down=False,
        backend=None,
        optimize_target=None,
        no_setup=False,
        clone_disk_from=None,
        fast=False,
        resize=False,
        _need_confirmation=False,
        _is_launched_by_jobs_controller=False,
        _is_launched_by_sky_serve_controller=False,
        _disable_controller_check=False,
        _file_mounts_blob_id=None,
        _extra_launch_context=None,
        _include_credentials=False,
    ):
        assert isinstance(task, sky.Task) and task.run and cluster_name and down and idle_minutes_to_autostop
        assert not retry_until_up
        self.calls.append(("launch", cluster_name))
        self.released.setdefault(cluster_name, threading.Event())
        with self.lock:
            self.alive.add(cluster_name)  # even a failed launch may leave a half-provisioned cluster
        return self._job(cluster_name, self._submit(cluster_name, task))

    def exec(self, task, cluster_name=None, dryrun=False, down=False, backend=None):
        assert isinstance(task, sky.Task) and task.run and cluster_name and not down
        self.calls.append(("exec", cluster_name))
        with self.lock:
            if cluster_name in self.vanish_on_exec:
                self.alive.discard(cluster_name)
            up = cluster_name in self.alive
        if not up:
            return self._request(exceptions.ClusterDoesNotExist(f"Cluster {cluster_name!r} does not exist."))
        return self._job(cluster_name, self._submit(cluster_name, task))

    def api_status(self, request_ids=None, all_status=False, limit=None, fields=None, cluster_name=None):
        out = []
        for rid in request_ids or []:
            if rid not in self.requests:
                continue
            value = self.requests[rid]
            status = (
                "RUNNING"
                if value == "slow_launch" and not self.cancelled.is_set()
                else "FAILED"
                if isinstance(value, BaseException) or value == "slow_launch"
                else "SUCCEEDED"
            )
            out.append(
                RequestPayload(
                    request_id=rid,
                    name="sky.launch",
                    entrypoint="",
                    request_body="",
                    status=status,
                    created_at=0.0,
                    user_id="u",
                    return_value="",
                    error="",
                    pid=None,
                    schedule_type="long",
                )
            )
        return out

    def stream_and_get(
        self,
        request_id=None,
        log_path=None,
        tail=None,
        follow=True,
        output_stream=None,
        relay_rich_status=False,
    ):
        if self.freeze is not None:
            self.freeze.wait()  # a killed bot never gets the answer
        value = self.requests[request_id]
        if output_stream is not None:
            output_stream.write("I provisioning...\n")
        if value == "slow_launch":
            self.cancelled.wait(20)
            raise exceptions.RequestCancelled(f"request {request_id} cancelled")
        if isinstance(value, BaseException):
            raise value
        return value

    def get(self, request_id):
        value = self.requests[request_id]
        if isinstance(value, BaseException):
            raise value
        return value

    def tail_logs(self, cluster_name, job_id, follow, tail=0, output_stream=None, *, preload_content=True):
        arch, plan = cluster_name.split("-")[-2], self.queued[(cluster_name, job_id)]
        self.calls.append(("tail_logs", cluster_name, job_id))
        out = output_stream
        out.write("[driver] building\n")
        out.write(
            "AUTORESEARCH_PARTIAL " + json.dumps(result(arch, plan.partial_variants, complete=False)) + "\n"
        )
        if plan.kind == "ok":
            if plan.seconds:
                downed = self.released.setdefault(cluster_name, threading.Event())
                with self.changed:
                    self.running.add(cluster_name)
                    self.peak = max(self.peak, len(self.running))
                    self.gate_open = self.gate_open or (self.gate > 0 and self.peak >= self.gate)
                    self.changed.notify_all()
                    if self.gate:
                        self.changed.wait_for(lambda: self.gate_open or downed.is_set(), plan.seconds)
                if not self.gate and downed.wait(plan.seconds) or downed.is_set():
                    with self.changed:
                        self.running.discard(cluster_name)
                    return 137  # downed while it ran: no final result
                with self.changed:
                    self.running.discard(cluster_name)
            final = {**(plan.final or result(arch, 2)), "cluster": cluster_name}  # whose result it is
            out.write("AUTORESEARCH_RESULT " + json.dumps(final) + "\n")
            return 0
        if plan.kind == "preempt":
            raise exceptions.ClusterNotUpError(f"Cluster {cluster_name!r} is not up (preempted).")
        if plan.kind == "die":
            if plan.seconds:  # the VM runs that long before it dies
                self.released.setdefault(cluster_name, threading.Event()).wait(plan.seconds)
            out.write('AUTORESEARCH_PARTIAL {"arch": "cut')  # VM died mid-line
            return 100
        if plan.kind == "block":
            self.released[cluster_name].wait(20)
            return 137
        raise AssertionError(plan.kind)

    def down(self, cluster_name, purge=False, graceful=False, graceful_timeout=None):
        value = None
        with self.lock:
            self.downed.append(cluster_name)
            if self.down_failures.get(cluster_name, 0) > 0:
                self.down_failures[cluster_name] -= 1
                value = exceptions.ClusterOwnerIdentityMismatchError(
                    f"down {cluster_name}: RequestLimitExceeded (throttled)"
                )
            elif self.lingering.get(cluster_name, 0) > 0:
                self.lingering[cluster_name] -= 1
            elif cluster_name in self.alive:
                self.alive.discard(cluster_name)
            else:
                value = exceptions.ClusterDoesNotExist(f"Cluster {cluster_name!r} does not exist.")
        self.released.setdefault(cluster_name, threading.Event()).set()
        with self.changed:
            self.changed.notify_all()
        return self._request(value)

    def status(
        self,
        cluster_names=None,
        refresh=StatusRefreshMode.NONE,
        all_users=False,
        *,
        _include_credentials=False,
        _summary_response=False,
    ):
        with self.lock:
            if self.status_errors > 0:
                self.status_errors -= 1
                raise exceptions.ApiServerConnectionError("http://127.0.0.1:46580")
            names = sorted(self.alive if cluster_names is None else set(cluster_names) & self.alive)
        return self._request([{"name": n, "status": "UP"} for n in names])

    @property
    def jobs(self) -> FakeJobs:
        return FakeJobs(self)

    def job_status(self, cluster_name, job_ids=None):
        return self._request({1: None})

    def api_cancel(self, request_ids=None, all_users=False, silent=False):
        self.calls.append(("api_cancel", request_ids))
        self.cancelled.set()
        return self._request([])


class FakeJobs:
    """``sky.jobs`` double over the same API server state as its FakeSky: the controller runs each job on its
    own spot cluster, recovers it after a preemption and keeps its log. Signatures mirror the real SDK."""

    def __init__(self, sky_: FakeSky) -> None:
        self.sky = sky_

    def launch(
        self,
        task,
        name=None,
        pool=None,
        num_jobs=None,
        job_group=sky.jobs.AUTO_JOB_GROUP,
        _need_confirmation=False,
    ):
        assert isinstance(task, sky.Task) and task.run and name and next(iter(task.resources)).use_spot
        self.sky.calls.append(("jobs.launch", name))
        plan = self.sky._submit(name, task)
        with self.sky.lock:
            job_id = len(self.sky.managed) + 1
            self.sky.managed[job_id] = {
                "name": name,
                "plan": plan,
                "status": "PENDING",
                "recoveries": 0,
                "stop": threading.Event(),
            }
        return self.sky._request(([job_id], None))

    def tail_logs(
        self,
        name=None,
        job_id=None,
        follow=True,
        controller=False,
        refresh=False,
        tail=None,
        tail_offset=None,
        output_stream=None,
        task=None,
        *,
        preload_content=True,
    ):
        self.sky.calls.append(("jobs.tail_logs", job_id))
        job, out = self.sky.managed[job_id], output_stream
        arch, plan = job["name"].split("-")[-2], job["plan"]
        if plan.kind == "launch_fail":
            job["status"] = "FAILED_NO_RESOURCE"
            out.write("No resource satisfying the request\n")
            return 1
        job["status"] = "RUNNING"
        out.write("[driver] building\n")
        partial = result(arch, plan.partial_variants, complete=False)
        out.write("AUTORESEARCH_PARTIAL " + json.dumps(partial) + "\n")
        if plan.kind == "preempt":  # the controller relaunches the spot VM and reruns the task
            job["recoveries"] += 1
            out.write("(controller) spot VM preempted; recovering\n[driver] building\n")
        if plan.kind in ("ok", "preempt"):
            out.write("AUTORESEARCH_RESULT " + json.dumps(plan.final or result(arch, 2)) + "\n")
            job["status"] = "SUCCEEDED"
            return 0
        if plan.kind == "block":
            job["stop"].wait(20)
            return 137
        raise AssertionError(plan.kind)

    def queue(self, refresh, skip_finished=False, all_users=False, job_ids=None, version=1):
        from sky.jobs.state import ManagedJobStatus
        from sky.schemas.api.responses import ManagedJobRecord

        with self.sky.lock:
            records = [
                ManagedJobRecord(
                    job_id=jid,
                    job_name=j["name"],
                    status=ManagedJobStatus(j["status"]),
                    recovery_count=j["recoveries"],
                )
                for jid, j in sorted(self.sky.managed.items())
                if job_ids is None or jid in job_ids
            ]
        if skip_finished:
            records = [r for r in records if not r.status.is_terminal()]
        return self.sky._request((records, len(records), {}, len(records)) if version == 2 else records)

    def cancel(
        self,
        name=None,
        job_ids=None,
        all=False,
        all_users=False,
        pool=None,
        graceful=False,
        graceful_timeout=None,
        task=None,
    ):
        self.sky.calls.append(("jobs.cancel", tuple(job_ids or ())))
        with self.sky.lock:
            for jid in job_ids or []:
                job = self.sky.managed[jid]
                if job["status"] in ("PENDING", "RUNNING"):
                    job["status"] = "CANCELLED"
                job["stop"].set()
        return self.sky._request(None)


TASK = {"name": "autoresearch-1-x86", "run": "python3 driver.py", "resources": {"cpus": "2+"}}


@dataclass
class Batch:
    run_id: int
    tasks: dict[str, dict]
    repo: str = ""


def executor(tmp_path: Path, fake: FakeSky, **kw: Any) -> SkyPilotExecutor:
    kw = {"price": lambda arch, cfg: PRICE, "sleep": lambda s: None, **kw}
    return SkyPilotExecutor(tmp_path / "handles", sdk=fake, task_from_config=sky.Task.from_yaml_config, **kw)
