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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from sky.utils import common_utils
from sky_catalog_fixture import isolated_env, seed_catalog
from sky_double import PRICE, SDK_METHODS, TASK, Attempt, Batch, FakeJobs, FakeSky, executor

import sky
from bot.experiments import tasks
from bot.experiments.skypilot_exec import SkyPilotExecutor, cluster_name, parse_result_log, run_key
from bot.pipeline import StageFailed

REPO = Path(__file__).resolve().parents[1]


def test_fake_matches_real_sdk_signatures() -> None:
    for name in SDK_METHODS:
        real = inspect.signature(getattr(sky, name))
        fake = inspect.signature(getattr(FakeSky, name))
        fake_params = list(fake.parameters.values())[1:]  # drop self
        assert [(p.name, p.kind) for p in fake_params] == [
            (p.name, p.kind) for p in real.parameters.values()
        ], name
    for name in ("launch", "queue", "tail_logs", "cancel"):
        real = inspect.signature(getattr(sky.jobs, name))
        fake = list(inspect.signature(getattr(FakeJobs, name)).parameters.values())[1:]
        assert [(p.name, p.kind) for p in fake] == [(p.name, p.kind) for p in real.parameters.values()], name


def test_two_arches_succeed_and_clusters_are_downed(tmp_path: Path) -> None:
    fake = FakeSky({"x86": [Attempt("ok")], "arm": [Attempt("ok")]})
    ex = executor(tmp_path, fake)
    handle = ex.submit(Batch(7, {"x86": TASK, "arm": TASK}))
    assert ex.wait(handle, timeout=30) == "done"
    got = ex.collect(handle)
    assert set(got) == {"x86", "arm"} and all(r["complete"] for r in got.values())
    assert got["arm"]["variants"]["cand"]["status"] == "ok"
    state = ex.load_state(handle)
    assert {a: s["status"] for a, s in state["archs"].items()} == {"x86": "done", "arm": "done"}
    assert all(s["job_id"] == 1 for s in state["archs"].values())
    assert fake.downed == []  # kept for the run's next batch ...
    ex.release(7)  # ... until the run ends
    key = run_key(handle)
    assert sorted(fake.downed) == sorted([cluster_name(key, "x86", 1), cluster_name(key, "arm", 1)])
    assert fake.alive == set()


def test_preemption_and_launch_failure_are_retried_once(tmp_path: Path) -> None:
    fake = FakeSky(
        {"x86": [Attempt("preempt"), Attempt("ok")], "arm": [Attempt("launch_fail"), Attempt("ok")]}
    )
    ex = executor(tmp_path, fake)
    handle = ex.submit(Batch(8, {"x86": TASK, "arm": TASK}))
    assert ex.wait(handle, timeout=30) == "done"
    got = ex.collect(handle)
    assert all(r["complete"] for r in got.values())
    assert any("ClusterNotUpError" in e for e in got["x86"]["errors"])
    assert any("ResourcesUnavailableError" in e for e in got["arm"]["errors"])
    launches = [c[1] for c in fake.calls if c[0] == "launch"]
    assert len(launches) == 4 and len(set(fake.downed)) == 2  # the failed clusters at once ...
    ex.release(8)
    assert set(fake.downed) == set(launches) and fake.alive == set()  # ... the kept ones with the run


def test_vm_dying_mid_run_keeps_partial_result_and_downs(tmp_path: Path) -> None:
    fake = FakeSky(
        {"x86": [Attempt("ok")], "arm": [Attempt("die", partial_variants=1), Attempt("launch_fail")]}
    )
    ex = executor(tmp_path, fake)
    handle = ex.submit(Batch(9, {"x86": TASK, "arm": TASK}))
    assert ex.wait(handle, timeout=30) == "done"
    got = ex.collect(handle)
    arm = got["arm"]
    assert arm["complete"] is False and arm["variants"]["baseline"]["status"] == "ok"
    assert arm["variants"]["cand"]["status"] == "pending"
    assert any("without a final result (partial kept)" in e for e in arm["errors"])
    key = run_key(handle)
    assert cluster_name(key, "arm", 1) in fake.downed and cluster_name(key, "arm", 2) in fake.downed
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
    key = run_key(handle)
    assert sorted(set(fake.downed)) == sorted([cluster_name(key, "x86", 1), cluster_name(key, "arm", 1)])
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
    name = cluster_name(run_key(handle), "x86", 1)
    assert ("api_cancel", ex.load_state(handle)["archs"]["x86"]["launch_request"]) in fake.calls
    # downed by the arch thread (force) once its launch request returned, and by cancel() too unless the
    # thread's confirmed down came first (cancel() skips a cluster confirmed gone): either way it is gone
    assert 1 <= fake.downed.count(name) <= 2 and name not in fake.alive
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
    name = cluster_name(run_key(handle), "x86", 1)
    assert fake.calls[-1] == ("tail_logs", name, 1)
    assert sum(c[0] == "launch" for c in fake.calls) == 1  # re-attached, not relaunched
    assert fake.downed == [] and name in fake.alive  # still the run's cluster
    second.release(12)
    assert fake.downed == [name] and fake.alive == set()


