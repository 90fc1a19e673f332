"""The real VM driver (sky/driver.py) on the minibench C project: real git, real builds, real benchmarks."""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import driver  # sky/driver.py (stdlib only; sky/ is on pytest's pythonpath)
import pytest
from engine_helpers import CANDIDATES, DRIVER, make_repo, project, run_driver, spec

from bot.experiments import results, tasks
from bot.experiments.executors import Batch, LocalExecutor

ALL = ["aa", "slow", "broken", "cheat", "crash", "nobuild"]
DRIFT = {"drift": {"src/kernels.c": [("sum += y[i];", "sum += y[i] * 1.000001f;")]}}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    dest = tmp_path_factory.mktemp("minibench") / "repo"
    return dest, make_repo(dest, {**CANDIDATES, **DRIFT})


@pytest.fixture(scope="module")
def full_run(repo: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One batch with every fixture candidate, through LocalExecutor (the same task SkyPilot would run)."""
    path, shas = repo
    base = tmp_path_factory.mktemp("exec")
    bundle = tasks.make_bundle(path, list(shas.values()), base / "repo.bundle")
    ex = LocalExecutor(base / "runs")
    handle = ex.submit(
        Batch(
            run_id=7,
            specs={"x86": spec(shas, ALL + ["drift"], project(rounds=3))},
            bundle=bundle,
            arch_configs={"x86": {"cloud": "aws", "instance_type": "c7i.xlarge"}},
        )
    )
    deadline = time.monotonic() + 120
    while ex.poll(handle) == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ex.poll(handle) == "done", ex.logs(handle)[-3000:]
    return {"result": ex.collect(handle)["x86"], "logs": ex.logs(handle)}


def test_statuses_of_every_kind_of_candidate(full_run: dict[str, Any]) -> None:
    r = results.load_result(full_run["result"])
    got = {name: results.status(r, name) for name in results.variant_names(r)}
    assert got == {
        "baseline": "ok",
        "aa": "ok",
        "slow": "ok",
        "broken": "validation_failed",
        "cheat": "ok",
        "crash": "bench_failed",
        "nobuild": "build_failed",
        "drift": "validation_failed",
    }
    assert r["complete"] is True and r["errors"] == []
    assert "SIGSEGV" in r["variants"]["crash"]["error"]
    assert "error" in r["variants"]["nobuild"]["build"]["log_tail"]
    # every fixture candidate modifies only .c files: the built baseline tree is reused
    assert {r["variants"][n]["build"]["strategy"] for n in ALL} == {"incremental"}
    assert r["variants"]["nobuild"]["build"]["ok"] is False


def test_numerics_checks_use_baseline_scripts(full_run: dict[str, Any]) -> None:
    v = full_run["result"]["variants"]
    # "broken" rewrote bench/check.c to always pass; the baseline's check ran instead and caught it
    assert v["broken"]["protected_restored"] == ["bench/check.c"]
    first = v["broken"]["validation"]["checks"][0]
    assert first["ok"] is False and "FAIL softmax" in first["detail"]
    # "drift" passes the tolerance check but its output differs from the baseline's (compare_output)
    checks = {c["name"]: c for c in v["drift"]["validation"]["checks"]}
    assert checks["./bin/check"]["ok"] is True
    assert checks["compare_output: ./bin/check --digest"]["ok"] is False
    assert "differs" in checks["compare_output: ./bin/check --digest"]["detail"]


def test_protected_bench_script_comes_from_baseline(full_run: dict[str, Any]) -> None:
    v = full_run["result"]["variants"]["cheat"]
    assert v["protected_restored"] == ["bench/bench.c"]
    assert v["samples"]["softmax_ns"] and all(x > 1.0 for x in v["samples"]["softmax_ns"])  # not its fake 1.0


def test_samples_pairs_and_stopping(full_run: dict[str, Any]) -> None:
    r = full_run["result"]
    design = r["paired"]
    assert design["looks"] == [6] and design["max_pairs"] == 6  # rounds 3 x repetitions 2
    pairs = {n: r["variants"][n].get("pairs", []) for n in ("aa", "slow", "cheat")}
    for name, ps in pairs.items():
        assert len(ps) == 6 and r["variants"][name]["stop"]["pairs"] == 6
        assert all(set(p["base"]) == set(p["cand"]) == {"softmax_ns", "rmsnorm_ns"} for p in ps)
        assert len(results.samples(r, name, "softmax_ns")) == 6  # one invocation per pair
    assert len(results.samples(r, "baseline", "softmax_ns")) == 18  # a baseline invocation in every pair
    assert results.samples(r, "crash", "softmax_ns") == []  # failed at its warm-up invocation
    # every pair is two adjacent invocations, baseline and one candidate, in random order
    sched = r["schedule"]
    assert len(sched) == 36
    chunks = [sched[i : i + 2] for i in range(0, 36, 2)]
    assert all("baseline" in c and len(set(c)) == 2 for c in chunks)
    firsts = [p["first"] for ps in pairs.values() for p in ps]
    assert [c[0] == "baseline" for c in chunks] == [f == "baseline" for f in firsts] or sorted(
        firsts
    ) == sorted("baseline" if c[0] == "baseline" else "candidate" for c in chunks)
    assert {"baseline", "candidate"} == set(firsts)


def test_simulated_tier_is_exact_and_sees_the_change(full_run: dict[str, Any]) -> None:
    r = full_run["result"]
    if not r["simulation"].get("available"):
        pytest.skip(f"simulated tier unavailable: {r['simulation'].get('reason')}")
    v = r["variants"]
    base, aa, slow = (v[n]["simulated"] for n in ("baseline", "aa", "slow"))
    assert base["ok"] and aa["ok"] and slow["ok"]
    # A/A: the same tree simulates to the same cost within 0.01% (measured: ~2e-6)
    assert abs(aa["estimated_cycles"] - base["estimated_cycles"]) / base["estimated_cycles"] < 1e-4
    assert abs(aa["instructions"] - base["instructions"]) / base["instructions"] < 1e-4
    # the redundant pass costs ~30% more, and the per-function profile says where: softmax and its exp
    assert slow["estimated_cycles"] > 1.2 * base["estimated_cycles"]
    names = [f["name"] for f in base["functions"]]
    assert "softmax" in names and "rms_norm" in names
    assert v["crash"].get("simulated") is None and v["nobuild"].get("simulated") is None
    assert r["timings"]["simulate_s"] > 0


def test_machine_facts_timings_and_result_line(full_run: dict[str, Any]) -> None:
    r = full_run["result"]
    assert r["machine"]["arch"] == platform.machine()
    assert r["machine"]["nproc"] >= 1 and r["machine"]["kernel"] == platform.release()
    assert r["machine"]["cpu"]
    t = r["timings"]
    assert t["total_s"] >= t["build_s"] + t["bench_s"] > 0
    line = next(ln for ln in full_run["logs"].splitlines() if ln.startswith("AUTORESEARCH_RESULT "))
    assert json.loads(line.split(" ", 1)[1]) == r
    partials = [
        json.loads(ln.split(" ", 1)[1])
        for ln in full_run["logs"].splitlines()
        if ln.startswith("AUTORESEARCH_PARTIAL ")
    ]
    # fetch, build, validate; after each round of pairs but the last (6 pairs each); after the simulation
    assert len(partials) == 3 + 5 + 1 and all(p["complete"] is False for p in partials)
    assert len(partials[-2]["variants"]["baseline"]["samples"]["softmax_ns"]) == 5 * 3  # aa, slow, cheat
    assert "[driver]" in full_run["logs"]


def test_incremental_strategy_rebuilds_only_changed_files(
    repo: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    path, shas = repo
    proj = project(rounds=1, repetitions=1, warmup=0)
    proj["build"]["strategy"] = "incremental"
    r, _ = run_driver(spec(shas, ["aa", "cheat", "broken"], proj, source={"url": str(path)}), tmp_path)
    v = r["variants"]
    assert [v[n]["build"]["strategy"] for n in ("aa", "cheat")] == ["incremental"] * 2
    assert "Nothing to be done" in v["aa"]["build"]["log_tail"]  # A/A: nothing recompiled
    assert "kernels.c" not in v["cheat"]["build"]["log_tail"]  # only bench.c changed
    assert "bench/bench.c" in v["cheat"]["build"]["log_tail"]
    assert (v["aa"]["status"], v["cheat"]["status"], v["broken"]["status"]) == (
        "ok",
        "ok",
        "validation_failed",
    )


@pytest.mark.skipif(shutil.which("ccache") is None, reason="ccache not installed")
def test_ccache_strategy_hits_cache_across_worktrees(
    repo: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    path, shas = repo
    proj = project(rounds=1, repetitions=1, warmup=0)
    proj["build"]["strategy"] = "ccache"
    r, _ = run_driver(spec(shas, ["aa"], proj, source={"url": str(path)}), tmp_path)
    assert r["variants"]["aa"]["build"]["strategy"] == "ccache"
    stats = subprocess.run(
        ["ccache", "--print-stats"],
        # aa's own cache dir (every variant has one); its hits come from the store the baseline filled
        env={"CCACHE_DIR": str(tmp_path / "work" / "ccache" / "aa"), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    counts = dict(line.split("\t")[:2] for line in stats.splitlines() if "\t" in line)
    hits = int(counts.get("direct_cache_hit", 0)) + int(counts.get("preprocessed_cache_hit", 0))
    assert hits >= 3  # aa's kernels.o, bench and check all from the cache


def test_every_variant_benchmarks_from_one_path(repo: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    """Same cwd string and environment size for every variant (stack alignment), whatever its name."""
    path, shas = repo
    shas = {**shas, "a_much_longer_candidate_name": shas["aa"]}
    probe = (
        'echo "METRIC pwd_len=${#PWD}"; echo "METRIC env_bytes=$(env | wc -c)"; '
        'echo "METRIC cwd_len=$(pwd -L | wc -c)"; echo "METRIC softmax_ns=100"'
    )
    proj = project(rounds=2, repetitions=1, warmup=0, command=probe, min_pairs=2, max_pairs=2)
    proj["decision"] = {"primary": "wall"}
    proj["benchmark"]["metrics"] += [{"name": m} for m in ("pwd_len", "env_bytes", "cwd_len")]  # declared
    r, _ = run_driver(spec(shas, ["a_much_longer_candidate_name"], proj, source={"url": str(path)}), tmp_path)
    v = r["variants"]
    long = v["a_much_longer_candidate_name"]
    assert long["status"] == "ok" and len(long["pairs"]) == 2
    for metric in ("pwd_len", "env_bytes", "cwd_len"):
        seen = set(v["baseline"]["samples"][metric]) | set(long["samples"][metric])
        assert len(seen) == 1, (metric, seen)
    assert v["baseline"]["samples"]["pwd_len"][0] == len(str(tmp_path / "work" / "bench-tree"))


def test_crash_mid_run_leaves_partial_result(repo: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    path, shas = repo
    files = tmp_path / "files"
    files.mkdir()
    (files / "spec.json").write_text(
        json.dumps(
            spec(shas, ["aa"], project(command="./bin/bench 300; sleep 30"), source={"url": str(path)})
        )
    )
    proc = subprocess.Popen(
        [sys.executable, str(DRIVER), "--spec", "spec.json", "--out", "result.json", "--workdir", "work"],
        cwd=files,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until validation is over and the (slow) benchmark runs
        r = json.loads((files / "result.json").read_text()) if (files / "result.json").exists() else {}
        if r.get("variants", {}).get("aa", {}).get("validation", {}).get("ok"):
            break
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    r = results.load_result(files / "result.json", partial=True)
    assert r["complete"] is False
    assert {results.status(r, n) for n in ("baseline", "aa")} == {"pending"}
    assert r["variants"]["aa"]["validation"]["ok"] is True and r["variants"]["aa"]["build"]["ok"] is True
    with pytest.raises(results.ResultError, match="complete"):
        results.load_result(files / "result.json")


def test_missing_commit_and_bad_spec(repo: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    path, shas = repo
    s = spec(
        {**shas, "ghost": "0" * 40},
        ["ghost", "aa"],
        project(rounds=1, repetitions=1, warmup=0),
        source={"url": str(path)},
    )
    r, _ = run_driver(s, tmp_path / "a")
    assert (
        r["variants"]["ghost"]["status"] == "build_failed" and "not found" in r["variants"]["ghost"]["error"]
    )
    assert r["variants"]["aa"]["status"] == "ok"
    with pytest.raises(ValueError, match="sha"):
        driver.check_spec({**s, "candidates": [{"name": "x", "sha": "main"}]})
    with pytest.raises(ValueError, match="distinct"):
        driver.check_spec({**s, "candidates": [{"name": "baseline", "sha": shas["aa"]}]})


def test_paired_stopping_rule_matches_the_bots() -> None:
    import paired as driver_paired  # noqa: PLC0415  (sky/paired.py)

    from bot.experiments import paired as bot_paired

    assert driver_paired.look_schedule(10, 30) == [10, 20, 30]
    assert driver_paired.look_schedule(10, 25) == [10, 20, 25]
    assert driver_paired.look_schedule(10, 6) == [10]
    for n in (2, 5, 6, 9, 10, 17, 20, 30, 61, 100):
        for a in (0.05, 0.05 / 3, 0.01, 0.001):
            assert driver_paired.order_index(n, a) == bot_paired.order_index(n, a), (n, a)
    d = [0.1, 0.12, 0.09, 0.11, 0.3, -0.2, 0.1, 0.105, 0.095, 0.1]
    assert driver_paired.median_ci(d, 0.05) == bot_paired.median_ci(d, 0.05)
    mid, lo, hi = driver_paired.median_ci(d, 0.05)
    assert lo <= mid <= hi and driver_paired.verdict(mid, lo, hi, 0.02) == "effect"
    assert driver_paired.verdict(0.001, -0.005, 0.006, 0.02) == "equivalent"
    assert driver_paired.verdict(0.001, -0.05, 0.06, 0.02) is None


def test_auto_strategy_copies_only_when_safe() -> None:
    src = [("M", "src/kernels.c"), ("M", "bench/bench.c")]
    assert driver.choose_strategy("auto", True, False, src)[0] == "incremental"
    assert driver.choose_strategy("auto", True, False, [])[0] == "incremental"  # A/A
    for risky in (
        [("M", "src/kernels.h")],
        [("A", "src/new.c")],
        [("D", "src/kernels.c")],
        [("M", "Makefile")],
    ):
        assert driver.choose_strategy("auto", True, False, src + risky)[0] == "ccache"
        assert driver.choose_strategy("auto", False, False, src + risky)[0] == "clean"
    assert driver.choose_strategy("auto", True, True, src)[0] == "ccache"  # CMake tree
    assert driver.choose_strategy("incremental", False, True, src)[0] == "clean"
    assert driver.choose_strategy("ccache", False, False, src) == ("clean", "ccache not installed")


def test_metric_parsing() -> None:  # globs: tests/test_pathglob.py
    text = "noise\nMETRIC t_ns=1.5\nMETRIC t_ns=2e3\n  METRIC tok/s=9\nMETRIC other=nan-ish\nMETRIC x=-3\n"
    assert driver.parse_metrics(text) == {"t_ns": [1.5, 2000.0], "x": [-3.0]}


def test_broken_baseline_aborts_cleanly(repo: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    path, shas = repo
    proj = project(rounds=1, repetitions=1, warmup=0)
    proj["validate"]["commands"] = ["test -f NO_SUCH_FILE"]
    r, _ = run_driver(spec(shas, ["aa"], proj, source={"url": str(path)}), tmp_path / "v")
    assert r["variants"]["baseline"]["status"] == "validation_failed" and r["schedule"] == []
    assert r["variants"]["aa"]["status"] == "validation_failed"
    assert any("baseline failed validation" in e for e in r["errors"]) and r["complete"] is True
    proj["build"]["commands"] = ["make -j2 bench check", "exit 3"]
    r, _ = run_driver(spec(shas, ["aa"], proj, source={"url": str(path)}), tmp_path / "b")
    assert r["variants"]["baseline"]["status"] == "build_failed"
    assert "exit status 3" in r["variants"]["baseline"]["build"]["log_tail"]
    assert r["variants"]["aa"]["status"] == "bench_failed" and "not reached" in r["variants"]["aa"]["error"]
    assert any("baseline build failed" in e for e in r["errors"])
    results.validate_result(r)
