"""One bench run of N candidates x (x86, arm) through the real worker, pipeline, benchmark stage (fan-out
plan, shards, merge, decision) and SkyPilotExecutor against the SDK double (tests/sky_double.py). Each VM
job's duration comes from per-variant times drawn around the README's measured llama.cpp figures, on a
clock that runs `SCALE` times faster than the wall (VM seconds and dollars are counted on that clock).
Shared by tests/test_fanout.py (small runs) and scripts/fanout_plan.py (prints the figures).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from concurrent_bench import REPO, LocalForge, make_origin
from sky_double import Attempt, FakeSky, executor

from bot.experiments import shards
from bot.pipeline import status_marker

SCALE = 60.0  # simulated seconds per wall second (default): a 20-minute VM job lasts 20 s
BASE_CYCLES = {"x86": 536_253_236, "arm": 611_482_117}  # the baseline's estimated cycles (deterministic)
METRICS = ("attn_ms", "softmax_ms", "matmul_ms")

MEASURED = shards.MEASURED  # the README's figures: the double draws each variant's time from these ranges
PAIRS = tuple(int(x) for x in shards.LOOKS)


def measured_times() -> shards.VariantTimes:
    """The plan's per-variant times (the middle of each measured range)."""
    return shards.VariantTimes()


def truth(name: str) -> tuple[float, float]:
    """(simulated speedup, wall speedup) of a candidate, fixed by its name: every 5th faster by 5%, every 7th
    slower by 5%, the rest unchanged."""
    i = int(name.rsplit("-", 1)[-1])
    if i % 5 == 0:
        return 1.05, 1.05
    if i % 7 == 3:
        return 0.95, 0.95
    return 1.0, 1.0


def _rng(*parts: Any) -> random.Random:
    return random.Random(int(hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:12], 16))


