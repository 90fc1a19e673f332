"""Correctness under emulation: another arch's build (cross compiler) checked under qemu-user by the real
driver, decided as "correct under emulation, not timed" (or broken); an arch the host can neither measure nor
emulate is named with the reason, never dropped."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_helpers import make_repo, project, run_driver, spec

from bot.experiments import emulation
from bot.experiments.stats import decide

ARM = emulation.probe("arm")
needs_cross = pytest.mark.skipif(
    ARM is None, reason=f"no aarch64 cross toolchain/qemu-user (apt-get install {emulation.packages('arm')})"
)


@needs_cross
def test_an_arm_build_is_checked_under_qemu_and_a_broken_one_is_caught(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shas = make_repo(repo)
    proj = project(rounds=2, repetitions=2, min_pairs=2)
    proj["architectures"] = ["x86", "arm"]
    s = spec(shas, ["aa", "slow", "broken", "nobuild"], proj, arch="arm", source={"url": str(repo)})
    s["emulate"] = ARM
    result, out = run_driver(s, tmp_path / "files", timeout=600)
    v = result["variants"]
    assert result["emulated"]["qemu"] == "qemu-aarch64" and not result["simulation"]["available"], out[-2000:]
    assert {n: v[n]["status"] for n in v} == {
        "baseline": "ok",
        "aa": "ok",
        "slow": "ok",
        "broken": "validation_failed",
        "nobuild": "build_failed",
    }, out[-3000:]
    assert "aarch64-linux-gnu-gcc" in v["baseline"]["build"]["log_tail"]
    assert all(not x.get("pairs") and not x.get("simulated") for x in v.values())  # nothing timed
    d = decide({"arm": result}, proj, seed=1).to_dict()
    verdicts = {r["candidate"]: r["verdict"] for r in d["rows"] if r["metric"] == d["target"]}
    assert verdicts == {"aa": "not_timed", "slow": "not_timed", "broken": "broken", "nobuild": "build_failed"}


def test_emulated_rows_never_make_or_block_a_winner_except_when_broken() -> None:
    x86 = {
        "arch": "x86",
        "variants": {
            "baseline": {"status": "ok", "simulated": {"ok": True, "estimated_cycles": 1000, "seconds": 1.0}},
            "fast": {"status": "ok", "simulated": {"ok": True, "estimated_cycles": 900, "seconds": 1.0}},
            "neon_bug": {"status": "ok", "simulated": {"ok": True, "estimated_cycles": 900, "seconds": 1.0}},
        },
        "simulation": {"available": True},
    }
    arm = {
        "arch": "arm",
        "emulated": {"qemu": "qemu-aarch64"},
        "simulation": {"available": False, "reason": "emulated: correctness only"},
        "variants": {
            "baseline": {"status": "ok", "validation": {"ok": True}},
            "fast": {"status": "ok", "validation": {"ok": True}},
            "neon_bug": {"status": "validation_failed", "validation": {"ok": False}},
        },
    }
    proj = {
        "architectures": ["x86", "arm"],
        "benchmark": {"metrics": [{"name": "t", "higher_is_better": False}], "target": "t"},
        "decision": {"primary": "simulated"},
    }
    d = decide({"x86": x86, "arm": arm}, proj).to_dict()
    assert d["winners"] == ["fast"]
    rows = {(r["candidate"], r["arch"]): r["verdict"] for r in d["rows"]}
    assert rows[("fast", "arm")] == "not_timed" and rows[("neon_bug", "arm")] == "broken"
    assert not any("arm: simulated tier unavailable" in str(n) for n in d["notes"])


def test_missing_emulation_is_said_with_the_packages() -> None:
    text = emulation.missing("arm")
    assert (
        text == "emulation available"
        if ARM
        else "gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user" in text
    )
    assert emulation.probe("sparc") is None and "no emulation known" in emulation.missing("sparc")


def test_an_emulated_arch_that_did_not_run_neither_makes_nor_blocks_a_winner() -> None:
    x86 = {
        "arch": "x86",
        "variants": {
            "baseline": {"status": "ok", "simulated": {"ok": True, "estimated_cycles": 1000, "seconds": 1.0}},
            "fast": {"status": "ok", "simulated": {"ok": True, "estimated_cycles": 900, "seconds": 1.0}},
        },
        "simulation": {"available": True},
    }
    arm = {  # the emulated batch was killed before its baseline got through
        "arch": "arm",
        "emulated": {"qemu": "qemu-aarch64"},
        "complete": False,
        "variants": {"baseline": {"status": "bench_failed"}, "fast": {"status": "bench_failed"}},
    }
    proj = {
        "architectures": ["x86", "arm"],
        "benchmark": {"metrics": [{"name": "t", "higher_is_better": False}], "target": "t"},
        "decision": {"primary": "simulated"},
    }
    d = decide({"x86": x86, "arm": arm}, proj).to_dict()
    assert d["winners"] == ["fast"]
    assert {(r["arch"], r["verdict"]) for r in d["rows"]} == {("x86", "faster"), ("arm", "missing")}
    assert any("arm" in str(n) for n in d["notes"])


def test_every_project_arch_is_accounted_for_never_dropped() -> None:
    from types import SimpleNamespace

    from bot import stages
    from bot.experiments.executors import LocalExecutor

    def ctx(emulate: bool) -> SimpleNamespace:
        pipeline = SimpleNamespace(
            services={"executor": SimpleNamespace(capabilities=LocalExecutor.capabilities)}
        )
        return SimpleNamespace(
            pipeline=pipeline,
            project=SimpleNamespace(architectures=["x86", "arm"]),
            settings=SimpleNamespace(executor="local", local_emulate=emulate),
        )

    here, other = stages.local_arch(), "arm" if stages.local_arch() == "x86" else "x86"
    off = stages.arch_coverage(ctx(False))
    assert off[here]["kind"] == "measured" and off[other]["kind"] == "not_run"
    assert "measures this machine" in off[other]["reason"]
    assert ("local_emulate: true" if emulation.probe(other) else "install") in off[other]["reason"]
    on = stages.arch_coverage(ctx(True))
    assert on[other]["kind"] == ("emulated" if emulation.probe(other) else "not_run")
    if emulation.probe(other):
        assert "not timed" in on[other]["reason"] and "qemu" in on[other]["reason"]
    assert stages.arch_lines(on)[0].startswith("**Architectures:** ")
