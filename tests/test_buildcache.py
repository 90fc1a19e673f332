"""The local executor's shared compiler cache (bot/experiments/buildcache.py), with real jails, builds and
ccache: filled by a baseline-only warm run, read-only to every batch, reused by the next batch of the same
baseline, and untouchable by a candidate that tries to plant files in it."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import make_repo, project, spec

from bot import resources
from bot.experiments import buildcache, jail, results, tasks
from bot.experiments.executors import Batch, LocalExecutor

# a candidate whose binaries, when run (validation, benchmark), try to plant and overwrite files in the store
POISON = r"""#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
__attribute__((constructor)) static void plant(void) {
    const char *r = getenv("CCACHE_REMOTE_STORAGE");
    char dir[4096], path[8192];
    if (!r || strncmp(r, "file:", 5) != 0) return;
    snprintf(dir, sizeof dir, "%s", r + 5);
    char *bar = strchr(dir, '|');
    if (bar) *bar = 0;
    snprintf(path, sizeof path, "%s/poison", dir);
    FILE *f = fopen(path, "w");
    if (f) { fputs("planted", f); fclose(f); }
    FILE *note = fopen("plant.log", "a");  /* in its own worktree: the test reads why it failed */
    if (note) { fprintf(note, "%s: %s\n", dir, f ? "written" : strerror(errno)); fclose(note); }
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *g = fopen(path, "r+");  /* overwrite whatever entry it can reach */
        if (g) { fputs("planted", g); fclose(g); }
    }
    if (d) closedir(d);
}
#include "kernels.h"
"""
CANDIDATES = {"aa": {}, "poison": {"src/kernels.c": [('#include "kernels.h"\n', POISON)]}}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    base = tmp_path_factory.mktemp("bc")
    shas = make_repo(base / "repo", CANDIDATES)
    return shas, tasks.make_bundle(base / "repo", list(shas.values()), base / "repo.bundle")


def _project() -> dict[str, Any]:
    proj = project(rounds=1, repetitions=1, warmup=0, command="./bin/bench 50")
    proj["build"]["shared_cache"] = True
    proj["decision"] = {"primary": "wall"}
    return proj


def _wait(ex: LocalExecutor, handle: str, timeout: float = 300) -> str:
    import time

    deadline = time.monotonic() + timeout
    while ex.poll(handle) == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    return ex.poll(handle)


def _digest(store: Path) -> dict[str, str]:
    out = {}
    for dirpath, _dirs, files in os.walk(store):
        for name in files:
            p = Path(dirpath) / name
            out[str(p.relative_to(store))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _remote_hits(ccache_dir: Path) -> int:
    text = subprocess.run(
        ["ccache", "--print-stats"],
        env={**os.environ, "CCACHE_DIR": str(ccache_dir)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    stats = dict(line.split("\t", 1) for line in text.splitlines() if "\t" in line)
    return int(stats.get("remote_storage_hit", 0))


def test_warm_once_from_the_baseline_then_read_only_and_unpoisonable(repo: Any, tmp_path: Path) -> None:
    ok, why = jail.probe()
    if not ok:
        pytest.skip(f"no jail on this host: {why}")
    if not subprocess.run(["sh", "-c", "command -v ccache"], capture_output=True).returncode == 0:
        pytest.skip("ccache is not installed")
    shas, bundle = repo
    ex = LocalExecutor(tmp_path / "runs")
    store = ex.shared_cache / "store"

    # batch 1: the store is warmed first, by a run of the baseline alone
    h1 = ex.submit(Batch(run_id=1, specs={"x86": spec(shas, ["aa"], _project())}, bundle=bundle))
    assert _wait(ex, h1) == "done", ex.logs(h1)[-3000:]
    log1 = ex.logs(h1)
    assert "warming the shared compiler cache" in log1 and "warm run exit 0" in log1
    warm_spec = (tmp_path / "runs" / h1 / "x86-warm" / "spec.json").read_text()
    assert shas["aa"] not in warm_spec and '"warm_only": true' in warm_spec  # no candidate in the warm run
    r1 = ex.collect(h1)["x86"]
    results.validate_result(r1)
    assert r1["timings"]["cache_warm_s"] > 0
    # baseline: all hits (every variant has its own ccache dir, work/ccache/<variant>)
    assert _remote_hits(tmp_path / "runs" / h1 / "x86" / "work" / "ccache" / "baseline") >= 2
    before = _digest(store)
    assert before, "the warm run left nothing in the store"
    assert len(list((ex.shared_cache / "warmed").iterdir())) == 1

    # batch 2, same baseline: no warm run; the baseline and the poisoner build from the read-only store
    h2 = ex.submit(Batch(run_id=2, specs={"x86": spec(shas, ["poison"], _project())}, bundle=bundle))
    assert _wait(ex, h2) == "done", ex.logs(h2)[-3000:]
    log2 = ex.logs(h2)
    assert "warming" not in log2
    r2 = ex.collect(h2)["x86"]
    assert "cache_warm_s" not in r2["timings"]
    assert {n: v["status"] for n, v in r2["variants"].items()} == {"baseline": "ok", "poison": "ok"}
    assert _remote_hits(tmp_path / "runs" / h2 / "x86" / "work" / "ccache" / "baseline") >= 2
    # the poisoner's binaries ran (validation and benchmark) and could neither add nor change an entry
    assert _digest(store) == before
    assert not (store / "poison").exists()
    tried = (tmp_path / "runs" / h2 / "x86" / "work" / "wt" / "poison" / "plant.log").read_text()
    assert f"{store}: Read-only file system" in tried and "written" not in tried


def test_warm_keys_follow_the_baseline_and_build_settings_only() -> None:
    shas = {"baseline": "a" * 40, "aa": "b" * 40}
    s = spec(shas, ["aa"], _project())
    key = buildcache.warm_key(s, "x86")
    other_cands = spec(shas, [], _project())
    assert buildcache.warm_key(other_cands, "x86") == key  # candidates do not matter
    more_rounds = spec(shas, ["aa"], {**_project(), "benchmark": {**_project()["benchmark"], "rounds": 9}})
    assert buildcache.warm_key(more_rounds, "x86") == key  # neither do measurement settings
    assert buildcache.warm_key(s, "arm") != key
    flags = _project()
    flags["build"]["commands"] = ["make -j2 bench check CFLAGS=-O3"]
    assert buildcache.warm_key(spec(shas, ["aa"], flags), "x86") != key
    assert buildcache.warm_key(spec({**shas, "baseline": "c" * 40}, ["aa"], _project()), "x86") != key
    assert buildcache.wanted(s) and not buildcache.wanted(spec(shas, ["aa"], project()))


def test_an_oversized_store_is_emptied_with_its_markers(tmp_path: Path) -> None:
    cache = buildcache.SharedCache(tmp_path / "c", limit_bytes=100)
    cache.prepare_store(None)
    (cache.store / "entry").write_bytes(b"x" * 200)
    cache.mark("k", {})
    assert cache.warmed("k")
    cache.prepare_store(None)
    assert not cache.warmed("k") and list(cache.store.iterdir()) == []


def _jail_and_ccache_or_skip() -> None:
    ok, why = jail.probe()
    if not ok:
        pytest.skip(f"no jail on this host: {why}")
    if subprocess.run(["sh", "-c", "command -v ccache"], capture_output=True).returncode != 0:
        pytest.skip("ccache is not installed")


def test_a_warm_up_whose_baseline_fails_marks_nothing(repo: Any, tmp_path: Path) -> None:
    """The driver exits 0 with a result even when the baseline does not build (issue #19: a warm-up that
    stopped in 3 s marked the cache warm): the runner reads that result and marks nothing."""
    _jail_and_ccache_or_skip()
    shas, bundle = repo
    ex = LocalExecutor(tmp_path / "runs")
    proj = _project()
    proj["build"]["commands"] = ["make -j2 bench check", "false"]  # the baseline itself fails to build
    for run_id in (1, 2):  # the second batch tries again: nothing was marked
        h = ex.submit(Batch(run_id=run_id, specs={"x86": spec(shas, ["aa"], proj)}, bundle=bundle))
        _wait(ex, h)
        log = ex.logs(h)
        assert "warming the shared compiler cache" in log and "NOT warm (baseline build_failed" in log, log
        warm = ex.collect(h)["x86"]["compiler_cache"]["warm_up"]
        assert warm["exit"] == 0 and warm["ok"] is False and "build_failed" in warm["why"]
        assert not (ex.shared_cache / "warmed").exists() or not list((ex.shared_cache / "warmed").iterdir())


def test_killed_during_the_warm_up_then_the_next_run_is_cold_and_warms_once(
    repo: Any, tmp_path: Path
) -> None:
    """A batch killed while it warms the cache leaves no marker; the next batch says cold (it runs the
    warm-up), runs it once, marks it, and its baseline build then hits the store (stated from ccache's own
    statistics of the batch, not from the marker)."""
    _jail_and_ccache_or_skip()
    import time

    shas, bundle = repo
    ex = LocalExecutor(tmp_path / "runs")
    proj = _project()
    proj["build"]["commands"] = ["sleep 8", "make -j2 bench check"]  # a warm-up slow enough to be killed in
    h1 = ex.submit(Batch(run_id=1, specs={"x86": spec(shas, ["aa"], proj)}, bundle=bundle))
    deadline = time.monotonic() + 120
    while "warming the shared compiler cache" not in ex.logs(h1) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2)
    ex.cancel(h1)  # SIGTERM, then SIGKILL, to the runner's whole process group, the warm jail included
    assert ex.poll(h1) == "failed"
    assert "warm run exit" not in ex.logs(h1)
    markers = ex.shared_cache / "warmed"
    assert not markers.exists() or not list(markers.iterdir())

    h2 = ex.submit(Batch(run_id=2, specs={"x86": spec(shas, ["aa"], proj)}, bundle=bundle))
    assert _wait(ex, h2) == "done", ex.logs(h2)[-3000:]
    log2 = ex.logs(h2)
    assert log2.count("warming the shared compiler cache") == 1 and "warm run exit 0" in log2
    cc = ex.collect(h2)["x86"]["compiler_cache"]
    assert cc["warm_up"]["ok"] is True and cc["warm_up"]["ccache"]["miss"] >= 2  # it compiled the baseline
    assert cc["batch"]["remote_hit"] >= 2  # the batch's baseline build: from the store
    assert len(list(markers.iterdir())) == 1

    h3 = ex.submit(Batch(run_id=3, specs={"x86": spec(shas, ["aa"], proj)}, bundle=bundle))
    assert _wait(ex, h3) == "done", ex.logs(h3)[-3000:]
    assert "warming" not in ex.logs(h3)
    cc3 = ex.collect(h3)["x86"]["compiler_cache"]
    assert cc3["warm_up"] is None and cc3["batch"]["remote_hit"] >= 2


def test_a_stale_or_empty_store_or_an_old_marker_is_not_warm(tmp_path: Path) -> None:
    cache = buildcache.SharedCache(tmp_path / "c")
    cache.prepare_store(None)
    for i in range(3):
        (cache.store / f"e{i}").write_bytes(b"x")
    cache.mark("k", {})
    assert cache.warmed("k")
    (cache.store / "e0").unlink()  # fewer entries than when it was marked: not what was warmed
    assert not cache.warmed("k") and not (cache.markers / "k").exists()
    cache.mark("k", {})
    for p in cache.store.iterdir():
        p.unlink()
    assert not cache.warmed("k")  # empty store
    (cache.store / "e0").write_bytes(b"x")
    (cache.markers / "old").write_text('{"arch": "x86"}')  # written before markers checked the warm build
    assert not cache.warmed("old") and not (cache.markers / "old").exists()
    (cache.markers / "torn").write_text('{"ar')
    assert not cache.warmed("torn")
    assert buildcache.warm_failure(None) == "no result"
    ok = {"complete": True, "errors": [], "variants": {"baseline": {"status": "ok", "build": {"ok": True}}}}
    assert buildcache.warm_failure(ok) == ""
    bad = {**ok, "variants": {"baseline": {"status": "ok", "build": {"ok": True}, "simulated_build": {}}}}
    assert "simulation build" in buildcache.warm_failure(bad)


@pytest.mark.skipif(not shutil.which("ccache") or not shutil.which("cc"), reason="needs ccache and cc")
def test_a_store_under_a_path_with_a_space_is_one_backend(tmp_path: Path) -> None:
    """CCACHE_REMOTE_STORAGE separates backends by spaces: a checkout under "/tmp/final run" split the store's
    URL and every build failed ('URL scheme must not be empty'). Both URLs are percent-encoded; real ccache
    writes and reads the store through them."""
    root = tmp_path / "my work" / "_shared-ccache"
    cache = buildcache.SharedCache(root)
    cache.store.mkdir(parents=True)
    assert " " not in cache.remote(writable=True) and cache.remote(writable=False).endswith("|read-only")
    driver = resources.sky_module("driver")
    assert driver.ccache_file_url(cache.store) == cache.remote(writable=True)
    src = tmp_path / "x.c"
    src.write_text("int f(void) { return 42; }\n")
    for n, remote in enumerate((cache.remote(writable=True), cache.remote(writable=False))):
        env = {**os.environ, "CCACHE_DIR": str(tmp_path / f"local{n}"), "CCACHE_REMOTE_STORAGE": remote}
        p = subprocess.run(
            ["ccache", "cc", "-c", str(src), "-o", str(tmp_path / f"x{n}.o")], env=env, capture_output=True
        )
        assert p.returncode == 0, p.stderr.decode()
    assert cache.files() > 0  # the writable run filled the store at its real path, spaces and all