def test_parse_result_log_prefers_final_and_skips_cut_lines() -> None:
    log = 'x\nAUTORESEARCH_PARTIAL {"a": 1}\nAUTORESEARCH_RESULT {"a": 2}\nAUTORESEARCH_PARTIAL {"a": 3'
    assert parse_result_log(log) == ({"a": 2}, True)
    assert parse_result_log('(x86) AUTORESEARCH_PARTIAL {"a": 1}\n') == ({"a": 1}, False)
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
    proc = subprocess.run(
        [sys.executable, "-c", VALIDATE, str(files)],
        cwd=REPO,
        env=isolated_env(home),
        capture_output=True,
        text=True,
        timeout=120,
    )
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

    spec = {
        "schema": 1,
        "run_id": 5,
        "arch": "x86",
        "seed": 1,
        "source": {"url": "https://example.com/o/r.git"},
        "baseline": {"name": "baseline", "sha": "a" * 40},
        "candidates": [],
        "project": {"preset": "generic"},
    }
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
    ex.release(21)
    name = cluster_name(run_key(handle), "x86", 1)
    assert ex.poll(handle) == "done" and name not in fake.alive and fake.downed.count(name) == 1

    fake2 = FakeSky({"x86": [Attempt("ok")]})
    ex2 = executor(tmp_path / "b", fake2, sleep=sleeps.append, down_backoff=(5.0, 120.0))
    handle2 = ex2.submit(Batch(22, {"x86": TASK}))
    name2 = cluster_name(run_key(handle2), "x86", 1)
    fake2.down_failures[name2] = 2  # throttled twice
    fake2.lingering[name2] = 1  # then `down` returns but status still lists it once
    ex2.wait(handle2, timeout=30)
    ex2.release(22)
    assert fake2.downed.count(name2) == 4 and name2 not in fake2.alive
    assert sleeps == [5.0, 10.0, 20.0]  # doubling backoff between the four tries
    assert name2 in ex2.load_state(handle2)["archs"]["x86"]["down"] and ex2.pending_teardown() == {}


def test_unconfirmed_teardown_stays_pending_until_the_reconciler_confirms(tmp_path: Path) -> None:
    fake = FakeSky({"x86": [Attempt("ok")]})
    clock = Clock(step=1.0)
    ex = executor(tmp_path, fake, clock=clock, down_tries=2, down_backoff=(5.0, 120.0))
    handle = ex.submit(Batch(23, {"x86": TASK}))
    name = cluster_name(run_key(handle), "x86", 1)
    fake.down_failures[name] = 5
    ex.wait(handle, timeout=30)
    ex.release(23)
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
    fake = FakeSky({"x86": [Attempt("block")], "arm": [Attempt("ok"), Attempt("ok")]})
    ex = executor(tmp_path, fake, run_active=lambda run_id: run_id != 32)  # run 32 ended, its release lost
    running = ex.submit(Batch(31, {"x86": TASK}))
    for _ in range(200):
        if any(c[0] == "tail_logs" for c in fake.calls):
            break
        threading.Event().wait(0.02)
    finished = ex.submit(Batch(32, {"arm": TASK}))
    ex.wait(finished, timeout=30)
    between = ex.submit(Batch(33, {"arm": TASK}))  # run 33 goes on: its cluster waits for the next batch
    ex.wait(between, timeout=30)
    kept = cluster_name(run_key(between), "arm", 1)
    leaked = cluster_name(run_key(finished), "arm", 1)
    orphan = cluster_name("r99-abcdef", "x86", 2)  # a bot crash lost its state: nobody knows this cluster
    with fake.lock:
        fake.alive |= {leaked, orphan, "my-dev-box", "sky-jobs-controller-1a2b"}
    active = cluster_name(run_key(running), "x86", 1)
    report = ex.reconcile()
    assert sorted(report["downed"]) == sorted([leaked, orphan])
    assert sorted(report["kept"]) == sorted([active, kept])
    assert fake.alive == {active, kept, "my-dev-box", "sky-jobs-controller-1a2b"}
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

    spec = {
        "schema": 1,
        "run_id": 5,
        "arch": "x86",
        "seed": 1,
        "source": {"url": "https://example.com/o/r.git"},
        "baseline": {"name": "baseline", "sha": "a" * 40},
        "candidates": [],
        "project": {"preset": "generic"},
    }
    fake = FakeSky({"x86": [Attempt("ok")], "arm": [Attempt("ok")]})
    # the real pricing (SkyPilot's catalog code, else price_per_hour)
    ex = SkyPilotExecutor(tmp_path / "handles", sdk=fake, task_from_config=sky.Task.from_yaml_config)
    arch_configs = {
        "x86": {"infra": "aws/us-east-1", "instance_type": "c7x.nope"},
        "arm": {"infra": "aws/us-east-1", "instance_type": "c7x.nope2", "price_per_hour": 0.2},
    }
    with pytest.raises(
        StageFailed,
        match=r"No VM was launched: the price of `x86`: .*c7x.nope.*"
        r"price_per_hour",
    ):
        ex.submit(
            EngineBatch(
                run_id=5, specs={"x86": spec, "arm": dict(spec, arch="arm")}, arch_configs=arch_configs
            )
        )
    assert fake.calls == [] and list((tmp_path / "handles").iterdir()) == []
    arch_configs["x86"]["price_per_hour"] = 0.0  # an explicit price (a free on-prem cluster) is fine
    handle = ex.submit(
        EngineBatch(run_id=5, specs={"x86": spec, "arm": dict(spec, arch="arm")}, arch_configs=arch_configs)
    )
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
    cfg = {
        "infra": "aws/us-east-1",
        "any_of": [{"instance_type": "c7i.xlarge"}, {"instance_type": "m7i.xlarge"}],
        "labels": {"team": "perf"},
        "image_id": "ami-0123456789abcdef0",
        "price_per_hour": 0.2,
        "autostop_minutes": 15,
        "job_recovery": None,
    }
    task = tasks.render_task(spec, cfg, tmp_path)
    res = task["resources"]
    assert res["infra"] == "aws/us-east-1" and res["any_of"] == cfg["any_of"] and "cloud" not in res
    assert res["image_id"] == "ami-0123456789abcdef0" and "price_per_hour" not in res
    assert res["labels"] == {"autoresearch-run": "8", "autoresearch-arch": "x86_64", "team": "perf"}
    assert res["autostop"] == {"idle_minutes": 15, "down": True}
    tasks.validate_task(task)  # SkyPilot's own schema
    task2 = tasks.render_task(
        spec,
        {
            "ordered": [
                {"infra": "aws/us-east-1", "instance_type": "c7i.xlarge"},
                {"infra": "gcp", "instance_type": "c3-standard-4"},
            ]
        },
        tmp_path,
    )
    tasks.validate_task(task2)
    with pytest.raises(tasks.TaskError, match="either `infra`"):
        tasks.render_task(spec, {"infra": "aws", "cloud": "aws"}, tmp_path)
    with pytest.raises(tasks.TaskError, match="Invalid task resources"):
        tasks.validate_task(tasks.render_task(spec, {"infra": "aws", "instance_typ": "c7i.xlarge"}, tmp_path))


