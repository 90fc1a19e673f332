"""sky/sandbox.py on its own (real bubblewrap): what an invocation sees, cannot do and leaves behind; the
seal; the bot's reader of files a sandbox could have written; the driver when a sealed baseline changed."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import driver  # sky/driver.py
import pytest
import sandbox  # sky/sandbox.py
from engine_helpers import make_repo, project, spec

from bot.experiments.stats import policy

needs_root_bwrap = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("bwrap"), reason="needs root (a uid per variant) and bubblewrap"
)


@pytest.fixture()
def cell(tmp_path: Path) -> tuple[sandbox.Sandbox, sandbox.Cell]:
    box = sandbox.Sandbox({"limits": {"memory_mb": 256, "processes": 64, "tmp_mb": 8, "output_mb": 1}})
    box.write_etc(tmp_path / "etc")
    tree, scratch = tmp_path / "tree", tmp_path / "scratch"
    tree.mkdir()
    scratch.mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "secret").write_text("another variant's file")
    c = sandbox.Cell("c", box.uid_for(7), tree, scratch)
    box.give(c, tree)
    box.give(c, scratch)
    return box, c


def sh(box: sandbox.Sandbox, c: sandbox.Cell, script: str, timeout: float = 30) -> sandbox.Outcome:
    return box.run(c, ["bash", "-c", script], c.tree, {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}, timeout)


@needs_root_bwrap
def test_an_invocation_sees_only_its_cell_as_its_own_uid(cell, tmp_path: Path) -> None:
    box, c = cell
    out = sh(
        box, c, f"id -u; ls {tmp_path}; cat {tmp_path}/other/secret; echo; tr '\\0' ' ' < /proc/1/cmdline"
    )
    text = out.output.decode()
    assert text.splitlines()[0] == str(c.uid) and c.uid != 0
    assert "other" not in text.splitlines()[1:3] and "another variant's file" not in text
    cmdline = text.strip().splitlines()[-1]  # pid 1 is bwrap, its arguments came through a pipe
    assert "--args" in cmdline and "--bind" not in cmdline and str(c.scratch) not in cmdline


@needs_root_bwrap
def test_no_user_namespace_no_network_nothing_outlives(cell) -> None:
    box, c = cell
    out = sh(
        box, c, "unshare -Ur true && echo USERNS; unshare -n true && echo NETNS; (sleep 30 &) ; echo started"
    )
    assert b"USERNS" not in out.output and b"NETNS" not in out.output and b"started" in out.output
    assert sandbox.uid_pids(c.uid) == []  # the background sleep died with the invocation


@needs_root_bwrap
@pytest.mark.parametrize(
    ("script", "reason"),
    [
        ("python3 -c 'b = bytearray(1 << 30); import time; time.sleep(5)'", "exceeded memory limit"),  # AS
        ("python3 -c 'b = bytearray(400 << 20); import time; time.sleep(5)'", "exceeded memory limit"),  # RSS
        ("for i in $(seq 500); do sleep 30 & done; wait", "exceeded process limit"),
        ("yes METRIC x=1", "exceeded output limit"),
        ("while :; do :; done", "timeout"),
    ],
)
def test_a_limit_kills_the_invocation_and_says_which(cell, script: str, reason: str) -> None:
    box, c = cell
    out = sh(box, c, script, timeout=5)
    assert out.reason and reason in out.reason, (out.reason, out.output[-300:])
    assert out.rc != 0 and sandbox.uid_pids(c.uid) == []


@needs_root_bwrap
def test_tmp_is_small_and_private(cell) -> None:
    box, c = cell
    out = sh(box, c, "head -c 20M /dev/zero > /tmp/x; echo rc=$?")
    assert b"rc=1" in out.output and b"No space left" in out.output


def test_seccomp_program_refuses_user_namespaces_on_both_architectures() -> None:
    for machine in ("x86_64", "aarch64"):
        prog = sandbox.seccomp_program(machine)
        assert len(prog) % 8 == 0 and len(prog) // 8 == 16
    with pytest.raises(sandbox.SandboxError):
        sandbox.seccomp_program("riscv64")


def test_the_seal_makes_a_tree_read_only_and_notices_any_change(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "bench").write_text("real")
    digest = sandbox.seal([str(tree)])
    sig = sandbox.signature([str(tree)])
    mode = (tree / "bin" / "bench").stat().st_mode
    assert not mode & 0o222 and not (tree / "bin").stat().st_mode & 0o222
    assert sandbox.digest([str(tree)]) == digest and sandbox.signature([str(tree)]) == sig
    (tree / "bin" / "bench").chmod(0o644)
    (tree / "bin" / "bench").write_text("fake")
    assert sandbox.signature([str(tree)]) != sig and sandbox.digest([str(tree)]) != digest


def test_read_regular_refuses_fifos_symlinks_and_big_files(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "big").write_bytes(b"x" * 1001)
    (tmp_path / "ok").write_bytes(b"{}")
    os.symlink(tmp_path / "ok", tmp_path / "link")
    assert sandbox.read_regular(tmp_path / "ok", 1000) == b"{}"
    for name in ("fifo", "link", "big"):
        with pytest.raises(OSError):
            sandbox.read_regular(tmp_path / name, 1000)  # never blocks on the FIFO


@needs_root_bwrap
def test_a_changed_sealed_baseline_is_tampering_and_no_candidate_survives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shas = make_repo(tmp_path / "repo")
    proj = project(rounds=1, repetitions=1, warmup=0, min_pairs=2, max_pairs=2)
    proj["decision"] = {"primary": "wall"}
    sp = spec(shas, ["aa", "slow"], proj, source={"url": str(tmp_path / "repo")})
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "spec.json").write_text(json.dumps(sp))
    d = driver.Driver(
        sp, tmp_path / "files" / "spec.json", tmp_path / "files" / "result.json", tmp_path / "work"
    )
    original = driver.Driver.phase_bench

    def tamper_then_bench(
        self: driver.Driver,
    ) -> None:  # what the sandboxes make impossible, done from outside
        bench = self.trees[self.baseline] / "bin" / "bench"
        bench.chmod(stat.S_IMODE(bench.stat().st_mode) | 0o200)
        bench.write_bytes(bench.read_bytes() + b"\0")
        original(self)

    monkeypatch.setattr(driver.Driver, "phase_bench", tamper_then_bench)
    monkeypatch.delenv("AUTORESEARCH_SANDBOX", raising=False)
    r = d.run()
    assert r["tampered"].startswith("tampering:")
    assert {n: v["status"] for n, v in r["variants"].items() if n != "baseline"} == {
        "aa": "bench_failed",
        "slow": "bench_failed",
    }
    assert policy.decide({"x86": r}, proj).winners == []


@needs_root_bwrap
def test_an_old_bwrap_without_size_gets_a_disk_backed_tmp_inside_the_disk_watch(cell) -> None:
    box, c = cell
    box.features = box.features - {"--size", "--disable-userns"}  # bubblewrap 0.6 (Ubuntu 22.04)
    out = sh(box, c, "echo hi > /tmp/x && cat /tmp/x; unshare -Ur true && echo USERNS")
    assert out.output.strip() == b"hi" and out.rc != 0 or b"USERNS" not in out.output
    assert (c.scratch / ".tmp" / "x").read_text() == "hi\n"