def fake_result(spec: dict[str, Any], seconds: dict[str, float]) -> dict[str, Any]:
    """The driver's result for one shard's spec: the baseline's simulated cost (the same on every VM of an
    arch: same image and compiler), each candidate's from `truth`, paired samples whose median ratio is the
    candidate's wall truth (tiny deterministic noise)."""
    arch = spec["arch"]
    base = BASE_CYCLES[arch]
    looks = list(PAIRS)
    variants: dict[str, Any] = {
        "baseline": {
            "status": "ok",
            "build": {"ok": True, "seconds": seconds["baseline_build"]},
            "validation": {"ok": True, "checks": []},
            "simulated": {"ok": True, "estimated_cycles": base, "instructions": base // 2, "seconds": 5.4},
        }
    }
    for c in spec.get("candidates") or []:
        sim, wall = truth(c["name"])
        rng = _rng(arch, c["name"])
        n = looks[0] if wall != 1.0 else looks[-1]
        pairs = []
        for k in range(n):
            b = 10.0 * (1 + rng.uniform(-0.002, 0.002))
            pairs.append(
                {
                    "first": "baseline" if k % 2 else "candidate",
                    "base": {m: b for m in METRICS},
                    "cand": {m: b / wall * (1 + rng.uniform(-0.002, 0.002)) for m in METRICS},
                }
            )
        variants[c["name"]] = {
            "status": "ok",
            "build": {"ok": True, "seconds": seconds[c["name"]]},
            "validation": {"ok": True, "checks": []},
            "simulated": {
                "ok": True,
                "estimated_cycles": round(base / sim),
                "instructions": round(base / sim) // 2,
                "seconds": 5.4,
            },
            "pairs": pairs,
            "stop": {
                "pairs": n,
                "reason": "max_pairs" if wall == 1.0 else ("faster" if wall > 1 else "slower"),
            },
        }
    return {
        "schema": 1,
        "arch": arch,
        "variants": variants,
        "complete": True,
        "errors": [],
        "simulation": {"available": True, "tool": "cachegrind (double)", "isa": "portable"},
        "paired": {"looks": looks, "max_pairs": looks[-1], "family": int(spec.get("family") or 1)},
        "timings": {"total_s": sum(seconds.values())},
    }


def job_seconds(spec: dict[str, Any], fresh: bool, attempt: int) -> tuple[float, dict[str, float]]:
    """Simulated seconds of one shard's job (drawn around the measured figures) and per-variant build s."""
    key = (spec.get("shard") or {}).get("key") or spec["arch"]
    rng = _rng(key, attempt, fresh, [c["name"] for c in spec.get("candidates") or []])

    def draw(what: str) -> float:
        lo, hi = MEASURED[what]
        return rng.uniform(lo, hi)

    builds = {"baseline_build": draw("cold_build_s") if fresh else draw("warm_build_s")}
    total = (draw("setup_s") if fresh else 0.0) + builds["baseline_build"]
    total += draw("validate_s") + draw("simulate_s")
    for c in spec.get("candidates") or []:
        builds[c["name"]] = draw("build_s")
        _, wall = truth(c["name"])
        pairs = PAIRS[0] if wall != 1.0 else rng.choice(PAIRS)
        total += builds[c["name"]] + draw("validate_s") + draw("simulate_s") + pairs * draw("pair_s")
    return total, builds


class ScaledClock:
    """Wall time sped up `scale` times from its start (the executor's VM seconds are counted on it)."""

    def __init__(self, scale: float = SCALE) -> None:
        self.t0, self.scale = time.time(), scale

    def __call__(self) -> float:
        return self.t0 + (time.time() - self.t0) * self.scale


@dataclass
class FanOut:
    wall_s: float  # simulated seconds from the run's start to its end
    state: str
    plan: dict[str, Any]
    decision: dict[str, Any] | None
    results: dict[str, Any]
    usage_usd: float
    vm_seconds: dict[str, float]  # per batch entry (shard), the executor's count
    longest_shard_s: float
    launches: list[str]
    alive_after: set[str]
    killed: list[str] = field(default_factory=list)
    comment: str = ""
    comment_at_launch: str = ""
    store: Any = None
    fake: Any = None


def run_fanout(
    root: Path,
    n_candidates: int,
    vms_per_arch: int | None,
    *,
    kill: set[str] = frozenset(),
    budget_usd: float = 50.0,
    arch_configs: dict[str, dict[str, Any]] | None = None,
    price: Any = "double",
    timeout: float = 300.0,
    scale: float = SCALE,
) -> FanOut:
    """One bench run of `n_candidates` on x86 + arm with `parallel.max_vms_per_arch` = `vms_per_arch`;
    `kill`: shard keys whose first VM dies mid-run (its partial result lost; retried on a fresh VM)."""
    from bot.config import ProjectConfig, Settings
    from bot.pipeline import Pipeline
    from bot.stages import DEFAULT_STAGES, render_status
    from bot.store import Store
    from bot.worker import Worker

    root.mkdir(parents=True, exist_ok=True)
    archs = arch_configs or {
        "x86": {"cloud": "aws", "instance_type": "fake.x86", "price_per_hour": 0.1785},
        "arm": {"cloud": "aws", "instance_type": "fake.arm", "price_per_hour": 0.145},
    }
    settings = Settings(
        database=str(root / "bot.db"),
        data_dir=str(root / "data"),
        executor="skypilot",
        architectures=archs,
        worker_poll_seconds=0.02,
        budget_usd=budget_usd,
        keep_warm_minutes=0,
    )
    store = Store(settings.db_path)
    origin, base, cands = make_origin(root, n_candidates)
    attempts: dict[str, int] = {}
    lock = threading.Lock()
    killed: list[str] = []

    forge = LocalForge(origin)
    at_launch: list[str] = []  # the status comment as it was when the first VM was launched

    def plan_for(cluster: str, task: Any) -> Attempt:
        if not at_launch:
            at_launch.append(forge.marked.get(status_marker(1), ""))
        spec = json.loads((Path(task.workdir) / "spec.json").read_text())
        key = (spec.get("shard") or {}).get("key") or spec["arch"]
        with lock:
            attempts[key] = attempts.get(key, 0) + 1
            n = attempts[key]
        fresh = n == 1 or key in killed
        seconds, builds = job_seconds(spec, fresh, n)
        if key in kill and n == 1:  # the VM dies halfway through its shard
            killed.append(key)
            return Attempt("die", partial_variants=1, seconds=seconds / 2 / scale)
        return Attempt("ok", seconds=seconds / scale, final=fake_result(spec, builds))

    fake = FakeSky({}, plan_for=plan_for)
    clock = ScaledClock(scale)
    kw: dict[str, Any] = {"clock": clock}
    if price != "double":
        kw["price"] = price
    else:
        kw["price"] = lambda arch, cfg: float(cfg.get("price_per_hour") or 0.0)
    ex = executor(root, fake, **kw)
    ex.poll_interval = 0.02

    def noop(ctx: Any) -> None:
        return None

    stages = {**DEFAULT_STAGES, "implementing": noop, "publishing": noop}
    pipeline = Pipeline(
        settings, store, forge, stages=stages, services={"executor": ex}, status_renderer=render_status
    )
    raw = yaml.safe_load((REPO / "examples" / "attention" / ".autoresearch.yml").read_text())
    raw["architectures"] = list(archs)
    raw["budget"]["usd"] = budget_usd
    raw["benchmark"].update({"min_pairs": PAIRS[0], "max_pairs": PAIRS[-1]})
    raw["parallel"] = {"max_vms_per_arch": vms_per_arch}
    project = ProjectConfig.from_dict(raw, list(archs)).to_dict()
    run = store.create_run("maria/llama.cpp", 23, "bench", "maria")
    store.put_artifact(run.id, "project", project)
    store.put_artifact(run.id, "baseline", {"branch": "main", "sha": base})
    store.put_artifact(
        run.id,
        "candidates",
        [{"name": f"cand-{i:02d}", "sha": sha, "source": "user"} for i, sha in enumerate(cands)],
    )
    worker = Worker(settings, store, pipeline, lease_seconds=60.0)
    start = clock()
    worker.start()
    try:
        deadline = time.monotonic() + timeout
        while store.get_run(run.id).state not in ("done", "failed", "cancelled"):
            if time.monotonic() > deadline:
                raise TimeoutError("the run did not finish")
            time.sleep(0.02)
        wall = clock() - start
    finally:
        worker.stop()
    exp = store.experiments(run.id)
    handle = exp[0]["handle"] if exp else None
    vm_s = ex.vm_seconds(handle) if handle else {}
    usage = store.usage_totals(run.id)["usd"]
    plan = store.get_artifact(run.id, "plan:main") or {}
    return FanOut(
        wall_s=wall,
        state=str(store.get_run(run.id).state),
        plan=plan,
        decision=store.get_artifact(run.id, "decision"),
        results=store.get_artifact(run.id, "results:main") or {},
        usage_usd=usage,
        vm_seconds=vm_s,
        longest_shard_s=max(vm_s.values(), default=0.0),
        launches=[c[1] for c in fake.calls if c[0] == "launch"],
        alive_after=set(fake.alive),
        killed=killed,
        comment=pipeline.forge.marked.get(status_marker(run.id), ""),
        comment_at_launch=at_launch[0] if at_launch else "",
        store=store,
        fake=fake,
    )


def verdicts(decision: dict[str, Any] | None) -> dict[tuple[str, str], str]:
    """(candidate, arch) -> verdict of the target metric's rows."""
    if not decision:
        return {}
    target = decision.get("target")
    return {(r["candidate"], r["arch"]): r["verdict"] for r in decision["rows"] if r["metric"] == target}


def within(a: float, b: float, rel: float) -> bool:
    return math.isclose(a, b, rel_tol=rel)