# ---------------------------------------------------------------------- one cluster per arch per run


def wait_for(predicate: Any, what: str) -> None:
    for _ in range(500):
        if predicate():
            return
        threading.Event().wait(0.02)
    raise AssertionError(f"never happened: {what}")


def test_batches_of_one_run_reuse_its_cluster_per_arch_until_release(tmp_path: Path) -> None:
    fake = FakeSky({"x86": [Attempt("ok"), Attempt("ok")], "arm": [Attempt("ok"), Attempt("ok")]})
    clock = Clock(step=1.0)
    ex = executor(tmp_path, fake, clock=clock)
    main = ex.submit(Batch(40, {"x86": TASK, "arm": TASK}))
    assert ex.wait(main, timeout=30) == "done"
    clock.now += 600  # the decision between the main batch and the stack verification
    verify = ex.submit(Batch(40, {"x86": TASK, "arm": TASK}))
    assert ex.wait(verify, timeout=30) == "done"
    key = run_key(main)
    assert run_key(verify) == key and verify != main
    names = {arch: cluster_name(key, arch, 1) for arch in ("x86", "arm")}
    assert sorted(c for c in fake.calls if c[0] in ("launch", "exec")) == sorted(
        [("launch", names["x86"]), ("launch", names["arm"]), ("exec", names["x86"]), ("exec", names["arm"])]
    )
    assert fake.downed == []
    state = ex.load_state(verify)["archs"]
    assert {a: (s["mode"], s["cluster"], s["job_id"]) for a, s in state.items()} == {
        a: ("exec", names[a], 2) for a in names
    }  # the second job on the same cluster
    assert all(ex.collect(verify)[a]["complete"] for a in names)
    assert all(ex.vm_seconds(verify)[a] > 600 for a in names)  # the idle gap is charged to the next batch
    tail = ex.release(40)
    assert sorted(fake.downed) == sorted(names.values()) and fake.alive == set()
    assert set(tail) == set(names) and all(
        t["usd"] == pytest.approx(t["seconds"] / 3600 * PRICE) for t in tail.values()
    )
    assert ex.release(40) == {} and sorted(fake.downed) == sorted(names.values())  # released once
    # a later batch of the same run id (a re-run after release) gets a new key, never a released cluster
    again = FakeSky({"x86": [Attempt("ok")]})
    ex.sdk = again
    later = ex.submit(Batch(40, {"x86": TASK}))
    assert ex.wait(later, timeout=30) == "done" and run_key(later) != key
    assert [c[0] for c in again.calls if c[0] in ("launch", "exec")] == ["launch"]


def test_cluster_gone_between_batches_is_relaunched(tmp_path: Path) -> None:
    fake = FakeSky({"x86": [Attempt("ok"), Attempt("ok"), Attempt("ok")]})
    ex = executor(tmp_path, fake)
    first = ex.submit(Batch(41, {"x86": TASK}))
    ex.wait(first, timeout=30)
    key = run_key(first)
    with fake.lock:
        fake.alive.discard(cluster_name(key, "x86", 1))  # autostop took it while the bot researched
    second = ex.submit(Batch(41, {"x86": TASK}))
    assert ex.wait(second, timeout=30) == "done"
    assert [c for c in fake.calls if c[0] in ("launch", "exec")] == [
        ("launch", cluster_name(key, "x86", 1)),
        ("launch", cluster_name(key, "x86", 2)),
    ]
    # gone between `status` and `exec` (UP when asked, gone when the exec arrives): launched, same attempt
    fake.vanish_on_exec.add(cluster_name(key, "x86", 2))
    third = ex.submit(Batch(41, {"x86": TASK}))
    assert ex.wait(third, timeout=30) == "done"
    assert [c for c in fake.calls if c[0] in ("launch", "exec")][2:] == [
        ("exec", cluster_name(key, "x86", 2)),
        ("launch", cluster_name(key, "x86", 3)),
    ]
    a = ex.load_state(third)["archs"]["x86"]
    assert a["attempt"] == 1 and a["cluster"] == cluster_name(key, "x86", 3) and a["mode"] == "launch"
    ex.release(41)
    assert fake.alive == set()


def test_cancel_mid_exec_downs_the_runs_cluster(tmp_path: Path) -> None:
    fake = FakeSky({"x86": [Attempt("ok"), Attempt("block")]})
    ex = executor(tmp_path, fake)
    first = ex.submit(Batch(42, {"x86": TASK}))
    ex.wait(first, timeout=30)
    second = ex.submit(Batch(42, {"x86": TASK}))
    name = cluster_name(run_key(first), "x86", 1)
    wait_for(lambda: ("tail_logs", name, 2) in fake.calls, "the exec'd job runs")
    ex.cancel(second)
    assert ex.wait(second, timeout=30) == "failed"
    assert name in fake.downed and fake.alive == set()
    assert ("api_cancel", ex.load_state(second)["archs"]["x86"]["launch_request"]) in fake.calls
    assert sum(c[0] == "launch" for c in fake.calls) == 1 and sum(c[0] == "exec" for c in fake.calls) == 1
    assert ex.load_state(first)["archs"]["x86"]["status"] == "done"  # the earlier batch keeps its results
    assert ex.release(42) == {}  # nothing left to charge or down


def test_reuse_survives_a_bot_restart_between_batches(tmp_path: Path) -> None:
    fake = FakeSky({"x86": [Attempt("ok"), Attempt("ok")]})
    first = executor(tmp_path, fake)
    main = first.submit(Batch(43, {"x86": TASK}))
    first.wait(main, timeout=30)
    second = executor(tmp_path, fake)  # kill -9 and start again: only the state dir is left
    assert second.reconcile()["kept"] == [cluster_name(run_key(main), "x86", 1)]
    verify = second.submit(Batch(43, {"x86": TASK}))
    assert second.wait(verify, timeout=30) == "done" and run_key(verify) == run_key(main)
    assert [c[0] for c in fake.calls if c[0] in ("launch", "exec")] == ["launch", "exec"]
    second.release(43)
    assert fake.downed == [cluster_name(run_key(main), "x86", 1)]


