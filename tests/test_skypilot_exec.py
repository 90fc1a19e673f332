"""SkyPilotExecutor control flow against SkyPilot's SDK surface, faked at the SDK boundary.

The fake's methods have the real SDK signatures (checked with inspect.signature against `sky`), the
exceptions are SkyPilot's own, and tasks are real `sky.Task` objects. Task dicts are validated with the
real library offline against a hand-placed catalog under an isolated HOME (subprocess).
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sky
from sky import exceptions
from sky.utils import common_utils
from sky.utils.common import StatusRefreshMode

from bot.experiments import tasks
from bot.experiments.skypilot_exec import SkyPilotExecutor, cluster_name, parse_result_log
from bot.pipeline import StageFailed
from sky_catalog_fixture import isolated_env, seed_catalog

REPO = Path(__file__).resolve().parents[1]
SDK_METHODS = ("launch", "stream_and_get", "tail_logs", "down", "get", "job_status", "api_cancel", "status")
PRICE = 0.1785


def result(arch: str, done: int, total: int = 2, complete: bool = True) -> dict:
    variants = {}
    for i, name in enumerate(["baseline", "cand"][:total]):
        variants[name] = ({"status": "ok", "samples": {"ns": [1.0, 1.1, 1.2]}} if i < done
                          else {"status": "pending", "samples": {}})
    return {"schema": 1, "arch": arch, "variants": variants, "complete": complete, "errors": []}


@dataclass
class Attempt:
    """What happens to one cluster: 'ok' | 'launch_fail' | 'slow_launch' | 'preempt' | 'die' | 'block'."""
    kind: str
    partial_variants: int = 1


@dataclass
class FakeSky:
    """SkyPilot SDK double: request ids, async launch, logs, down. Signatures mirror the real SDK."""
    plans: dict[str, list[Attempt]]
    calls: list[tuple] = field(default_factory=list)
    downed: list[str] = field(default_factory=list)
    released: dict[str, threading.Event] = field(default_factory=dict)
    requests: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    cancelled: threading.Event = field(default_factory=threading.Event)
    alive: set[str] = field(default_factory=set)          # clusters that exist (what `status` lists)
    down_failures: dict[str, int] = field(default_factory=dict)  # name -> how many `down` requests fail
    lingering: dict[str, int] = field(default_factory=dict)      # name -> `down`s that return but leave it up

    def _plan(self, cluster: str) -> tuple[str, Attempt]:
        arch = cluster.split("-")[-2]
        attempt = int(cluster.split("-")[-1])
        return arch, self.plans[arch][attempt - 1]

    def _request(self, value: Any) -> str:
        with self.lock:
            rid = f"req-{len(self.requests)}"
            self.requests[rid] = value
        return rid

    def launch(self, task, cluster_name=None, retry_until_up=False, idle_minutes_to_autostop=None, wait_for=None,
               dryrun=False, down=False, backend=None, optimize_target=None, no_setup=False,
               clone_disk_from=None, fast=False, resize=False, _need_confirmation=False,
               _is_launched_by_jobs_controller=False, _is_launched_by_sky_serve_controller=False,
               _disable_controller_check=False, _file_mounts_blob_id=None, _extra_launch_context=None,
               _include_credentials=False):
        assert isinstance(task, sky.Task) and cluster_name and down and idle_minutes_to_autostop
        assert not retry_until_up
        self.calls.append(("launch", cluster_name))
        self.released.setdefault(cluster_name, threading.Event())
        with self.lock:
            self.alive.add(cluster_name)  # even a failed launch may leave a half-provisioned cluster
        _, plan = self._plan(cluster_name)
        if plan.kind == "slow_launch":
            return self._request("slow_launch")
        if plan.kind == "launch_fail":
            return self._request(exceptions.ResourcesUnavailableError("c7g.xlarge: InsufficientInstanceCapacity"))
        return self._request((1, object()))

    def stream_and_get(self, request_id=None, log_path=None, tail=None, follow=True, output_stream=None,
                       relay_rich_status=False):
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
        arch, plan = self._plan(cluster_name)
        self.calls.append(("tail_logs", cluster_name, job_id))
        out = output_stream
        out.write("[driver] building\n")
        out.write("AUTORESEARCH_PARTIAL " + json.dumps(result(arch, plan.partial_variants, complete=False)) + "\n")
        if plan.kind == "ok":
            out.write("AUTORESEARCH_RESULT " + json.dumps(result(arch, 2)) + "\n")
            return 0
        if plan.kind == "preempt":
            raise exceptions.ClusterNotUpError(f"Cluster {cluster_name!r} is not up (preempted).")
        if plan.kind == "die":
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
                    f"down {cluster_name}: RequestLimitExceeded (throttled)")
            elif self.lingering.get(cluster_name, 0) > 0:
                self.lingering[cluster_name] -= 1
            elif cluster_name in self.alive:
                self.alive.discard(cluster_name)
            else:
                value = exceptions.ClusterDoesNotExist(f"Cluster {cluster_name!r} does not exist.")
        self.released.setdefault(cluster_name, threading.Event()).set()
        return self._request(value)

    def status(self, cluster_names=None, refresh=StatusRefreshMode.NONE, all_users=False, *,
               _include_credentials=False, _summary_response=False):
        with self.lock:
            names = sorted(self.alive if cluster_names is None else set(cluster_names) & self.alive)
        return self._request([{"name": n, "status": "UP"} for n in names])

    def job_status(self, cluster_name, job_ids=None):
        return self._request({1: None})

    def api_cancel(self, request_ids=None, all_users=False, silent=False):
        self.calls.append(("api_cancel", request_ids))
        self.cancelled.set()
        return self._request([])


TASK = {"name": "autoresearch-1-x86", "run": "python3 driver.py", "resources": {"cpus": "2+"}}


@dataclass
class Batch:
    run_id: int
    tasks: dict[str, dict]


def executor(tmp_path: Path, fake: FakeSky, **kw: Any) -> SkyPilotExecutor:
    kw = {"price": lambda arch, cfg: PRICE, "sleep": lambda s: None, **kw}
    return SkyPilotExecutor(tmp_path / "handles", sdk=fake, task_from_config=sky.Task.from_yaml_config, **kw)


def test_fake_matches_real_sdk_signatures() -> None:
    for name in SDK_METHODS:
        real = inspect.signature(getattr(sky, name))
        fake = inspect.signature(getattr(FakeSky, name))
        fake_params = list(fake.parameters.values())[1:]  # drop self
        assert [(p.name, p.kind) for p in fake_params] == [(p.name, p.kind) for p in real.parameters.values()], name


def test_two_arches_succeed_and_clusters_are_downed(tmp_path: Path) -> None:
    fake = FakeSky({"x86": [Attempt("ok")], "arm": [Attempt("ok")]})
    ex = executor(tmp_path, fake)
    handle = ex.submit(Batch(7, {"x86": TASK, "arm": TASK}))
    assert ex.wait(handle, timeout=30) == "done"
    got = ex.collect(handle)
    assert set(got) == {"x86", "arm"} and all(r["complete"] for r in got.values())
    assert got["arm"]["variants"]["cand"]["status"] == "ok"
    assert sorted(fake.downed) == sorted([cluster_name(handle, "x86", 1), cluster_name(handle, "arm", 1)])
    state = ex.load_state(handle)
    assert {a: s["status"] for a, s in state["archs"].items()} == {"x86": "done", "arm": "done"}
    assert all(s["job_id"] == 1 for s in state["archs"].values())


def test_preemption_and_launch_failure_are_retried_once(tmp_path: Path) -> None:
    fake = FakeSky({"x86": [Attempt("preempt"), Attempt("ok")], "arm": [Attempt("launch_fail"), Attempt("ok")]})
    ex = executor(tmp_path, fake)
    handle = ex.submit(Batch(8, {"x86": TASK, "arm": TASK}))
    assert ex.wait(handle, timeout=30) == "done"
    got = ex.collect(handle)
    assert all(r["complete"] for r in got.values())
    assert any("ClusterNotUpError" in e for e in got["x86"]["errors"])
    assert any("ResourcesUnavailableError" in e for e in got["arm"]["errors"])
    launches = [c[1] for c in fake.calls if c[0] == "launch"]
    assert len(launches) == 4 and set(fake.downed) == set(launches)  # every cluster torn down


def test_vm_dying_mid_run_keeps_partial_result_and_downs(tmp_path: Path) -> None:
    fake = FakeSky({"x86": [Attempt("ok")], "arm": [Attempt("die", partial_variants=1), Attempt("launch_fail")]})
    ex = executor(tmp_path, fake)
    handle = ex.submit(Batch(9, {"x86": TASK, "arm": TASK}))
    assert ex.wait(handle, timeout=30) == "done"
    got = ex.collect(handle)
    arm = got["arm"]
    assert arm["complete"] is False and arm["variants"]["baseline"]["status"] == "ok"
    assert arm["variants"]["cand"]["status"] == "pending"
    assert any("without a final result (partial kept)" in e for e in arm["errors"])
    assert cluster_name(handle, "arm", 1) in fake.downed and cluster_name(handle, "arm", 2) in fake.downed
    assert got["x86"]["complete"] is True


def test_nothing_at_all_is_failed(tmp_path: Path) -> None:
    fake = FakeSky({"x86": [Attempt("launch_fail"), Attempt("launch_fail")]})
    ex = executor(tmp_path, fake)
    handle = ex.submit(Batch(10, {"x86": TASK}))
    assert ex.wait(handle, timeout=30) == "failed" and ex.collect(handle) == {}
    assert len(ex.load_state(handle)["archs"]["x86"]["errors"]) == 2


def test_cancel_downs_every_cluster(tmp_path: Path) -> None:
    fake = FakeSky({"x86": [Attempt("block")], "arm": [Attempt("block")]})
    ex = executor(tmp_path, fake)
    handle = ex.submit(Batch(11, {"x86": TASK, "arm": TASK}))
    for _ in range(200):
        if sum(c[0] == "tail_logs" for c in fake.calls) == 2:
            break
        threading.Event().wait(0.02)
    assert ex.poll(handle) == "running"
    ex.cancel(handle)
    assert sorted(set(fake.downed)) == sorted([cluster_name(handle, "x86", 1), cluster_name(handle, "arm", 1)])
    assert ex.poll(handle) == "failed"
    assert {s["status"] for s in ex.load_state(handle)["archs"].values()} == {"cancelled"}
    assert sum(c[0] == "launch" for c in fake.calls) == 2  # no retry after cancel


def test_cancel_during_launch_cancels_request_and_still_downs(tmp_path: Path) -> None:
    fake = FakeSky({"x86": [Attempt("slow_launch"), Attempt("ok")]})
    ex = executor(tmp_path, fake)
    handle = ex.submit(Batch(13, {"x86": TASK}))
    for _ in range(200):
        if ex.load_state(handle)["archs"]["x86"]["launch_request"]:
            break
        threading.Event().wait(0.02)
    ex.cancel(handle)
    name = cluster_name(handle, "x86", 1)
    assert ("api_cancel", ex.load_state(handle)["archs"]["x86"]["launch_request"]) in fake.calls
    assert fake.downed.count(name) == 2  # by cancel() and again after the launch request returned
    assert sum(c[0] == "launch" for c in fake.calls) == 1 and ex.poll(handle) == "failed"
    assert any("RequestCancelled" in e for e in ex.load_state(handle)["archs"]["x86"]["errors"])


def test_restarted_bot_reattaches_to_running_job(tmp_path: Path) -> None:
    fake = FakeSky({"x86": [Attempt("ok")]})
    first = executor(tmp_path, fake)
    handle = first.submit(Batch(12, {"x86": TASK}))
    first.wait(handle, timeout=30)
    # simulate a bot killed while the job ran: state says running with a job id, no result yet
    state = first.load_state(handle)
    state["archs"]["x86"].update(status="running", down=[], complete=False)
    (tmp_path / "handles" / handle / "state.json").write_text(json.dumps(state))
    (tmp_path / "handles" / handle / "x86.result.json").unlink()
    second = executor(tmp_path, fake)
    assert second.poll(handle) == "running"
    assert second.wait(handle, timeout=30) == "done"
    assert second.collect(handle)["x86"]["complete"] is True
    assert ("tail_logs", cluster_name(handle, "x86", 1), 1) in fake.calls[-2:]
    assert sum(c[0] == "launch" for c in fake.calls) == 1  # re-attached, not relaunched
    assert fake.downed.count(cluster_name(handle, "x86", 1)) == 2  # first run + re-attached run


def test_parse_result_log_prefers_final_and_skips_cut_lines() -> None:
    log = "x\nAUTORESEARCH_PARTIAL {\"a\": 1}\nAUTORESEARCH_RESULT {\"a\": 2}\nAUTORESEARCH_PARTIAL {\"a\": 3"
    assert parse_result_log(log) == ({"a": 2}, True)
    assert parse_result_log("(x86) AUTORESEARCH_PARTIAL {\"a\": 1}\n") == ({"a": 1}, False)
    assert parse_result_log("nothing") == (None, False)


def test_bad_handle_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        executor(tmp_path, FakeSky({})).poll("../etc")


VALIDATE = """
import json, sys
from pathlib import Path
from bot.experiments import tasks
from bot.experiments.skypilot_exec import build_task
files = Path(sys.argv[1])
spec = {"run_id": 3, "arch": "arm", "project": {"preset": "generic"}}
out = {}
for arch, cfg in {"x86": {"infra": "aws/us-east-1", "instance_type": "c7i.xlarge"},
                  "arm": {"infra": "aws/us-east-1", "instance_type": "c7g.xlarge", "use_spot": True}}.items():
    task = build_task(tasks.render_task(dict(spec, arch=arch), cfg, files))
    r = list(task.resources)[0]
    out[arch] = [str(r.cloud), r.instance_type, r.region, r.use_spot, r.get_cost(3600), task.run.strip()]
