"""Fan-out (bot/experiments/shards.py) and the one pricing function: shards planned, run on parallel VMs of
the SkyPilot double through the real pipeline, merged, A/A-checked and decided; the real driver's A/A
across two local batches standing in for two VMs; `infra:` and `any_of` resources priced at the catalog
price."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from engine_helpers import make_repo, project, spec
from fanout_bench import run_fanout, verdicts
from sky_catalog_fixture import isolated_env, seed_catalog

from bot.config import ConfigError, ProjectConfig
from bot.experiments import shards, tasks
from bot.experiments.executors import Batch, LocalExecutor
from bot.experiments.stats import decide

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------- planning (pure)


def test_split_keys_and_plan_minutes_dollars() -> None:
    names = [f"c{i}" for i in range(30)]
    parts = shards.split(names, 4)
    assert [len(p) for p in parts] == [8, 8, 7, 7] and sorted(sum(parts, [])) == sorted(names)
    assert shards.split(names[:2], 4) == [["c0"], ["c1"]]  # never an empty shard
    assert (
        shards.arch_of("x86.s3") == "x86"
        and shards.arch_of("arm") == "arm"
        and shards.shard_index("x86") == 1
    )
    t = shards.VariantTimes()
    p = shards.plan(names, ["x86", "arm"], 4, {"x86": 0.1785, "arm": 0.145}, t)
    assert p.keys() == ["x86", "x86.s2", "x86.s3", "x86.s4", "arm", "arm.s2", "arm.s3", "arm.s4"]
    assert p.minutes * 60 == pytest.approx(t.shard_s(8))
    # every VM is paid until the longest shard is done
    assert p.usd == pytest.approx(sum(t.shard_s(8) / 3600 * p.prices[s.arch] for s in p.shards))
    assert shards.Plan.from_dict(json.loads(json.dumps(p.to_dict()))).to_dict() == p.to_dict()
    # warm VMs (a later wave on the same shards) skip setup and the cold build
    assert shards.plan(names, ["x86"], 4, {"x86": 1.0}, t, warm=["x86"]).shards[0].seconds < t.shard_s(8)


def test_default_vms_follow_candidates_and_budget() -> None:
    prices = {"x86": 0.1785, "arm": 0.145}
    assert shards.default_vms(1, 20.0, prices) == 1
    assert shards.default_vms(30, 20.0, prices) == 8  # one VM per 4 candidates, at most 8
    assert shards.default_vms(30, 0.25, prices) < 8  # a small budget buys fewer setups and baselines
    assert shards.default_vms(30, 0.0, prices) == 1


def test_parallel_setting_is_validated() -> None:
    import yaml

    raw = yaml.safe_load((REPO / "examples" / "attention" / ".autoresearch.yml").read_text())
    assert ProjectConfig.from_dict(raw, ["x86", "arm"]).max_vms_per_arch is None
    assert ProjectConfig.from_dict({**raw, "parallel": {"max_vms_per_arch": 4}}).max_vms_per_arch == 4
    for bad in (0, "many"):
        with pytest.raises(ConfigError, match="parallel.max_vms_per_arch"):
            ProjectConfig.from_dict({**raw, "parallel": {"max_vms_per_arch": bad}})


def test_merge_compares_within_a_shard_when_the_baselines_disagree() -> None:
    def res(base: int, cands: dict[str, int]) -> dict:
        sim = {"baseline": base, **cands}
        return {
            "arch": "x86",
            "complete": True,
            "errors": [],
            "variants": {
                n: {"status": "ok", "simulated": {"ok": True, "estimated_cycles": c}} for n, c in sim.items()
            },
        }

    p = shards.plan(["a", "b"], ["x86"], 2, {"x86": 0.1})
    agree = shards.merge(
        {"x86": res(1_000_000, {"a": 900_000}), "x86.s2": res(1_000_050, {"b": 1_000_000})}, p
    )
    assert (
        agree["x86"]["shards"]["simulated_across_shards"]
        and "simulated_baseline" not in agree["x86"]["variants"]["b"]
    )
    off = shards.merge({"x86": res(1_000_000, {"a": 900_000}), "x86.s2": res(1_100_000, {"b": 1_100_000})}, p)
    assert not off["x86"]["shards"]["simulated_across_shards"]
    assert off["x86"]["variants"]["b"]["simulated_baseline"]["estimated_cycles"] == 1_100_000
    assert any("own shard's baseline" in e for e in off["x86"]["errors"])
    lost = shards.merge({"x86": res(1_000_000, {"a": 900_000})}, p)
    assert lost["x86"]["complete"] is False and any(
        "x86.s2 (candidates b)" in e for e in lost["x86"]["errors"]
    )


def test_shard_tasks_are_labelled_and_any_of_prices_never_reach_skypilot(tmp_path: Path) -> None:
    p = shards.plan(["a", "b", "c"], ["x86"], 2, {"x86": 0.1})
    base = {
        "schema": 1,
        "run_id": 5,
        "arch": "x86",
        "source": {"bundle": "repo.bundle"},
        "baseline": {"name": "baseline", "sha": "0" * 40},
        "candidates": [{"name": n, "sha": "1" * 40} for n in "abc"],
        "project": {"preset": "generic"},
    }
    specs = shards.shard_specs({"x86": base}, p)
    assert [c["name"] for c in specs["x86.s2"]["candidates"]] == ["b"] and specs["x86.s2"]["family"] == 3
    cfg = {
        "infra": "aws/us-east-1",
        "any_of": [{"instance_type": "c7i.xlarge", "price_per_hour": 0.2}, {"instance_type": "m7i.xlarge"}],
        "price_per_hour": 0.3,
    }
    task = tasks.render_task(specs["x86.s2"], cfg, tmp_path)
    res = task["resources"]
    assert res["labels"]["autoresearch-shard"] == "x86-s2" and res["labels"]["autoresearch-arch"] == "x86"
    assert "price_per_hour" not in json.dumps(res) and res["any_of"][0] == {"instance_type": "c7i.xlarge"}


# ---------------------------------------------------------------------- the one pricing function (catalog)

PRICED_RUN = """
import json, sys
sys.path.insert(0, "tests")
from pathlib import Path
from fanout_bench import run_fanout
from bot.experiments.skypilot_exec import default_price
archs = {
    "x86": {"infra": "aws/us-east-1", "instance_type": "c7i.xlarge"},
    "arm": {"infra": "aws/us-east-1",
            "any_of": [{"instance_type": "c7g.xlarge", "price_per_hour": 0.01},
                       {"instance_type": "c7g.xlarge"}]},
}
root = Path(sys.argv[1])
out = run_fanout(root / "ok", 2, 1, arch_configs=archs, price=default_price, scale=200)
events = [dict(e) for e in out.store.conn.execute("SELECT kind, message FROM run_events")]
usage = [dict(zip(("usd", "detail"), u)) for u in out.store.conn.execute("SELECT usd, detail FROM usage")]
tasks = {p.name: json.loads(p.read_text()) for p in (root / "ok" / "handles").glob("*/*.task.json")}
poor = run_fanout(root / "poor", 2, 1, arch_configs=archs, price=default_price, budget_usd=0.001, scale=200)
print(json.dumps({"state": out.state, "plan": out.plan, "events": events, "usage": usage, "tasks": tasks,
                  "vm_seconds": out.vm_seconds, "poor": poor.state, "poor_launches": poor.launches,
                  "poor_failure": poor.store.get_artifact(1, "failure")}))