def test_a_second_live_batch_of_the_run_gets_its_own_cluster(tmp_path: Path) -> None:
    fake = FakeSky({"x86": [Attempt("ok"), Attempt("block"), Attempt("ok")]})
    ex = executor(tmp_path, fake)
    first = ex.submit(Batch(44, {"x86": TASK}))
    ex.wait(first, timeout=30)
    key = run_key(first)
    busy = ex.submit(Batch(44, {"x86": TASK}))
    wait_for(lambda: ("tail_logs", cluster_name(key, "x86", 1), 2) in fake.calls, "the exec'd job runs")
    other = ex.submit(Batch(44, {"x86": TASK}))  # never two benchmarks on one VM
    assert ex.wait(other, timeout=30) == "done"
    assert ex.load_state(other)["archs"]["x86"]["mode"] == "private"
    assert fake.calls[-1][1] == cluster_name(key, "x86", 2) and cluster_name(key, "x86", 2) in fake.downed
    ex.release(44)  # cancels the batch still in flight and downs the run's cluster
    assert ex.poll(busy) == "failed" and fake.alive == set()


@dataclass
class Comment:
    id: int
    html_url: str


class CommentLog:
    """The one forge call a stage-less pipeline makes (the status comment), kept as text."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    def upsert_marked_comment(self, repo: str, number: int, marker: str, body: str) -> Comment:
        self.bodies.append(body)
        return Comment(1, f"https://example.test/{repo}/issues/{number}#c1")


def bench_pipeline(settings: Any, store: Any, ex: Any, measure: Any, publish: Any = None) -> Any:
    """A real Pipeline whose bench run measures with `measure` (implementing and benchmarking) and publishes
    with `publish`; the issue run's other phases must never be entered."""
    from bot.pipeline import Pipeline
    from bot.stages import DEFAULT_STAGES

    def unused(ctx):  # noqa: ANN001, ANN202  (a bench run never enters the issue run's other phases)
        raise AssertionError(f"unexpected phase {ctx.run.state}")

    stages = {
        **{phase: unused for phase in DEFAULT_STAGES},
        "implementing": measure,
        "benchmarking": measure,
        "deciding": lambda ctx: None,
        "publishing": publish or (lambda ctx: None),
    }
    return Pipeline(
        settings,
        store,
        CommentLog(),
        stages=stages,
        services={"executor": ex},
        status_renderer=lambda p, run: f"run {run.id}: {run.state}",
    )


def new_bench_run(settings: Any, store: Any) -> Any:
    """A bench run of maria/attention with the example project's config stored as its `project`."""
    import yaml

    from bot.config import ProjectConfig

    raw = yaml.safe_load((REPO / "examples" / "attention" / ".autoresearch.yml").read_text())
    run = store.create_run("maria/attention", 7, "bench", "maria")
    store.put_artifact(
        run.id, "project", ProjectConfig.from_dict(raw, list(settings.architectures)).to_dict()
    )
    return run


@pytest.mark.parametrize("outcome", ["done", "failed"])
def test_the_pipeline_releases_the_runs_clusters_when_the_run_ends(tmp_path: Path, outcome: str) -> None:
    from bot.config import Settings
    from bot.experiments.registry import run_in_progress
    from bot.store import Store

    settings = Settings(database=str(tmp_path / "db.sqlite"), data_dir=str(tmp_path / "data"))
    store = Store(settings.db_path)
    fake = FakeSky({"x86": [Attempt("ok"), Attempt("ok")]})
    ex = executor(
        tmp_path, fake, clock=Clock(step=30.0), run_active=lambda run_id: run_in_progress(store, run_id)
    )

    def measure(ctx: Any) -> None:
        handle = ex.submit(Batch(ctx.run.id, {"x86": TASK}))
        assert ex.wait(handle, timeout=30) == "done"
        ctx.put(f"handle:{ctx.run.state}", handle)

    def publish(ctx: Any) -> None:
        if outcome == "failed":
            raise StageFailed("the pull request could not be opened")

    pipeline = bench_pipeline(settings, store, ex, measure, publish)
    run = new_bench_run(settings, store)
    assert pipeline.advance(run, owner="test").state == outcome
    name = cluster_name(run_key(store.get_artifact(run.id, "handle:implementing")), "x86", 1)
    assert [c for c in fake.calls if c[0] in ("launch", "exec")] == [("launch", name), ("exec", name)]
    assert fake.downed == [name] and fake.alive == set()
    usage = [
        tuple(u)
        for u in store.conn.execute("SELECT kind, usd, detail FROM usage WHERE run_id = ?", (run.id,))
    ]
    assert len(usage) == 1 and usage[0][0] == "vm" and usage[0][2].startswith("teardown/x86: ")
    seconds = float(usage[0][2].split()[1])
    assert usage[0][1] > 0 and usage[0][1] == pytest.approx(seconds / 3600 * PRICE, rel=0.01)
    assert ex.reconcile() == {"downed": [], "kept": [], "pending": [], "errors": []}


# ---------------------------------------------------------------------- re-attach by request id


def killed_during_launch(
    tmp_path: Path, plans: dict[str, list[Attempt]], run_id: int, task: dict = TASK
) -> tuple[FakeSky, str]:
    """A bot that sent the launch request and was killed (-9) while waiting on it: its thread never returns
    and never tears anything down. The returned double shares the API server's state with it."""
    dead = FakeSky(plans, freeze=threading.Event())
    handle = executor(tmp_path, dead).submit(Batch(run_id, {"x86": task}))
    wait_for(
        lambda: json.loads((tmp_path / "handles" / handle / "state.json").read_text())["archs"]["x86"][
            "launch_request"
        ],
        "the launch request id is on disk",
    )
    return replace(dead, freeze=None), handle