any_of = [{"infra": "aws/us-east-1", "instance_type": "c7i.xlarge"},
          {"infra": "aws/us-east-1", "instance_type": "c7g.xlarge"}]
anyof = build_task(tasks.render_task(spec, {"any_of": any_of, "labels": {"team": "perf"}}, files))
out["any_of"] = sorted([r.instance_type, r.labels] for r in anyof.resources)
try:
    build_task(tasks.render_task(spec, {"infra": "aws", "instance_type": "c7x.nope"}, files))
except ValueError as e:
    out["bad"] = str(e)
print(json.dumps(out))
"""


def test_rendered_task_validates_with_real_skypilot_offline(tmp_path: Path) -> None:
    home = tmp_path / "home"
    seed_catalog(home)
    files = tmp_path / "files"
    files.mkdir()
    proc = subprocess.run([sys.executable, "-c", VALIDATE, str(files)], cwd=REPO, env=isolated_env(home),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["x86"][:5] == ["AWS", "c7i.xlarge", "us-east-1", False, 0.1785]
    assert out["arm"][:5] == ["AWS", "c7g.xlarge", "us-east-1", True, 0.0593]
    assert "driver.py" in out["x86"][5]
    assert "Invalid instance type 'c7x.nope'" in out["bad"]
    labels = {"autoresearch-run": "3", "autoresearch-arch": "arm", "team": "perf"}
    assert out["any_of"] == [["c7g.xlarge", labels], ["c7i.xlarge", labels]]
    assert not (home / ".sky" / "catalogs" / "v8" / "aws" / "images.csv").exists()  # nothing downloaded


def test_engine_batch_is_rendered_into_task_files(tmp_path: Path) -> None:
    from bot.experiments.executors import Batch as EngineBatch

    spec = {"schema": 1, "run_id": 5, "arch": "x86", "seed": 1, "source": {"url": "https://example.com/o/r.git"},
            "baseline": {"name": "baseline", "sha": "a" * 40}, "candidates": [],
            "project": {"preset": "generic"}}
    fake = FakeSky({"x86": [Attempt("ok")]})
    ex = executor(tmp_path, fake)
    handle = ex.submit(EngineBatch(run_id=5, specs={"x86": spec}, arch_configs={"x86": {"cpus": "2+"}}))
    assert ex.wait(handle, timeout=30) == "done"
    task = json.loads((tmp_path / "handles" / handle / "x86.task.json").read_text())
    files = Path(task["workdir"])
    assert (files / "driver.py").exists() and json.loads((files / "spec.json").read_text())["run_id"] == 5
    assert task["resources"]["cpus"] == "2+" and "driver.py" in task["run"]
    assert "AUTORESEARCH_RESULT" in ex.logs(handle)


# ---------------------------------------------------------------------- no VM outlives its run


class Clock:
    """A clock the test moves; every read advances it a little (launch -> teardown takes VM time)."""

    def __init__(self, step: float = 30.0) -> None:
        self.now, self.step, self.lock = 1000.0, step, threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            self.now += self.step
            return self.now


def test_failed_down_is_retried_with_backoff_until_status_confirms(tmp_path: Path) -> None:
    fake = FakeSky({"x86": [Attempt("ok")]})
    sleeps: list[float] = []
    ex = executor(tmp_path, fake, sleep=sleeps.append, down_backoff=(5.0, 120.0))
    handle = ex.submit(Batch(21, {"x86": TASK}))
    ex.wait(handle, timeout=30)
    name = cluster_name(handle, "x86", 1)
    assert ex.poll(handle) == "done" and name not in fake.alive and fake.downed.count(name) == 1

    fake2 = FakeSky({"x86": [Attempt("ok")]})
    ex2 = executor(tmp_path / "b", fake2, sleep=sleeps.append, down_backoff=(5.0, 120.0))
    handle2 = ex2.submit(Batch(22, {"x86": TASK}))
    name2 = cluster_name(handle2, "x86", 1)
    fake2.down_failures[name2] = 2  # throttled twice
    fake2.lingering[name2] = 1      # then `down` returns but status still lists it once
    ex2.wait(handle2, timeout=30)
    assert fake2.downed.count(name2) == 4 and name2 not in fake2.alive
    assert sleeps == [5.0, 10.0, 20.0]  # doubling backoff between the four tries
    assert name2 in ex2.load_state(handle2)["archs"]["x86"]["down"] and ex2.pending_teardown() == {}


def test_unconfirmed_teardown_stays_pending_until_the_reconciler_confirms(tmp_path: Path) -> None:
    fake = FakeSky({"x86": [Attempt("ok")]})
    clock = Clock(step=1.0)
    ex = executor(tmp_path, fake, clock=clock, down_tries=2, down_backoff=(5.0, 120.0))
    handle = ex.submit(Batch(23, {"x86": TASK}))
    name = cluster_name(handle, "x86", 1)
    fake.down_failures[name] = 5
    ex.wait(handle, timeout=30)
    assert ex.poll(handle) == "done"  # the results are in; the VM is not gone yet
    pending = ex.pending_teardown()
    assert list(pending) == [name] and pending[name]["attempts"] == 2 and pending[name]["handle"] == handle
    assert "RequestLimitExceeded" in pending[name]["error"] and name in fake.alive
    assert any("pending teardown" in e for e in ex.load_state(handle)["archs"]["x86"]["errors"])
    assert name not in ex.load_state(handle)["archs"]["x86"]["down"]

    report = ex.reconcile()  # not due yet (backoff): only the orphan pass, which also fails to down it
    assert name in report["pending"] and ex.pending_teardown()[name]["attempts"] == 3
    fake.down_failures[name] = 0
    clock.now += 600
    report = ex.reconcile()
    assert report["downed"] == [name] and ex.pending_teardown() == {} and name not in fake.alive
    assert name in ex.load_state(handle)["archs"]["x86"]["down"]


def test_reconciler_removes_orphans_and_keeps_active_and_foreign_clusters(tmp_path: Path) -> None:
    fake = FakeSky({"x86": [Attempt("block")], "arm": [Attempt("ok")]})
    ex = executor(tmp_path, fake)
    running = ex.submit(Batch(31, {"x86": TASK}))
    for _ in range(200):
        if any(c[0] == "tail_logs" for c in fake.calls):
            break
        threading.Event().wait(0.02)
    finished = ex.submit(Batch(32, {"arm": TASK}))
    ex.wait(finished, timeout=30)
    leaked = cluster_name(finished, "arm", 1)
    orphan = cluster_name("r99-abcdef", "x86", 2)  # a bot crash lost its state: nobody knows this cluster
    with fake.lock:
        fake.alive |= {leaked, orphan, "my-dev-box", "sky-jobs-controller-1a2b"}
    active = cluster_name(running, "x86", 1)
    report = ex.reconcile()
    assert sorted(report["downed"]) == sorted([leaked, orphan])
    assert report["kept"] == [active]
    assert fake.alive == {active, "my-dev-box", "sky-jobs-controller-1a2b"}
    assert "my-dev-box" not in fake.downed
    ex.cancel(running)
    assert active not in fake.alive


def test_reconciler_thread_runs_at_start(tmp_path: Path) -> None:
    fake = FakeSky({})
    orphan = cluster_name("r7-0a0b0c", "arm", 1)
    fake.alive.add(orphan)
    ex = executor(tmp_path, fake)
    ex.start_reconciler(interval_s=3600)
    for _ in range(200):
        if orphan not in fake.alive:
            break
        threading.Event().wait(0.02)
    ex.stop_reconciler()
    assert orphan not in fake.alive and fake.downed == [orphan]


def test_cluster_names_never_collide_and_are_valid() -> None:
    long_a = "graviton3-c7g-xlarge-us-east-1-spot-variant-a"
    long_b = "graviton3-c7g-xlarge-us-east-1-spot-variant-b"
    names = set()
    for handle in ("r1-abcdef", "r123456789-0f0f0f"):
        for arch in ("x86", "arm", "x86_64", "x86-64", long_a, long_b):
            for attempt in (1, 2):
                name = cluster_name(handle, arch, attempt)
                common_utils.check_cluster_name_is_valid(name)  # SkyPilot's own rule
                assert len(name) <= 40 and name.endswith(f"-{attempt}"), name
                names.add(name)
    assert len(names) == 2 * 6 * 2
    assert cluster_name("r1-abcdef", "x86", 1) == "ar-r1-abcdef-x86-1"  # short names stay readable


def test_unknown_price_refuses_the_batch_before_any_launch(tmp_path: Path) -> None:
    from bot.experiments.executors import Batch as EngineBatch

    spec = {"schema": 1, "run_id": 5, "arch": "x86", "seed": 1, "source": {"url": "https://example.com/o/r.git"},
            "baseline": {"name": "baseline", "sha": "a" * 40}, "candidates": [],
            "project": {"preset": "generic"}}
    fake = FakeSky({"x86": [Attempt("ok")], "arm": [Attempt("ok")]})
    # the real pricing (SkyPilot's catalog code, else price_per_hour)
    ex = SkyPilotExecutor(tmp_path / "handles", sdk=fake, task_from_config=sky.Task.from_yaml_config)
    arch_configs = {"x86": {"infra": "aws/us-east-1", "instance_type": "c7x.nope"},
                    "arm": {"infra": "aws/us-east-1", "instance_type": "c7x.nope2", "price_per_hour": 0.2}}
    with pytest.raises(StageFailed, match=r"No VM was launched: the price of `x86`: .*c7x.nope.*"
                                          r"price_per_hour"):
        ex.submit(EngineBatch(run_id=5, specs={"x86": spec, "arm": dict(spec, arch="arm")},
                              arch_configs=arch_configs))
    assert fake.calls == [] and list((tmp_path / "handles").iterdir()) == []
    arch_configs["x86"]["price_per_hour"] = 0.0  # an explicit price (a free on-prem cluster) is fine
    handle = ex.submit(EngineBatch(run_id=5, specs={"x86": spec, "arm": dict(spec, arch="arm")},
                                   arch_configs=arch_configs))
    ex.wait(handle, timeout=30)
    prices = {a: s["usd_per_hour"] for a, s in ex.load_state(handle)["archs"].items()}
    assert prices == {"x86": 0.0, "arm": 0.2}


def test_failed_archs_are_charged_for_their_vm_time(tmp_path: Path) -> None:
    fake = FakeSky({"x86": [Attempt("ok")], "arm": [Attempt("launch_fail"), Attempt("launch_fail")]})
    ex = executor(tmp_path, fake, clock=Clock(step=30.0))
    handle = ex.submit(Batch(24, {"x86": TASK, "arm": TASK}))
    assert ex.wait(handle, timeout=30) == "done"
    assert set(ex.collect(handle)) == {"x86"}  # arm produced nothing ...
    seconds, costs = ex.vm_seconds(handle), ex.costs(handle)
    assert seconds["arm"] > 0 and costs["arm"] == pytest.approx(seconds["arm"] / 3600 * PRICE)  # ... but cost
    assert costs["x86"] == pytest.approx(seconds["x86"] / 3600 * PRICE)


def test_resources_pass_through_in_skypilot_syntax(tmp_path: Path) -> None:
    spec = {"run_id": 8, "arch": "x86_64", "project": {"preset": "generic"}}
    cfg = {"infra": "aws/us-east-1",
           "any_of": [{"instance_type": "c7i.xlarge"}, {"instance_type": "m7i.xlarge"}],
           "labels": {"team": "perf"}, "image_id": "ami-0123456789abcdef0", "price_per_hour": 0.2,
           "autostop_minutes": 15, "job_recovery": None}
    task = tasks.render_task(spec, cfg, tmp_path)
    res = task["resources"]
    assert res["infra"] == "aws/us-east-1" and res["any_of"] == cfg["any_of"] and "cloud" not in res
    assert res["image_id"] == "ami-0123456789abcdef0" and "price_per_hour" not in res
    assert res["labels"] == {"autoresearch-run": "8", "autoresearch-arch": "x86_64", "team": "perf"}
    assert res["autostop"] == {"idle_minutes": 15, "down": True}
    tasks.validate_task(task)  # SkyPilot's own schema
    task2 = tasks.render_task(spec, {"ordered": [{"infra": "aws/us-east-1", "instance_type": "c7i.xlarge"},
                                                 {"infra": "gcp", "instance_type": "c3-standard-4"}]},
                              tmp_path)
    tasks.validate_task(task2)
    with pytest.raises(tasks.TaskError, match="either `infra`"):
        tasks.render_task(spec, {"infra": "aws", "cloud": "aws"}, tmp_path)
    with pytest.raises(tasks.TaskError, match="Invalid task resources"):
        tasks.validate_task(tasks.render_task(spec, {"infra": "aws", "instance_typ": "c7i.xlarge"}, tmp_path))