"""


def test_infra_and_any_of_runs_are_estimated_charged_and_stopped_at_the_catalog_price(tmp_path: Path) -> None:
    seed_catalog(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", PRICED_RUN, str(tmp_path)],
        cwd=REPO,
        env=isolated_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["state"] == "done"
    # estimate: the plan at the catalog's prices (x86 c7i.xlarge 0.1785; arm: the dearest alternative)
    assert out["plan"]["prices"] == {"x86": 0.1785, "arm": 0.145}
    budget = [e["message"] for e in out["events"] if e["kind"] == "budget"]
    assert budget and f"estimated ${out['plan']['usd']:.2f}" in budget[0] and out["plan"]["usd"] > 0
    # charge: every VM second at the same price
    for arch, price in (("x86", 0.1785), ("arm", 0.145)):
        rows = [u for u in out["usage"] if f"/{arch}:" in u["detail"] or f"{arch} " in u["detail"]]
        assert rows and all(f"${price}/h" in u["detail"] for u in rows if "$" in u["detail"])
        assert sum(u["usd"] for u in rows) == pytest.approx(out["vm_seconds"][arch] / 3600 * price, rel=0.02)
    # an alternative's price_per_hour never reaches SkyPilot
    assert out["tasks"] and all("price_per_hour" not in json.dumps(t) for t in out["tasks"].values())
    # budget: stopped before any launch at the same price
    assert out["poor"] == "failed" and out["poor_launches"] == []
    assert "budget would be exceeded" in out["poor_failure"]["message"]


# ---------------------------------------------------------------------- fan-out on the SkyPilot double


def test_a_wave_fans_out_over_parallel_vms_and_a_killed_shard_is_retried(tmp_path: Path) -> None:
    one = run_fanout(tmp_path / "one", 6, 1, scale=400)
    fan = run_fanout(tmp_path / "fan", 6, 3, scale=400)
    kill = run_fanout(tmp_path / "kill", 6, 3, kill={"arm.s2"}, scale=400)
    for out in (one, fan, kill):
        assert out.state == "done" and out.alive_after == set()  # no VM outlives the run
    assert len(one.launches) == 2 and len(fan.launches) == 6 and len(kill.launches) == 7
    assert sorted(fan.vm_seconds) == ["arm", "arm.s2", "arm.s3", "x86", "x86.s2", "x86.s3"]
    assert kill.killed == ["arm.s2"]
    # every candidate on both archs, with the verdicts of the one-VM run (also after the kill)
    assert len(verdicts(one.decision)) == 12
    assert verdicts(fan.decision) == verdicts(one.decision) == verdicts(kill.decision)
    assert {v for (c, _), v in verdicts(one.decision).items() if c == "cand-00"} == {"faster"}
    for out in (fan, kill):
        for arch in ("x86", "arm"):
            info = out.results[arch]["shards"]
            assert info["simulated_across_shards"] and info["aa"]["spread"] <= shards.AA_TOLERANCE
            assert {e["key"] for e in info["entries"] if e["returned"]} == {
                arch,
                f"{arch}.s2",
                f"{arch}.s3",
            }
            # every wall pair of a candidate was measured on the VM of its shard
            for name, v in out.results[arch]["variants"].items():
                if name != "baseline":
                    assert v["shard"] in {e["key"] for e in info["entries"] if name in e["candidates"]}
    assert "**Plan for `main`:** 6 shards (x86: 3 VMs, arm: 3 VMs)" in fan.comment and "actual" in fan.comment
    assert "A/A across its shards" in fan.comment
    # the plan was on the issue before the first VM was launched (the actuals come after the run)
    assert "**Plan for `main`:** 6 shards" in fan.comment_at_launch and "actual" not in fan.comment_at_launch
    assert fan.plan["usd"] > 0 and fan.usage_usd > 0


# ---------------------------------------------------------------------- A/A across shards on the real driver


def _run_local(tmp: Path, specs: dict, bundle: Path) -> dict:
    ex = LocalExecutor(tmp / "runs")
    handle = ex.submit(
        Batch(
            run_id=9,
            specs=specs,
            bundle=bundle,
            arch_configs={k: {"cloud": "aws", "instance_type": "c7i.xlarge"} for k in specs},
        )
    )
    deadline = time.monotonic() + 900
    while ex.poll(handle) == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ex.poll(handle) == "done", ex.logs(handle)[-3000:]
    return ex.collect(handle)


@pytest.mark.timeout(1800)  # three local batches, each waiting for the machine-wide benchmark lock
def test_aa_across_two_local_shards_on_the_real_driver(tmp_path: Path) -> None:
    """Two local batches stand in for two VMs: the baseline's simulated cost agrees within 0.01% between
    them, and the candidates split over the two shards get the verdicts they get in one shard."""
    repo = tmp_path / "repo"
    shas = make_repo(repo)
    names = ["aa", "slow", "broken", "nobuild"]
    bundle = tasks.make_bundle(repo, list(shas.values()), tmp_path / "repo.bundle")
    proj = project(rounds=2, repetitions=2, min_pairs=2)
    proj["architectures"] = ["x86"]
    whole = spec(shas, names, proj)
    one = _run_local(tmp_path / "s9", {"x86": whole}, bundle)
    base = one["x86"]["variants"]["baseline"]
    assert base["status"] == "ok", (base.get("build") or {}).get("log_tail") or base
    if not (one["x86"].get("simulation") or {}).get("available"):
        pytest.skip(f"simulated tier unavailable: {one['x86'].get('simulation')}")
    plan = shards.plan(names, ["x86"], 2, {"x86": 0.0})
    # one local batch per shard, each at the same path as a VM's workdir would be (`<batch>/x86`): cachegrind
    # sees the path (argv, environment), and a longer one shifts the simulated cost by ~1e-4
    split = {
        key: _run_local(tmp_path / f"s{i}", {"x86": s}, bundle)["x86"]
        for i, (key, s) in enumerate(shards.shard_specs({"x86": whole}, plan).items())
    }
    assert sorted(split) == ["x86", "x86.s2"]
    merged = shards.merge(split, plan)
    aa = merged["x86"]["shards"]["aa"]
    assert aa["ok"] and aa["spread"] <= shards.AA_TOLERANCE, aa
    one_base = one["x86"]["variants"]["baseline"]["simulated"]["estimated_cycles"]
    assert abs(aa["cycles"]["x86.s2"] / one_base - 1) <= shards.AA_TOLERANCE

    def target_verdicts(results: dict) -> dict:
        d = decide(results, proj, seed=1).to_dict()
        return {r["candidate"]: r["verdict"] for r in d["rows"] if r["metric"] == d["target"]}

    got, want = target_verdicts(merged), target_verdicts(one)
    assert got == want, (got, want)
    assert want["slow"] == "slower" and want["broken"] == "broken" and want["aa"] == "no_change"