def test_restarted_bot_attaches_to_the_in_flight_launch_by_its_request_id(tmp_path: Path) -> None:
    fake, handle = killed_during_launch(tmp_path, {"x86": [Attempt("ok")]}, 50)
    state = json.loads((tmp_path / "handles" / handle / "state.json").read_text())
    rid = state["archs"]["x86"]["launch_request"]
    assert [p.status for p in fake.api_status([rid])] == ["SUCCEEDED"]
    restarted = executor(tmp_path, fake)  # a new process over the same state dir
    restarted.poll(handle)  # finds no thread for the launching arch here: re-attaches
    assert restarted.wait(handle, timeout=30) == "done"
    name = cluster_name(run_key(handle), "x86", 1)
    assert sum(c[0] == "launch" for c in fake.calls) == 1 and fake.downed == []  # attached, not relaunched
    assert fake.calls[-1] == ("tail_logs", name, 1)
    a = restarted.load_state(handle)["archs"]["x86"]
    assert a["launch_request"] == rid and a["attempt"] == 1 and restarted.collect(handle)["x86"]["complete"]
    assert "re-attach to the request" in restarted.logs(handle)
    restarted.release(50)
    assert fake.downed == [name] and fake.alive == set()


def test_restarted_bot_relaunches_when_the_launch_request_failed(tmp_path: Path) -> None:
    fake, handle = killed_during_launch(tmp_path, {"x86": [Attempt("launch_fail"), Attempt("ok")]}, 51)
    restarted = executor(tmp_path, fake)
    restarted.poll(handle)
    assert restarted.wait(handle, timeout=30) == "done"
    key = run_key(handle)
    assert [c for c in fake.calls if c[0] == "launch"] == [
        ("launch", cluster_name(key, "x86", 1)),
        ("launch", cluster_name(key, "x86", 2)),
    ]
    assert fake.downed == [cluster_name(key, "x86", 1)]  # the failed launch's half-made cluster
    restarted.release(51)
    assert fake.alive == set()


# ---------------------------------------------------------------------- spot archs: managed jobs

SPOT = {**TASK, "resources": {"cpus": "2+", "use_spot": True}}


def test_spot_arch_runs_as_a_managed_job_and_on_demand_as_a_cluster(tmp_path: Path) -> None:
    fake = FakeSky({"x86": [Attempt("ok"), Attempt("ok")], "arm": [Attempt("preempt"), Attempt("ok")]})
    ex = executor(tmp_path, fake)
    first = ex.submit(Batch(60, {"x86": TASK, "arm": SPOT}))
    assert ex.wait(first, timeout=30) == "done"
    got = ex.collect(first)
    assert got["arm"]["complete"] and got["x86"]["complete"]
    key = run_key(first)
    job = "arj-" + cluster_name(key, "arm", 1)[3:]
    arm = ex.load_state(first)["archs"]["arm"]
    assert (arm["mode"], arm["job_name"], arm["job_id"], arm["cluster"]) == ("managed", job, 1, None)
    assert ("jobs.launch", job) in fake.calls and ("jobs.tail_logs", 1) in fake.calls
    assert "managed job 1: SUCCEEDED, exit code 0, recovered 1 time(s)" in ex.logs(first)  # preempted once
    assert not any(c[0] == "jobs.cancel" for c in fake.calls) and fake.alive == {cluster_name(key, "x86", 1)}
    second = ex.submit(Batch(60, {"x86": TASK, "arm": SPOT}))  # the stack verification
    assert ex.wait(second, timeout=30) == "done"
    # the on-demand arch reuses its cluster; each spot batch is a managed job of its own (a new spot VM)
    assert sorted(c for c in fake.calls if c[0] in ("launch", "exec", "jobs.launch")) == sorted(
        [
            ("launch", cluster_name(key, "x86", 1)),
            ("jobs.launch", job),
            ("exec", cluster_name(key, "x86", 1)),
            ("jobs.launch", "arj-" + cluster_name(key, "arm", 2)[3:]),
        ]
    )
    assert {j["status"] for j in fake.managed.values()} == {"SUCCEEDED"}
    ex.release(60)
    assert (
        fake.downed == [cluster_name(key, "x86", 1)] and fake.alive == set()
    )  # the controller owns spot VMs


def test_failed_managed_job_is_retried_with_a_new_job(tmp_path: Path) -> None:
    fake = FakeSky({"arm": [Attempt("launch_fail"), Attempt("ok")]})
    ex = executor(tmp_path, fake)
    handle = ex.submit(Batch(61, {"arm": SPOT}))
    assert ex.wait(handle, timeout=30) == "done" and ex.collect(handle)["arm"]["complete"]
    assert [c[0] for c in fake.calls if c[0].startswith("jobs.")] == [
        "jobs.launch",
        "jobs.tail_logs",
        "jobs.launch",
        "jobs.tail_logs",
    ]  # a finished job is not cancelled
    errors = ex.load_state(handle)["archs"]["arm"]["errors"]
    assert any("managed job 1 ended (FAILED_NO_RESOURCE)" in e for e in errors)
    assert [j["status"] for j in fake.managed.values()] == ["FAILED_NO_RESOURCE", "SUCCEEDED"]


def test_cancel_mid_managed_job_cancels_it(tmp_path: Path) -> None:
    fake = FakeSky({"arm": [Attempt("block")]})
    ex = executor(tmp_path, fake)
    handle = ex.submit(Batch(62, {"arm": SPOT}))
    wait_for(lambda: ("jobs.tail_logs", 1) in fake.calls, "the managed job runs")
    ex.cancel(handle)
    assert ex.wait(handle, timeout=30) == "failed"
    assert ("jobs.cancel", (1,)) in fake.calls and fake.managed[1]["status"] == "CANCELLED"
    assert ex.load_state(handle)["archs"]["arm"]["status"] == "cancelled" and fake.downed == []


