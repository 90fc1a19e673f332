#!/usr/bin/env python3
"""Fan-out figures: 30 candidates x (x86, arm) through the real worker, pipeline, benchmark stage and
SkyPilotExecutor against the SkyPilot SDK double, on 1 VM per arch and on 4, and on 4 with one shard's VM
killed mid-run.

    .venv/bin/python scripts/fanout_plan.py [--candidates 30] [--vms 4] [--scale 20]

Each VM job lasts what its variants take, drawn from the README's measured llama.cpp figures
(bot/experiments/shards.py MEASURED: cold/incremental builds, validation, simulation, wall pairs), on a clock
`--scale` times faster than the wall (the bot's own seconds of overhead are scaled with it: over-counted). The
plan uses the middle of each measured range. Prints the plan (shards x VMs x arch, minutes, dollars) beside
what the double reports, and checks: the run ends within 1.3x its longest shard and within a third of the
1-VM time; the plan's minutes and dollars within 15% of the double's; no VM outlives the run; a killed shard
is retried on a fresh VM and the verdicts equal the run without the kill. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fanout_bench import run_fanout, verdicts  # noqa: E402

from bot.experiments import shards  # noqa: E402


def show(label: str, out) -> None:  # noqa: ANN001
    plan = out.plan
    print(f"\n{label}: state {out.state}")
    vms = ", ".join(f"{a} x{n}" for a, n in plan["vms_per_arch"].items())
    print(
        f"  plan:   {len(plan['shards'])} VMs ({vms}), "
        f"{plan['minutes']:.1f} min (longest shard), ${plan['usd']:.3f}"
    )
    print(
        f"  double: run {out.wall_s / 60:.1f} min, longest VM {out.longest_shard_s / 60:.1f} min, "
        f"{len(out.launches)} launches, charged ${out.usage_usd:.3f}, VMs left up: {len(out.alive_after)}"
    )
    for s in plan["shards"]:
        got = out.vm_seconds.get(s["key"], 0.0)
        print(
            f"    {s['key']:<8} {len(s['candidates']):>2} candidates: plan {s['seconds'] / 60:5.1f} min, "
            f"double {got / 60:5.1f} min"
        )


def plan_s(out, key: str) -> float:  # noqa: ANN001
    return next(s["seconds"] for s in out.plan["shards"] if s["key"] == key)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, default=30)
    ap.add_argument("--vms", type=int, default=4)
    ap.add_argument("--scale", type=float, default=10.0, help="simulated seconds per wall second")
    args = ap.parse_args()
    t = shards.VariantTimes()
    print(
        "per-variant seconds (README's measured llama.cpp figures; the plan uses the middle of each range):"
    )
    for k, (lo, hi) in shards.MEASURED.items():
        print(f"  {k:<13} {lo:6.1f} .. {hi:6.1f}  plan {getattr(t, k):6.2f}")
    print(f"  pairs per candidate: looks {shards.LOOKS}, plan {t.pairs:.0f}")
    print(f"  one candidate {t.candidate_s():.1f} s; a fresh VM's fixed cost {t.shard_s(0):.1f} s")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fanout-") as tmp:
        one = run_fanout(Path(tmp) / "one", args.candidates, 1, scale=args.scale, timeout=3600)
        fan = run_fanout(Path(tmp) / "fan", args.candidates, args.vms, scale=args.scale, timeout=3600)
        victim = shards.shard_key("x86", min(3, args.vms))
        kill = run_fanout(
            Path(tmp) / "kill", args.candidates, args.vms, kill={victim}, scale=args.scale, timeout=3600
        )
    show("1 VM per arch", one)
    show(f"{args.vms} VMs per arch", fan)
    show(f"{args.vms} VMs per arch, {victim}'s first VM killed mid-run", kill)
    checks = [
        (
            f"{args.vms} VMs: run / longest shard = {fan.wall_s / fan.longest_shard_s:.3f} (<= 1.3)",
            fan.wall_s <= 1.3 * fan.longest_shard_s,
        ),
        (
            f"{args.vms} VMs / 1 VM run time = {fan.wall_s / one.wall_s:.3f} (<= 0.333)",
            fan.wall_s <= one.wall_s / 3,
        ),
        (
            f"plan minutes {fan.plan['minutes']:.1f} vs the double's run {fan.wall_s / 60:.1f} "
            f"({fan.plan['minutes'] * 60 / fan.wall_s - 1:+.1%}, within 15%)",
            abs(fan.plan["minutes"] * 60 / fan.wall_s - 1) <= 0.15,
        ),
        (
            f"plan dollars ${fan.plan['usd']:.3f} vs charged ${fan.usage_usd:.3f} "
            f"({fan.plan['usd'] / fan.usage_usd - 1:+.1%}, within 15%)",
            abs(fan.plan["usd"] / fan.usage_usd - 1) <= 0.15,
        ),
        (
            f"the killed shard's VM time covers both its VMs: {kill.vm_seconds.get(victim, 0) / 60:.1f} min "
            f"(> 1.3 x its plan {plan_s(kill, victim) / 60:.1f} min)",
            kill.vm_seconds.get(victim, 0) > 1.3 * plan_s(kill, victim),
        ),
        (
            "no VM outlives the run (1 VM, fan-out, kill)",
            not (one.alive_after or fan.alive_after or kill.alive_after),
        ),
        (
            f"killed shard {kill.killed} retried on a fresh VM ({len(kill.launches)} launches vs "
            f"{len(fan.launches)})",
            kill.killed == [victim] and len(kill.launches) == len(fan.launches) + 1,
        ),
        (
            f"verdicts equal: 1 VM, {args.vms} VMs and after the kill ({len(verdicts(one.decision))} rows)",
            verdicts(one.decision) == verdicts(fan.decision) == verdicts(kill.decision) != {},
        ),
        (
            "A/A across shards: baseline simulated cost agrees within 0.01% on every arch",
            all(r["shards"]["simulated_across_shards"] for r in fan.results.values()),
        ),
    ]
    names = [f"c{i}" for i in range(args.candidates)]
    keys = [shards.shard_key(a, k) for a in ("x86", "arm") for k in range(1, args.vms + 1)]
    warm_one = shards.plan(names, ["x86"], 1, {"x86": 1.0}, warm=["x86"]).minutes
    warm_fan = shards.plan(names, ["x86"], args.vms, {"x86": 1.0}, warm=keys).minutes
    print(
        f"\n(plan only, not run: on VMs a previous wave left warm, no setup and a warm baseline build, "
        f"{args.vms} VMs take {warm_fan:.1f} min vs {warm_one:.1f} min on one: {warm_fan / warm_one:.3f}; "
        f"cold, each fresh VM first spends {t.shard_s(0):.0f} s on setup and the baseline, "
        f"{t.shard_s(0) / t.candidate_s():.1f} candidates' worth)"
    )
    print()
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    winners = (fan.decision or {}).get("winners") or []
    print(f"\nwinners: {', '.join(winners) or 'none'}; script {time.monotonic() - started:.0f} s")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
