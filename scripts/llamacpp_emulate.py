#!/usr/bin/env python3
"""ARM correctness of llama.cpp candidates on an x86 host: built for aarch64 with Debian's cross toolchain and
checked under qemu-user (greedy tokens + KLD), through the real driver (sky/driver.py + sky/emulate.py).

    flock /tmp/llama-build.lock .venv/bin/python scripts/llamacpp_emulate.py [--source DIR] [--workdir DIR]

Needs `apt-get install gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user` (bot/experiments/emulation.py
says what is missing). Candidates: `a_a` (an empty commit) and `bad_norm` (demo --llama's felix: rms_norm
without its square root). Prints each variant's status, its checks and the build and check seconds; exit 0
only when the baseline and a_a pass and bad_norm is caught (validation_failed) under emulation. Heavy: the
first aarch64 build of llama.cpp is cold (minutes; ccache makes a second run faster).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

import llamacpp_e2e as e2e  # noqa: E402  (scripts/llamacpp_e2e.py: the same repo, project and driver run)

from bot.experiments import emulation  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=Path.home() / ".cache/autoresearch-bot/llama.cpp")
    ap.add_argument("--workdir", type=Path, default=ROOT / "var" / "llamacpp-emulate")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    emulate = emulation.probe("arm")
    if emulate is None:
        print(f"arm cannot be checked here: {emulation.missing('arm')}")
        return 2
    if not (args.source / "CMakeLists.txt").exists():
        print(f"no llama.cpp source in {args.source}: run scripts/fetch_llamacpp.sh")
        return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    shas = e2e.make_repo(args.source, args.workdir / "repo")
    ns = argparse.Namespace(rounds=2, reps=1, threads=args.threads, bench_reps=1)
    proj = e2e.project(ns)
    spec = {
        "schema": 1,
        "run_id": 0,
        "arch": "arm",
        "seed": 1,
        "source": {"url": str(args.workdir / "repo")},
        "baseline": {"name": "baseline", "sha": shas["baseline"]},
        "candidates": [{"name": n, "sha": shas[n]} for n in ("a_a", "bad_norm")],
        "project": proj,
        "emulate": emulate,
    }
    t = time.monotonic()
    result = e2e.run_driver(args.workdir / "files", spec, args.workdir / "work", args.workdir / "driver.log")
    total = time.monotonic() - t
    print(f"\narm under emulation ({emulate['qemu']} -L {emulate['sysroot']}), {total:.0f} s in all:")
    print(
        f"  timings: build {result['timings'].get('build_s', 0):.0f} s, validate "
        f"{result['timings'].get('validate_s', 0):.0f} s, bench {result['timings'].get('bench_s', 0):.0f} s, "
        f"simulate {result['timings'].get('simulate_s', 0):.0f} s"
    )
    for name, v in result["variants"].items():
        checks = (v.get("validation") or {}).get("checks") or []
        print(
            f"  {name:<9} {v['status']:<18} build {(v.get('build') or {}).get('seconds', 0):6.1f} s; "
            + "; ".join(f"{c['name']}: {'ok' if c['ok'] else 'FAIL'}" for c in checks)
        )
        for c in checks:
            if not c["ok"]:
                print("      " + c["detail"].strip().splitlines()[-1][:200])
    status = {n: v["status"] for n, v in result["variants"].items()}
    ok = (
        status == {"baseline": "ok", "a_a": "ok", "bad_norm": "validation_failed"}
        and bool(result.get("emulated"))
        and not any(v.get("pairs") or v.get("simulated") for v in result["variants"].values())
    )
    print(
        "PASS: felix's broken rms_norm caught under emulation; nothing timed or simulated"
        if ok
        else f"FAIL: {status}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
