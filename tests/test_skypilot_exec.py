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

from bot.experiments.skypilot_exec import SkyPilotExecutor, cluster_name, parse_result_log
from tests.sky_catalog_fixture import isolated_env, seed_catalog

REPO = Path(__file__).resolve().parents[1]
SDK_METHODS = ("launch", "stream_and_get", "tail_logs", "down", "get", "job_status", "api_cancel")


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
        with self.lock:
            self.downed.append(cluster_name)
        self.released.setdefault(cluster_name, threading.Event()).set()
        return self._request(None)

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


def executor(tmp_path: Path, fake: FakeSky) -> SkyPilotExecutor:
    return SkyPilotExecutor(tmp_path / "handles", sdk=fake, task_from_config=sky.Task.from_yaml_config)


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