def test_restarted_bot_attaches_to_a_managed_job_launch_and_follows_its_log(tmp_path: Path) -> None:
    fake, handle = killed_during_launch(tmp_path, {"x86": [Attempt("ok")]}, 63, task=SPOT)
    restarted = executor(tmp_path, fake)
    restarted.poll(handle)
    assert restarted.wait(handle, timeout=30) == "done" and restarted.collect(handle)["x86"]["complete"]
    assert sum(c[0] == "jobs.launch" for c in fake.calls) == 1 and fake.calls[-1] == ("jobs.tail_logs", 1)
    # killed again while following the job: the next bot follows the same job by its id (logs survive)
    state = restarted.load_state(handle)
    state["archs"]["x86"].update(status="running", complete=False)
    (tmp_path / "handles" / handle / "state.json").write_text(json.dumps(state))
    third = executor(tmp_path, fake)
    third.poll(handle)
    assert third.wait(handle, timeout=30) == "done"
    assert sum(c[0] == "jobs.launch" for c in fake.calls) == 1 and fake.calls[-1] == ("jobs.tail_logs", 1)


def test_reconciler_cancels_managed_jobs_no_batch_follows(tmp_path: Path) -> None:
    fake = FakeSky({"arm": [Attempt("block"), Attempt("ok")]})
    ex = executor(tmp_path, fake)
    assert ex.reconcile()["errors"] == [] and not any(c[0].startswith("jobs.") for c in fake.calls)
    running = ex.submit(Batch(64, {"arm": SPOT}))
    wait_for(lambda: ("jobs.tail_logs", 1) in fake.calls, "the managed job runs")
    with fake.lock:  # a bot that crashed before saving the job's state left this one running
        fake.managed[2] = {
            "name": "arj-r9-abcdef-arm-1",
            "plan": Attempt("block"),
            "status": "RUNNING",
            "recoveries": 0,
            "stop": threading.Event(),
        }
        fake.managed[3] = {
            "name": "someone-elses-job",
            "plan": Attempt("block"),
            "status": "RUNNING",
            "recoveries": 0,
            "stop": threading.Event(),
        }
    report = ex.reconcile()
    assert report["downed"] == ["arj-r9-abcdef-arm-1"] and report["kept"] == [
        ex.load_state(running)["archs"]["arm"]["job_name"]
    ]
    assert [c for c in fake.calls if c[0] == "jobs.cancel"] == [("jobs.cancel", (2,))]
    assert [fake.managed[i]["status"] for i in (1, 2, 3)] == ["RUNNING", "CANCELLED", "RUNNING"]
    ex.cancel(running)
    assert fake.managed[1]["status"] == "CANCELLED"


def test_status_unanswered_before_exec_fails_the_attempt_only(tmp_path: Path) -> None:
    fake = FakeSky({"x86": [Attempt("ok"), Attempt("ok")]})
    ex = executor(tmp_path, fake)
    first = ex.submit(Batch(45, {"x86": TASK}))
    ex.wait(first, timeout=30)
    fake.status_errors = 1  # the API server is away when the next batch asks whether the cluster is UP
    second = ex.submit(Batch(45, {"x86": TASK}))
    assert ex.wait(second, timeout=30) == "done"
    a = ex.load_state(second)["archs"]["x86"]
    assert (
        a["attempt"] == 2 and a["mode"] == "exec" and a["cluster"] == cluster_name(run_key(first), "x86", 1)
    )
    assert any("ApiServerConnectionError" in e for e in a["errors"])
    assert [c[0] for c in fake.calls if c[0] in ("launch", "exec")] == [
        "launch",
        "exec",
    ] and fake.downed == []
    ex.release(45)
    assert fake.alive == set()


def test_a_batch_from_before_cluster_reuse_resumes_and_is_downed(tmp_path: Path) -> None:
    """An upgrade while a batch ran: its handle has no batch number and its run has no run record."""
    fake = FakeSky({"x86": [Attempt("ok")]})
    first = executor(tmp_path, fake)
    handle = first.submit(Batch(46, {"x86": TASK}))
    first.wait(handle, timeout=30)
    old = "r46-b0c0d0"  # a hex part that starts with "b"
    name = cluster_name(old, "x86", 1)
    (tmp_path / "handles" / handle).rename(tmp_path / "handles" / old)
    for path in (tmp_path / "handles" / "runs").iterdir():
        path.unlink()
    state = json.loads((tmp_path / "handles" / old / "state.json").read_text())
    state["handle"] = old
    state["archs"]["x86"].update(status="running", cluster=name, mode=None, complete=False)
    (tmp_path / "handles" / old / "state.json").write_text(json.dumps(state))
    (tmp_path / "handles" / old / "x86.result.json").unlink()
    with fake.lock:
        fake.alive = {name}
        fake.queued[(name, 1)] = Attempt("ok")
    assert run_key(old) == old and run_key(old + "-b3") == old
    second = executor(tmp_path, fake)
    second.poll(old)
    assert second.wait(old, timeout=30) == "done" and second.collect(old)["x86"]["complete"]
    assert ("tail_logs", name, 1) in fake.calls and sum(c[0] == "launch" for c in fake.calls) == 1
    assert fake.alive == set() and fake.downed == [name]  # not the run's kept cluster: downed after its batch
    assert second.release(46) == {} and fake.downed == [name]


# ---------------------------------------------------------------- warm pool (keep_warm_minutes)
def warm_executor(tmp_path: Path, fake: FakeSky, minutes: float = 30.0, **kw: Any) -> tuple[Any, list]:
    charged: list[tuple[int, str, float]] = []
    ex = executor(
        tmp_path,
        fake,
        keep_warm_minutes=minutes,
        charge=lambda run_id, detail, usd: charged.append((run_id, detail, usd)),
        **kw,
    )
    return ex, charged


def run_batches(ex: Any, run_id: int, n: int, *, repo: str = "o/r", tasks: dict | None = None) -> list[str]:
    handles = []
    for _ in range(n):
        h = ex.submit(Batch(run_id, dict(tasks or {"x86": TASK, "arm": TASK}), repo=repo))
        assert ex.wait(h, timeout=30) == "done"
        handles.append(h)
    return handles


def starts(fake: FakeSky) -> list[tuple]:
    return [c for c in fake.calls if c[0] in ("launch", "exec")]


