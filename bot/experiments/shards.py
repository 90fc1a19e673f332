"""Fan-out: one wave's candidates split into shards, each shard on its own VM of the arch.

A shard is a batch entry keyed ``<arch>`` (shard 1) or ``<arch>.s<k>`` (shard k >= 2) whose spec holds the
baseline and its share of the candidates; the SkyPilot executor launches every entry of a batch as its own
cluster, in parallel (labels, autostop, retry on a fresh VM, teardown, VM seconds and price per entry), and
keeps each entry's cluster for the run's later batches, so shard k of wave 2 runs on shard k's warm VM.

Every wall pair is measured on one machine (a candidate and the baseline it is paired with share a shard).
The simulated tier compares a candidate with *a* baseline: across shards only once an A/A check of the
baseline's simulated cost between the shards agrees within ``AA_TOLERANCE`` (same image, compiler, flags);
otherwise each candidate is compared with its own shard's baseline and the merged result says so. The paired
design's Bonferroni family is the wave's candidate count in every shard (``spec["family"]``), so a candidate
meets the same stopping rule whichever shard it lands in.

The plan (``plan``) says, before anything is launched, how many shards x VMs x arch, and the minutes and
dollars expected from per-variant times (``VariantTimes``: measured figures) and the catalog price.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

AA_TOLERANCE = 1e-4  # 0.01%: the baseline's simulated cost on two shards must agree this closely
MAX_VMS_PER_ARCH = 8  # the default never asks for more VMs per arch than this
MIN_CANDIDATES_PER_SHARD = 4  # a VM's setup and cold baseline build are worth it from this many candidates
_SHARD = re.compile(r"^(?P<arch>.+)\.s(?P<k>\d+)$")


def shard_key(arch: str, k: int) -> str:
    """The batch entry of shard ``k`` (1-based) of ``arch``: shard 1 is the arch itself (its cluster is the
    run's cluster for the arch, as without fan-out)."""
    return arch if k <= 1 else f"{arch}.s{k}"


def arch_of(key: str) -> str:
    """The architecture of a batch entry (``x86.s3`` -> ``x86``; ``x86`` -> ``x86``)."""
    m = _SHARD.match(str(key))
    return m["arch"] if m else str(key)


def shard_index(key: str) -> int:
    m = _SHARD.match(str(key))
    return int(m["k"]) if m else 1


# Per-variant seconds as README measured them for the llama.cpp preset (2-core box, 2026-12-02:
# `scripts/llamacpp_simulate.py`, `demo --llama`), as (low, high); the plan uses the middle of each range.
MEASURED: dict[str, tuple[float, float]] = {
    "setup_s": (120.0, 120.0),  # provisioning + apt + bundle upload: NOT measured (no cloud here): assumed
    "cold_build_s": (247.0, 306.0),  # first native baseline build cold .. native + simulation ISA (demo)
    "warm_build_s": (33.0, 52.0),  # the baseline on a VM that built it before (ccache)
    "build_s": (0.7, 13.8),  # one-file candidate 0.4-7.4 s + its simulation build 0.3-6.4 s
    "validate_s": (
        6.0,
        10.0,
    ),  # greedy tokens + KLD: the demo's time outside build/simulate/bench per variant
    "simulate_s": (4.3, 6.5),  # cachegrind per variant: 4.3-8.9 s, mean 5.4 s
    "pair_s": (0.35, 0.43),  # 24 wall invocations (12 pairs) in 4.7 s
}
LOOKS = (10.0, 20.0, 30.0)  # the preset's paired design: min_pairs 10 .. rounds 10 x repetitions 3


def _mid(key: str) -> float:
    lo, hi = MEASURED[key]
    return (lo + hi) / 2.0


@dataclass(frozen=True)
class VariantTimes:
    """Seconds one VM spends, per phase (defaults: the middle of ``MEASURED``)."""

    setup_s: float = _mid("setup_s")  # once per fresh VM
    cold_build_s: float = _mid("cold_build_s")  # the baseline, native + simulation ISA, on a fresh VM
    warm_build_s: float = _mid("warm_build_s")  # the baseline on a warm VM (later waves)
    build_s: float = _mid("build_s")  # one candidate: incremental rebuild, native + simulation ISA
    validate_s: float = _mid("validate_s")  # one variant's checks
    simulate_s: float = _mid("simulate_s")  # one variant under cachegrind
    pair_s: float = _mid("pair_s")  # one wall pair (baseline + candidate invocation)
    pairs: float = sum(LOOKS) / len(LOOKS)  # wall pairs a candidate needs on average

    def candidate_s(self) -> float:
        return self.build_s + self.validate_s + self.simulate_s + self.pairs * self.pair_s

    def shard_s(self, n_candidates: int, *, warm: bool = False) -> float:
        """One shard's VM time: setup (fresh VM), the baseline's build, validation and simulation, then
        every candidate."""
        fixed = (
            (self.warm_build_s if warm else self.setup_s + self.cold_build_s)
            + self.validate_s
            + self.simulate_s
        )
        return fixed + n_candidates * self.candidate_s()

    @classmethod
    def from_result(cls, result: Mapping[str, Any], base: VariantTimes | None = None) -> VariantTimes:
        """Per-variant times measured by a driver result (its variants' build and simulation seconds, its
        pairs per second); what the result does not show keeps ``base``'s figure."""
        base = base or cls()
        variants = dict(result.get("variants") or {})
        timings = dict(result.get("timings") or {})
        builds = [
            float((v.get("build") or {}).get("seconds") or 0.0)
            for n, v in variants.items()
            if n != "baseline" and (v.get("build") or {}).get("ok")
        ]
        sims = [float((v.get("simulated") or {}).get("seconds") or 0.0) for v in variants.values()]
        sims = [s for s in sims if s > 0]
        pairs = [len(v.get("pairs") or []) for v in variants.values() if v.get("pairs")]
        got: dict[str, float] = {}
        if builds:
            got["build_s"] = sum(builds) / len(builds)
        if sims:
            got["simulate_s"] = sum(sims) / len(sims)
        if pairs and float(timings.get("bench_s") or 0.0) > 0:
            got["pair_s"] = float(timings["bench_s"]) / sum(pairs)
            got["pairs"] = sum(pairs) / len(pairs)
        if variants and float(timings.get("validate_s") or 0.0) > 0:
            got["validate_s"] = float(timings["validate_s"]) / len(variants)
        return cls(**{**asdict(base), **got})


def split(names: list[str], n_shards: int) -> list[list[str]]:
    """Candidates dealt round-robin into ``n_shards`` non-empty shards (order kept within a shard)."""
    n = max(1, min(int(n_shards), len(names))) if names else 1
    out: list[list[str]] = [[] for _ in range(n)]
    for i, name in enumerate(names):
        out[i % n].append(name)
    return out


def default_vms(
    n_candidates: int,
    budget_usd: float,
    usd_per_hour: Mapping[str, float],
    times: VariantTimes | None = None,
    *,
    cap: int = MAX_VMS_PER_ARCH,
) -> int:
    """VMs per arch when the project does not say: one per ``MIN_CANDIDATES_PER_SHARD`` candidates, at most
    ``cap``, and no more than the budget pays for (each VM adds a setup and a baseline)."""
    times = times or VariantTimes()
    want = max(1, min(cap, math.ceil(max(0, n_candidates) / MIN_CANDIDATES_PER_SHARD)))
    per_hour = sum(float(p or 0.0) for p in usd_per_hour.values())
    for v in range(want, 1, -1):
        shards = split([str(i) for i in range(n_candidates)], v)
        usd = len(shards) * max(times.shard_s(len(s)) for s in shards) / 3600.0 * per_hour
        if usd <= budget_usd:
            return v
    return 1


@dataclass
class ShardPlan:
    key: str
    arch: str
    candidates: list[str]
    seconds: float
    usd: float


@dataclass
class Plan:
    shards: list[ShardPlan]
    vms_per_arch: dict[str, int]
    times: VariantTimes
    prices: dict[str, float]
    notes: list[str] = field(default_factory=list)

    @property
    def minutes(self) -> float:
        """Expected wall minutes: the longest shard (every shard runs at once)."""
        return max((s.seconds for s in self.shards), default=0.0) / 60.0

    @property
    def usd(self) -> float:
        return math.fsum(s.usd for s in self.shards)

    def keys(self) -> list[str]:
        return [s.key for s in self.shards]

    def by_key(self) -> dict[str, ShardPlan]:
        return {s.key: s for s in self.shards}

    def to_dict(self) -> dict[str, Any]:
        return {
            "shards": [asdict(s) for s in self.shards],
            "vms_per_arch": dict(self.vms_per_arch),
            "times": asdict(self.times),
            "prices": dict(self.prices),
            "minutes": self.minutes,
            "usd": self.usd,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        return cls(
            shards=[ShardPlan(**s) for s in d.get("shards") or []],
            vms_per_arch={k: int(v) for k, v in (d.get("vms_per_arch") or {}).items()},
            times=VariantTimes(**(d.get("times") or {})),
            prices={k: float(v) for k, v in (d.get("prices") or {}).items()},
            notes=list(d.get("notes") or []),
        )


def plan(
    candidates: list[str],
    archs: list[str],
    vms_per_arch: int | Mapping[str, int],
    prices: Mapping[str, float],
    times: VariantTimes | None = None,
    *,
    warm: Iterable[str] = (),
) -> Plan:
    """Shards x VMs x arch with the minutes and dollars each is expected to take (``warm``: batch entries
    whose VM is already up, no setup and a warm baseline build)."""
    times = times or VariantTimes()
    warm = set(warm)
    shards: list[ShardPlan] = []
    vms: dict[str, int] = {}
    for arch in archs:
        want = vms_per_arch.get(arch, 1) if isinstance(vms_per_arch, Mapping) else vms_per_arch
        parts = split(list(candidates), max(1, int(want)))
        vms[arch] = len(parts)
        for k, names in enumerate(parts, start=1):
            key = shard_key(arch, k)
            shards.append(ShardPlan(key, arch, names, times.shard_s(len(names), warm=key in warm), 0.0))
    # every VM is held until the batch's longest shard is done (the executor keeps it for the run's next
    # batch, or tears it down when the run ends): it is paid for that long
    held = max((s.seconds for s in shards), default=0.0)
    for s in shards:
        s.usd = held / 3600.0 * float(prices.get(s.arch) or 0.0)
    notes = (
        [f"each VM is paid until the longest shard is done ({held / 60.0:.1f} min)"]
        if len(shards) > 1
        else []
    )
    return Plan(shards, vms, times, {a: float(prices.get(a) or 0.0) for a in archs}, notes)


def shard_specs(specs: Mapping[str, Mapping[str, Any]], the_plan: Plan) -> dict[str, dict[str, Any]]:
    """Per batch entry, the arch's spec with the shard's candidates (the baseline in every shard), the
    wave's candidate count as the paired design's family, and the shard's identity."""
    out: dict[str, dict[str, Any]] = {}
    for s in the_plan.shards:
        spec = dict(specs[s.arch])
        wanted = set(s.candidates)
        spec["candidates"] = [c for c in spec.get("candidates") or [] if c["name"] in wanted]
        spec["family"] = max(1, len(specs[s.arch].get("candidates") or []))
        spec["shard"] = {"key": s.key, "index": shard_index(s.key), "of": the_plan.vms_per_arch[s.arch]}
        out[s.key] = spec
    return out


def _cycles(result: Mapping[str, Any] | None) -> int | None:
    rec = ((result or {}).get("variants") or {}).get("baseline", {}).get("simulated") or {}
    return int(rec["estimated_cycles"]) if rec.get("ok") and rec.get("estimated_cycles") else None


def aa_check(results: Mapping[str, Mapping[str, Any]], tolerance: float = AA_TOLERANCE) -> dict[str, Any]:
    """The baseline's simulated cost on each shard of one arch, and whether they agree within
    ``tolerance`` (relative spread max/min - 1)."""
    cycles = {k: _cycles(r) for k, r in results.items()}
    known = {k: c for k, c in cycles.items() if c}
    if len(known) < 2:
        return {"cycles": cycles, "spread": 0.0, "ok": len(results) <= 1 or len(known) == len(results)}
    spread = max(known.values()) / min(known.values()) - 1.0
    return {"cycles": cycles, "spread": spread, "ok": spread <= tolerance and len(known) == len(results)}


def merge(
    results: Mapping[str, Mapping[str, Any]], the_plan: Plan | None = None, tolerance: float = AA_TOLERANCE
) -> dict[str, dict[str, Any]]:
    """{arch: one result} from {batch entry: result}. Shard 1's result (or the first one back) carries the
    baseline; every candidate keeps the variant record its shard measured (wall pairs from its VM). When the
    A/A check fails, each candidate's simulated figure is compared with its own shard's baseline
    (``simulated_baseline`` in the variant) and the result says so; a shard that returned nothing is named in
    ``errors`` with its candidates (never silently dropped)."""
    by_arch: dict[str, dict[str, Mapping[str, Any]]] = {}
    for key in sorted(results, key=shard_index):
        by_arch.setdefault(arch_of(key), {})[key] = results[key]
    planned = the_plan.by_key() if the_plan else {}
    for sp in planned.values():
        by_arch.setdefault(sp.arch, {})
    out: dict[str, dict[str, Any]] = {}
    for arch, got in by_arch.items():
        keys = [k for k in planned if arch_of(k) == arch] or list(got)
        if not got:
            continue
        if len(keys) <= 1 and len(got) <= 1:  # one VM for the arch: its result as it is
            out[arch] = dict(next(iter(got.values())))
            continue
        head_key = next(iter(got))
        merged = dict(got[head_key])
        merged["variants"] = {"baseline": dict((merged.get("variants") or {}).get("baseline") or {})}
        merged["errors"] = list(merged.get("errors") or [])
        aa = aa_check(got, tolerance)
        shards_info = []
        for key in keys:
            res = got.get(key)
            names = planned[key].candidates if key in planned else []
            if res is None:
                merged["errors"].append(
                    f"shard {key} (candidates {', '.join(names) or '?'}) produced no result, after its retry "
                    "on a fresh VM"
                )
                merged["complete"] = False
                shards_info.append({"key": key, "candidates": names, "returned": False})
                continue
            base_sim = ((res.get("variants") or {}).get("baseline") or {}).get("simulated")
            for name, v in (res.get("variants") or {}).items():
                if name == "baseline":
                    continue
                v = dict(v)
                v["shard"] = key
                if not aa["ok"] and key != head_key and base_sim:
                    v["simulated_baseline"] = base_sim  # compared within its shard
                merged["variants"][name] = v
            if res.get("complete") is False:
                merged["complete"] = False
            merged["errors"] += [f"{key}: {e}" for e in res.get("errors") or [] if key != head_key]
            shards_info.append(
                {
                    "key": key,
                    "candidates": [n for n in (res.get("variants") or {}) if n != "baseline"] or names,
                    "returned": True,
                    "baseline_cycles": aa["cycles"].get(key),
                    "timings": dict(res.get("timings") or {}),
                }
            )
        merged["shards"] = {
            "entries": shards_info,
            "aa": aa,
            "tolerance": tolerance,
            "simulated_across_shards": bool(aa["ok"]),
        }
        if not aa["ok"] and len(got) > 1:
            merged["errors"].append(
                "the baseline's simulated cost differs between shards by "
                f"{aa['spread'] * 100:.4f}% (over {tolerance * 100:.2f}%): each candidate's simulated cost "
                "is compared with its own shard's baseline only"
            )
        out[arch] = merged
    return out
