#!/usr/bin/env python3
"""Print the VM cost estimate of a benchmark run (default: 30 candidates on x86 + arm).

    python scripts/estimate_cost.py [--candidates 30] [--measure tests/fixtures/minibench]

Per-variant seconds (build + validate + all bench invocations) are either configured (--build-s,
--validate-s, --invocation-s) or measured by running the real driver once on the minibench fixture
(--measure; uses the driver's own `timings`). Prices come from SkyPilot's local catalog when present,
else the published on-demand us-east-1 prices given below (--x86-price/--arm-price).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.experiments.cost import estimate_run, quote_price  # noqa: E402

PUBLISHED = {"aws/c7i.xlarge": 0.1785, "aws/c7g.xlarge": 0.1450}  # AWS on-demand, us-east-1, Linux


def measure(fixture: Path, rounds: int, reps: int, warmup: int) -> dict[str, float]:
    """Run the real driver once (baseline + 1 candidate) and return per-variant seconds per phase."""
    import yaml

    sys.path.insert(0, str(fixture))
    from make_repo import make_repo

    work = Path(tempfile.mkdtemp(prefix="estimate-"))
    shas = make_repo(work / "repo", {"aa": {}})
    proj = yaml.safe_load((fixture / ".autoresearch.yml").read_text())
    proj["benchmark"].update(rounds=rounds, repetitions=reps, warmup=warmup)
    spec = {
        "schema": 1,
        "run_id": 0,
        "arch": "x86",
        "seed": 0,
        "source": {"url": str(work / "repo")},
        "baseline": {"name": "baseline", "sha": shas["baseline"]},
        "candidates": [{"name": "aa", "sha": shas["aa"]}],
        "project": proj,
    }
    (work / "spec.json").write_text(json.dumps(spec))
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "sky" / "driver.py"),
            "--spec",
            "spec.json",
            "--out",
            "result.json",
            "--workdir",
            "w",
        ],
        cwd=work,
        check=True,
        capture_output=True,
        timeout=600,
    )
    t = json.loads((work / "result.json").read_text())["timings"]
    return {k: float(t.get(k, 0.0)) / 2 for k in ("build_s", "validate_s", "bench_s")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument(
        "--build-s",
        type=float,
        default=60.0,
        help="per variant; assumed llama.cpp-sized ccache-warm incremental build on 4 vCPUs",
    )
    ap.add_argument("--validate-s", type=float, default=10.0, help="per variant")
    ap.add_argument("--invocation-s", type=float, default=2.0, help="one benchmark invocation")
    ap.add_argument("--setup-s", type=float, default=360.0, help="provision + apt setup + clone per VM")
    ap.add_argument("--measure", metavar="FIXTURE", help="measure build/validate/bench on this minibench")
    ap.add_argument("--x86", default="aws/c7i.xlarge")
    ap.add_argument("--arm", default="aws/c7g.xlarge")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--spot", action="store_true")
    args = ap.parse_args(argv)

    invocations = args.rounds * (args.reps + args.warmup)
    if args.measure:
        m = measure(Path(args.measure).resolve(), args.rounds, args.reps, args.warmup)
        build_s, validate_s, bench_s = m["build_s"], m["validate_s"], m["bench_s"]
        source = f"measured on this machine with the real driver ({args.measure})"
    else:
        build_s, validate_s, bench_s = args.build_s, args.validate_s, invocations * args.invocation_s
        source = "configured"
    per_variant = build_s + validate_s + bench_s
    prices, lines = {}, []
    for arch, key in (("x86", args.x86), ("arm", args.arm)):
        cloud, itype = key.split("/", 1)
        q = quote_price(cloud, itype, args.region, args.spot, configured=PUBLISHED)
        prices[arch] = q.usd_per_hour
        lines.append(
            f"  {arch}: {key} {args.region} {'spot' if args.spot else 'on-demand'} "
            f"${q.usd_per_hour if q.usd_per_hour is not None else float('nan'):.4f}/h ({q.source}"
            f"{'; ' + q.note if q.note else ''})"
        )
    est = estimate_run(args.candidates, ["x86", "arm"], per_variant, args.setup_s, prices)
    print(f"Cost estimate: {args.candidates} candidates + baseline, 2 architectures, one VM each")
    print(
        f"per variant ({source}): build {build_s:.1f}s + validate {validate_s:.1f}s + bench {bench_s:.1f}s "
        f"({args.rounds} rounds x ({args.reps} reps + {args.warmup} warmup) = {invocations} invocations)"
        f" = {per_variant:.1f}s"
    )
    print(f"per VM setup (provision, apt, clone): {args.setup_s:.0f}s")
    print("prices:")
    print("\n".join(lines))
    for arch in ("x86", "arm"):
        usd = est.per_arch_usd[arch]
        print(
            f"  {arch}: {est.per_arch_seconds[arch] / 60:.1f} VM-minutes -> "
            f"{f'${usd:.3f}' if usd is not None else 'unknown'}"
        )
    print(f"total: {f'${est.total_usd:.2f}' if est.total_usd is not None else 'unknown'}")
    print("assumptions: " + "; ".join(est.assumptions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