def test_main_verify_and_rebench_share_one_cluster_per_arch(tmp_path: Path) -> None:
    fake = FakeSky({a: [Attempt("ok")] * 3 for a in ("x86", "arm")})
    autostops = []
    launch = fake.launch

    def spy(task, cluster_name=None, **kw):  # noqa: ANN001, ANN202 - the double's own signature
        autostops.append(kw.get("idle_minutes_to_autostop"))
        return launch(task, cluster_name=cluster_name, **kw)

    fake.launch = spy  # type: ignore[method-assign]
    clock = Clock(step=1.0)
    ex, charged = warm_executor(tmp_path, fake, clock=clock)
    main, _verify = run_batches(ex, 50, 2)
    key = run_key(main)
    names = {a: cluster_name(key, a, 1) for a in ("x86", "arm")}
    tail = ex.release(50)
    assert set(tail) == set(names) and fake.downed == []  # kept warm, not downed
    warm = ex.warm_clusters()
    assert {n: (w["repo"], w["arch"], w["run_id"]) for n, w in warm.items()} == {
        names[a]: ("o/r", a, 50) for a in names
    }
    assert all(w["warm_until"] == pytest.approx(w["billed_until"] + 30 * 60) for w in warm.values())
    clock.now += 600  # the maintainer comments /autoresearch rebench
    (rebench,) = run_batches(ex, 51, 1)
    assert run_key(rebench) != key
    for name in names.values():
        assert [c for c in starts(fake) if c[1] == name] == [("launch", name), ("exec", name), ("exec", name)]
    assert len(starts(fake)) == 6 and autostops == [10 + 30, 10 + 30]  # autostop: past the warm period
    state = ex.load_state(rebench)["archs"]
    assert {a: (s["mode"], s["cluster"]) for a, s in state.items()} == {a: ("exec", names[a]) for a in names}
    assert ex.warm_clusters() == {}
    # the warm time (release -> adoption) is charged to the run that released it, the rebench from then on
    assert sorted(c[0] for c in charged) == [50, 50] and all(c[2] > 600 / 3600 * PRICE for c in charged)
    assert all(ex.vm_seconds(rebench)[a] < 600 for a in names)
    ex.release(51)  # the rebench's release treats the adopted cluster as its own: warm again
    assert set(ex.warm_clusters()) == set(names.values())
    assert {w["run_id"] for w in ex.warm_clusters().values()} == {51}
    clock.now += 31 * 60
    report = ex.reconcile()
    assert sorted(report["downed"]) == sorted(names.values())
    assert sorted(fake.downed) == sorted(names.values()) and fake.alive == set()  # one down per arch
    assert sorted(c[0] for c in charged) == [50, 50, 51, 51] and ex.warm_clusters() == {}


def test_a_rebench_after_warm_until_launches_a_new_cluster(tmp_path: Path) -> None:
    fake = FakeSky({"x86": [Attempt("ok")] * 2})
    clock = Clock(step=1.0)
    ex, charged = warm_executor(tmp_path, fake, clock=clock)
    (main,) = run_batches(ex, 60, 1, tasks={"x86": TASK})
    old = cluster_name(run_key(main), "x86", 1)
    ex.release(60)
    assert list(ex.warm_clusters()) == [old] and ex.reconcile()["kept"] == [old]  # waiting, not an orphan
    clock.now += 31 * 60
    assert ex.reconcile()["downed"] == [old]
    assert fake.downed == [old] and ex.warm_clusters() == {}
    assert [c[0] for c in charged] == [60] and charged[0][2] >= 30 * 60 / 3600 * PRICE
    (rebench,) = run_batches(ex, 61, 1, tasks={"x86": TASK})
    new = cluster_name(run_key(rebench), "x86", 1)
    assert starts(fake) == [("launch", old), ("launch", new)]
    # expired but not swept yet: never adopted either
    ex.release(61)
    clock.now += 31 * 60
    fake.plans["x86"].append(Attempt("ok"))
    (late,) = run_batches(ex, 62, 1, tasks={"x86": TASK})
    assert starts(fake)[-1] == ("launch", cluster_name(run_key(late), "x86", 1))
    assert new in ex.reconcile()["downed"] and new in fake.downed


def test_keep_warm_zero_downs_at_run_end_as_before(tmp_path: Path) -> None:
    fake = FakeSky({"x86": [Attempt("ok")] * 2})
    ex, charged = warm_executor(tmp_path, fake, minutes=0)
    (main,) = run_batches(ex, 63, 1, tasks={"x86": TASK})
    ex.release(63)
    old = cluster_name(run_key(main), "x86", 1)
    assert fake.downed == [old] and fake.alive == set() and ex.warm_clusters() == {}
    (again,) = run_batches(ex, 64, 1, tasks={"x86": TASK})
    assert starts(fake) == [("launch", old), ("launch", cluster_name(run_key(again), "x86", 1))]
    assert charged == []


@pytest.mark.parametrize("change", ["repo", "resources", "no repo"])
def test_another_repository_or_changed_resources_never_adopt(tmp_path: Path, change: str) -> None:
    fake = FakeSky({"x86": [Attempt("ok")] * 2})
    ex, charged = warm_executor(tmp_path, fake)
    (main,) = run_batches(ex, 65, 1, tasks={"x86": TASK})
    old = cluster_name(run_key(main), "x86", 1)
    ex.release(65)
    task = {**TASK, "resources": {"cpus": "4+"}} if change == "resources" else TASK
    repo = {"repo": "other/repo", "no repo": ""}.get(change, "o/r")
    (second,) = run_batches(ex, 66, 1, repo=repo, tasks={"x86": task})
    assert starts(fake) == [("launch", old), ("launch", cluster_name(run_key(second), "x86", 1))]
    assert list(ex.warm_clusters()) == [old] and charged == []  # still waiting for its own repository


