"""LocalExecutor (real detached processes, real driver), task rendering, bundles and the result schema."""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import ROOT, make_repo, project, spec
from sky_catalog_fixture import isolated_env, seed_catalog

from bot.experiments import results, tasks
from bot.experiments.executors import Batch, ExecutorError, LocalExecutor

X86 = {
    "cloud": "aws",
    "instance_type": "c7i.xlarge",
    "region": "us-east-1",
    "use_spot": False,
    "disk_size": 64,
    "price_per_hour": 0.1785,
}
SPIN = "    if (n > 2048) for (volatile int spin = 1; spin;) {}\n"  # bench (n=4096) never ends; check is fine
HANG = {"hang": {"src/kernels.c": [("    float mx = x[0];\n", SPIN + "    float mx = x[0];\n")]}}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], Path]:
    base = tmp_path_factory.mktemp("lx")
    shas = make_repo(base / "repo", {"aa": {}, **HANG})
    bundle = tasks.make_bundle(base / "repo", list(shas.values()), base / "repo.bundle")
    return base / "repo", shas, bundle


def quick_project(**bench: Any) -> dict[str, Any]:
    return project(**{"rounds": 1, "repetitions": 1, "warmup": 0, "command": "./bin/bench 50", **bench})


def wait(ex: LocalExecutor, handle: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while ex.poll(handle) == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    return ex.poll(handle)


def wait_for_benchmark(result_path: Path, timeout: float = 300) -> None:
    """Until the driver has validated every variant (so it is benchmarking now); generous: the batch may first
    wait for the machine-wide benchmark lock held by another process."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = json.loads(result_path.read_text())
            if r["schedule"]:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    raise AssertionError("driver never reached the benchmark phase")


def test_two_arches_run_one_after_another_and_survive_a_restart(
    repo: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, shas, bundle = repo
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_must_not_leak")
    proj = quick_project()
    proj["validate"]["commands"].append('test -z "$GITHUB_TOKEN"')  # the benchmark env has no tokens
    specs = {a: spec(shas, ["aa"], proj, arch=a, run_id=5) for a in ("x86", "arm")}
    ex = LocalExecutor(tmp_path / "runs")
    handle = ex.submit(Batch(run_id=5, specs=specs, bundle=bundle, arch_configs={"x86": X86}))
    other = ex.submit(Batch(run_id=6, specs={"x86": spec(shas, ["aa"], proj, run_id=6)}, bundle=bundle))
    assert re.fullmatch(r"local-5-[0-9a-f]{10}", handle)
    assert wait(ex, handle) == "done" and wait(ex, other) == "done", ex.logs(handle)[-2000:]

    again = LocalExecutor(tmp_path / "runs")  # a restarted bot re-attaches
    assert again.poll(handle) == "done"
    got = again.collect(handle)
    assert set(got) == {"x86", "arm"}
    for arch, r in got.items():
        results.validate_result(r)
        assert r["arch"] == arch
        assert {n: v["status"] for n, v in r["variants"].items()} == {"baseline": "ok", "aa": "ok"}
    # never two benchmarks at once: the three driver runs (two batches) have disjoint time intervals
    spans = []
    for h in (handle, other):
        marks = re.findall(r"\[runner\] ([0-9.]+) (\w+): (start|exit)", again.logs(h))
        starts = [float(t) for t, _, kind in marks if kind == "start"]
        ends = [float(t) for t, _, kind in marks if kind == "exit"]
        spans += list(zip(starts, ends, strict=False))
    spans.sort()
    assert len(spans) == 3 and all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert "[driver]" in again.logs(handle)


def test_cancel_kills_the_process_group_and_keeps_partial_results(repo: Any, tmp_path: Path) -> None:
    _, shas, bundle = repo
    ex = LocalExecutor(tmp_path / "runs")
    handle = ex.submit(
        Batch(run_id=8, specs={"x86": spec(shas, ["hang"], quick_project(timeout=120))}, bundle=bundle)
    )
    wait_for_benchmark(tmp_path / "runs" / handle / "x86" / "result.json")
    pid = json.loads((tmp_path / "runs" / handle / "runner.pid").read_text())["pid"]
    ex.cancel(handle)
    assert ex.poll(handle) == "failed"
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # driver and bench are gone too
    partial = ex.collect(handle)["x86"]
    assert partial["complete"] is False and partial["variants"]["hang"]["status"] == "pending"
    assert partial["variants"]["hang"]["validation"]["ok"] is True


def test_dead_runner_without_result_is_failed_after_restart(repo: Any, tmp_path: Path) -> None:
    _, shas, bundle = repo
    ex = LocalExecutor(tmp_path / "runs")
    handle = ex.submit(
        Batch(run_id=9, specs={"x86": spec(shas, ["hang"], quick_project(timeout=120))}, bundle=bundle)
    )
    wait_for_benchmark(tmp_path / "runs" / handle / "x86" / "result.json")
    assert ex.poll(handle) == "running"
    pid = json.loads((tmp_path / "runs" / handle / "runner.pid").read_text())["pid"]
    os.killpg(pid, signal.SIGKILL)  # the machine "crashes"
    ex._children[handle].wait()
    restarted = LocalExecutor(tmp_path / "runs")
    assert restarted.poll(handle) == "failed"
    assert restarted.collect(handle)["x86"]["complete"] is False


def test_benchmark_timeout_marks_only_that_candidate(repo: Any, tmp_path: Path) -> None:
    _, shas, bundle = repo
    ex = LocalExecutor(tmp_path / "runs")
    handle = ex.submit(
        Batch(run_id=10, specs={"x86": spec(shas, ["hang", "aa"], quick_project(timeout=1))}, bundle=bundle)
    )
    assert wait(ex, handle) == "done"
    r = ex.collect(handle)["x86"]
    assert [r["variants"][n]["status"] for n in ("baseline", "hang", "aa")] == ["ok", "bench_failed", "ok"]
    assert "timeout" in r["variants"]["hang"]["error"]


def test_unknown_handles_are_rejected(tmp_path: Path) -> None:
    ex = LocalExecutor(tmp_path)
    for bad in ("nope", "../etc", ""):
        with pytest.raises(ExecutorError):
            ex.poll(bad)
    with pytest.raises(ExecutorError):
        ex.submit(Batch(run_id=1, specs={}))


# ---------------------------------------------------------------------- tasks


def test_render_task_is_a_valid_skypilot_task(repo: Any, tmp_path: Path) -> None:
    _, shas, bundle = repo
    s = spec(shas, ["aa"], quick_project(), run_id=12)
    files = tasks.write_batch_files(s, tmp_path / "files", bundle)
    shipped = {p.name for p in files.iterdir()}
    assert {"driver.py", "repo.bundle", "spec.json"} <= shipped
    assert {p.name for p in (ROOT / "sky").glob("*.py")} <= shipped  # presets and their helpers
    assert json.loads((files / "spec.json").read_text())["source"] == {"bundle": "repo.bundle"}
    task = tasks.render_task(s, X86, files)
    tasks.validate_task(task)
    assert task["name"] == "autoresearch-12-x86" and task["workdir"] == str(files.resolve())
    assert task["resources"] == {
        "cloud": "aws",
        "instance_type": "c7i.xlarge",
        "region": "us-east-1",
        "use_spot": False,
        "disk_size": 64,
        "autostop": {"idle_minutes": 10, "down": True},
        "labels": {"autoresearch-run": "12", "autoresearch-arch": "x86"},
    }
    assert task["envs"]["AUTORESEARCH_PRESET"] == "generic" and task["envs"]["AUTORESEARCH_PIP"] == ""
    assert not any(re.search(r"token|secret|key", k, re.I) for k in task["envs"])
    llama = tasks.render_task(
        {**s, "project": {"preset": "llama.cpp"}}, {**X86, "autostop_minutes": 3}, files
    )
    assert (
        llama["envs"]["AUTORESEARCH_PRESET"] == "llama.cpp"
        and llama["resources"]["autostop"]["idle_minutes"] == 3
    )
    assert llama["envs"]["AUTORESEARCH_PIP"] == "gguf numpy"  # the preset's VM_PACKAGES
    bad = copy.deepcopy(task)
    bad["resources"]["use_spot"] = "sometimes"
    with pytest.raises(tasks.TaskError, match="use_spot"):
        tasks.validate_task(bad)
    with pytest.raises(tasks.TaskError, match="source"):
        tasks.write_batch_files({**s, "source": {}}, tmp_path / "nosource")

    # the real library builds a sky.Task from it (offline: hand-placed catalog under an isolated HOME)
    home = tmp_path / "home"
    seed_catalog(home)
    code = (
        "import json, sys, sky; t = sky.Task.from_yaml_config(json.load(sys.stdin)); "
        "r = list(t.resources)[0]; print(json.dumps([t.name, r.instance_type, r.use_spot, t.envs['SPEC']]))"
    )
    p = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(task),
        env=isolated_env(home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    assert json.loads(p.stdout.strip().splitlines()[-1]) == [
        "autoresearch-12-x86",
        "c7i.xlarge",
        False,
        "spec.json",
    ]


def test_make_bundle_carries_commits_and_cleans_its_refs(repo: Any, tmp_path: Path) -> None:
    path, shas, _ = repo
    out = tasks.make_bundle(path, [shas["aa"], shas["baseline"], shas["aa"]], tmp_path / "b.bundle")
    heads = subprocess.run(
        ["git", "bundle", "list-heads", str(out)], stdout=subprocess.PIPE, text=True
    ).stdout
    assert {line.split()[0] for line in heads.splitlines()} == {shas["aa"], shas["baseline"]}
    refs = subprocess.run(
        ["git", "for-each-ref", "refs/autoresearch-bundle"], cwd=path, stdout=subprocess.PIPE, text=True
    ).stdout
    assert refs == ""
    with pytest.raises(tasks.TaskError, match="rev-parse"):
        tasks.make_bundle(path, ["f" * 40], tmp_path / "c.bundle")


# ---------------------------------------------------------------------- results


def minimal_result() -> dict[str, Any]:
    variant = {
        "sha": "a" * 40,
        "status": "ok",
        "build": {"ok": True, "seconds": 1.0, "log_tail": ""},
        "validation": {"ok": True, "checks": [{"name": "check", "ok": True, "detail": ""}]},
        "samples": {"t_ns": [1.0, 2.0]},
    }
    return {
        "schema": 1,
        "arch": "x86",
        "run_id": 1,
        "machine": {"cpu": "c", "flags": [], "kernel": "k", "nproc": 2, "arch": "x86_64"},
        "variants": {"baseline": variant, "c1": copy.deepcopy(variant)},
        "schedule": ["baseline", "c1"],
        "timings": {"build_s": 1, "validate_s": 1, "bench_s": 1, "total_s": 3},
        "errors": [],
    }


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: r.pop("machine"), "result.machine: is missing"),
        (lambda r: r["variants"]["c1"].update(status="great"), "result.variants.c1.status"),
        (
            lambda r: r["variants"]["c1"]["samples"]["t_ns"].append(float("nan")),
            r"result.variants.c1.samples.t_ns\[2\]",
        ),
        (
            lambda r: r["variants"]["c1"]["build"].update(ok="yes"),
            "result.variants.c1.build.ok: must be bool",
        ),
        (lambda r: r["schedule"].append("ghost"), r"result.schedule\[2\]"),
        (lambda r: r.update(schema=2), "unsupported version"),
        (lambda r: r["timings"].pop("bench_s"), "result.timings.bench_s"),
    ],
)
def test_result_schema_errors_name_the_field(mutate: Any, field: str) -> None:
    r = minimal_result()
    results.validate_result(copy.deepcopy(r))
    mutate(r)
    with pytest.raises(results.ResultError, match=field):
        results.validate_result(r)


def test_result_accessors() -> None:
    r = results.load_result(json.dumps(minimal_result()))
    assert results.samples(r, "c1", "t_ns") == [1.0, 2.0] and results.samples(r, "c1", "other") == []
    assert results.status(r, "baseline") == "ok" and results.variant_names(r) == ["baseline", "c1"]
    with pytest.raises(KeyError, match="no variant"):
        results.status(r, "c9")
    with pytest.raises(results.ResultError, match="not valid JSON"):
        results.load_result("{nope")