def test_two_concurrent_runs_never_adopt_the_same_warm_cluster(tmp_path: Path) -> None:
    fake = FakeSky({"x86": [Attempt("ok")] * 3})
    clock = Clock(step=1.0)
    ex, _ = warm_executor(tmp_path, fake, clock=clock)
    (main,) = run_batches(ex, 67, 1, tasks={"x86": TASK})
    old = cluster_name(run_key(main), "x86", 1)
    ex.release(67)
    # two bot processes on one state dir: the file lock, not only the executor's own lock, decides
    other, _ = warm_executor(tmp_path, fake, clock=clock)
    gate = threading.Barrier(2)
    handles: dict[int, str] = {}

    def go(e: Any, run_id: int) -> None:
        gate.wait()
        handles[run_id] = e.submit(Batch(run_id, {"x86": TASK}, repo="o/r"))

    threads = [threading.Thread(target=go, args=a) for a in ((ex, 68), (other, 69))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert ex.wait(handles[68], timeout=30) == "done" and other.wait(handles[69], timeout=30) == "done"
    modes = sorted(
        (
            e.load_state(handles[r])["archs"]["x86"]["mode"],
            e.load_state(handles[r])["archs"]["x86"]["cluster"],
        )
        for e, r in ((ex, 68), (other, 69))
    )
    assert [m for m, _ in modes] == ["exec", "launch"] and modes[0][1] == old
    assert sorted(c[0] for c in starts(fake)) == ["exec", "launch", "launch"]
    assert ex.warm_clusters() == {}
    ex.release(68)
    other.release(69)
    clock.now += 31 * 60
    ex.reconcile()
    assert fake.alive == set() and sorted(set(fake.downed)) == sorted(n for _, n in modes)


def test_a_restarted_bot_keeps_the_warm_record_and_adopts(tmp_path: Path) -> None:
    fake = FakeSky({"x86": [Attempt("ok")] * 2})
    clock = Clock(step=1.0)
    first, _ = warm_executor(tmp_path, fake, clock=clock)
    (main,) = run_batches(first, 70, 1, tasks={"x86": TASK})
    old = cluster_name(run_key(main), "x86", 1)
    first.release(70)
    second, charged = warm_executor(tmp_path, fake, clock=clock)  # kill -9 and start again
    assert list(second.warm_clusters()) == [old]
    assert second.reconcile()["kept"] == [old] and fake.downed == []
    (rebench,) = run_batches(second, 71, 1, tasks={"x86": TASK})
    assert starts(fake) == [("launch", old), ("exec", old)]
    assert ex_mode(second, rebench) == ("exec", old) and [c[0] for c in charged] == [70]


def ex_mode(ex: Any, handle: str) -> tuple[str, str]:
    a = ex.load_state(handle)["archs"]["x86"]
    return a["mode"], a["cluster"]


def test_a_failed_or_cancelled_last_batch_is_never_kept_warm(tmp_path: Path) -> None:
    fake = FakeSky({"x86": [Attempt("ok"), Attempt("launch_fail"), Attempt("launch_fail")]})
    ex, _ = warm_executor(tmp_path, fake)
    (main,) = run_batches(ex, 72, 1, tasks={"x86": TASK})
    failed = ex.submit(Batch(72, {"x86": TASK}, repo="o/r"))
    assert ex.wait(failed, timeout=30) == "failed"
    ex.release(72)
    assert ex.warm_clusters() == {} and fake.alive == set()


def test_a_warm_cluster_gone_without_the_bot_loses_its_record_and_is_never_adopted(tmp_path: Path) -> None:
    fake = FakeSky({"x86": [Attempt("ok")] * 2})
    clock = Clock(step=1.0)
    ex, charged = warm_executor(tmp_path, fake, clock=clock)
    (main,) = run_batches(ex, 73, 1, tasks={"x86": TASK})
    old = cluster_name(run_key(main), "x86", 1)
    ex.release(73)
    with fake.lock:
        fake.alive.discard(old)  # autostop (the backstop) or someone's `sky down`
    report = ex.reconcile()
    assert ex.warm_clusters() == {} and report["downed"] == [] and [c[0] for c in charged] == [73]
    (later,) = run_batches(ex, 74, 1, tasks={"x86": TASK})
    assert starts(fake) == [("launch", old), ("launch", cluster_name(run_key(later), "x86", 1))]


def test_pipeline_runs_of_one_repository_share_a_warm_cluster_and_all_vm_time_is_recorded(
    tmp_path: Path,
) -> None:
    from bot.config import Settings
    from bot.experiments.registry import run_in_progress
    from bot.store import Store

    settings = Settings(database=str(tmp_path / "db.sqlite"), data_dir=str(tmp_path / "data"))
    store = Store(settings.db_path)
    fake = FakeSky({"x86": [Attempt("ok")] * 4})
    clock = Clock(step=30.0)
    ex, _ = warm_executor(
        tmp_path, fake, clock=clock, run_active=lambda run_id: run_in_progress(store, run_id)
    )
    ex.charge = lambda run_id, detail, usd: store.record_usage(run_id, "vm", usd=usd, detail=detail)

    def measure(ctx: Any) -> None:
        handle = ex.submit(Batch(ctx.run.id, {"x86": TASK}, repo=ctx.run.repo))
        assert ex.wait(handle, timeout=30) == "done"

    pipeline = bench_pipeline(settings, store, ex, measure)
    runs = []
    for _ in range(2):
        run = new_bench_run(settings, store)
        assert pipeline.advance(run, owner="test").state == "done"
        runs.append(run.id)
        clock.now += 300  # the maintainer reads the PR, comments /autoresearch rebench
    assert [c[0] for c in starts(fake)] == ["launch", "exec", "exec", "exec"]
    assert len({c[1] for c in starts(fake)}) == 1 and fake.downed == []
    clock.now += 31 * 60
    assert len(ex.reconcile()["downed"]) == 1 and fake.alive == set()

    def details(run_id: int) -> list[str]:
        rows = store.conn.execute("SELECT kind, detail FROM usage WHERE run_id = ? ORDER BY id", (run_id,))
        return [f"{k} {d.split(':')[0]}" for k, d in rows]

    # the first run: its teardown tail at release, then its warm time up to the adoption
    assert details(runs[0]) == ["vm teardown/x86", f"vm warm/x86 {fake.downed[0]}"]
    # the second run: its tail at release, then the warm time the reconciler ended
    assert details(runs[1]) == ["vm teardown/x86", f"vm warm/x86 {fake.downed[0]}"]
