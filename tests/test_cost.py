"""Prices from SkyPilot's real catalog code (hand-placed CSV under an isolated HOME), cost and budget."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sky_catalog_fixture import isolated_env, seed_catalog

from bot.experiments.cost import Budget, BudgetExceeded, estimate_run, experiment_cost

REPO = Path(__file__).resolve().parents[1]

QUOTES = """
import json
from bot.experiments.cost import quote_price
conf = {"aws/m5.large": 0.096}
out = {}
for args in [("aws", "c7i.xlarge", "us-east-1", False), ("aws", "c7g.xlarge", "us-east-1", False),
             ("aws", "c7g.xlarge", None, True), ("aws", "m5.large", "us-east-1", False),
             ("aws", "x9.huge", "us-east-1", False), ("gcp", "n2-standard-4", None, False)]:
    q = quote_price(*args, configured=conf)
    out["/".join(str(a) for a in args)] = [q.usd_per_hour, q.source, q.note]
print(json.dumps(out))
"""


def run_isolated(home: Path, code: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=isolated_env(home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_prices_from_seeded_skypilot_catalog(tmp_path: Path) -> None:
    catalog = seed_catalog(tmp_path)
    before = catalog.read_text()
    out = run_isolated(tmp_path, QUOTES)
    assert out["aws/c7i.xlarge/us-east-1/False"][:2] == [0.1785, "catalog"]
    assert out["aws/c7g.xlarge/us-east-1/False"][:2] == [0.145, "catalog"]
    assert out["aws/c7g.xlarge/None/True"][:2] == [0.0593, "catalog"]
    price, source, note = out["aws/m5.large/us-east-1/False"]
    assert (price, source) == (0.096, "configured") and "not in the SkyPilot catalog" in note
    price, source, note = out["aws/x9.huge/us-east-1/False"]
    assert price is None and source == "unknown" and "cost unknown" in note
    assert out["gcp/n2-standard-4/None/False"][:2] == [None, "unknown"]
    assert catalog.read_text() == before  # never replaced by a download
    assert not (tmp_path / ".sky" / "catalogs" / "v8" / ".meta" / "aws" / "vms.csv.md5").exists()


def test_without_catalog_uses_configured_prices(tmp_path: Path) -> None:
    out = run_isolated(tmp_path, QUOTES)
    price, source, note = out["aws/m5.large/us-east-1/False"]
    assert (price, source) == (0.096, "configured") and "no local SkyPilot catalog" in note
    assert out["aws/c7i.xlarge/us-east-1/False"][:2] == [None, "unknown"]
    assert not (tmp_path / ".sky" / "catalogs" / "v8" / "aws" / "vms.csv").exists()


def test_experiment_cost() -> None:
    assert experiment_cost(3600, 0.1785) == pytest.approx(0.1785)
    assert experiment_cost(600, 0.145) == pytest.approx(0.145 / 6)
    assert experiment_cost(10, None) is None
    with pytest.raises(ValueError):
        experiment_cost(-1, 1.0)


def test_estimate_run_two_archs() -> None:
    est = estimate_run(
        30, ["x86", "arm"], per_candidate_s=120, setup_s=300, prices={"x86": 0.1785, "arm": 0.145}
    )
    assert est.per_arch_seconds == {"x86": 300 + 31 * 120, "arm": 300 + 31 * 120}
    assert est.total_usd == pytest.approx((300 + 31 * 120) / 3600 * (0.1785 + 0.145))
    unknown = estimate_run(1, ["x86", "arm"], 10, 10, {"x86": 0.1785})
    assert unknown.total_usd is None and unknown.per_arch_seconds["x86"] == 60  # billing minimum
    assert any("arm: price unknown" in a for a in unknown.assumptions)


def test_budget_charge_remaining_exhausted_and_roundtrip() -> None:
    b = Budget(1.0)
    assert b.can_afford(0.6) and b.remaining == 1.0
    b.reserve("vm:x86", 0.6)
    assert b.charge("vm:x86", 0.6) == pytest.approx(0.4)
    assert not b.can_afford(0.5) and b.can_afford(0.4)
    with pytest.raises(BudgetExceeded, match="vm:arm"):
        b.reserve("vm:arm", 0.5)
    b.charge("llm", 0.5)  # actual spending is recorded even past the limit
    assert b.exhausted and b.remaining == 0.0 and not b.can_afford(None)
    again = Budget.from_dict(json.loads(json.dumps(b.to_dict())))
    assert again.total_spent == pytest.approx(1.1) and again.spent == {"vm:x86": 0.6, "llm": 0.5}
    with pytest.raises(ValueError):
        b.charge("x", -1)


RESOURCE_QUOTES = """
import json
from bot.experiments.cost import quote_resources
cases = {
    "infra": {"infra": "aws/us-east-1", "instance_type": "c7g.xlarge"},
    "infra_spot": {"infra": "aws/us-east-1/us-east-1a", "instance_type": "c7g.xlarge", "use_spot": True},
    "cloud": {"cloud": "aws", "region": "us-east-1", "instance_type": "c7i.xlarge"},
    "any_of": {"infra": "aws/us-east-1",
               "any_of": [{"instance_type": "c7g.xlarge"}, {"instance_type": "c7i.xlarge"}]},
    "any_of_unknown": {"infra": "aws",
                       "any_of": [{"instance_type": "c7g.xlarge"}, {"instance_type": "x9.huge"}]},
    "configured": {"infra": "aws", "instance_type": "x9.huge", "price_per_hour": 1.5},
    "k8s_free": {"infra": "k8s/my-context", "cpus": "4+", "price_per_hour": 0},
    "k8s_unknown": {"infra": "k8s", "cpus": "4+"},
    "no_cloud": {"instance_type": "c7i.xlarge"},
}
print(json.dumps({k: [q.usd_per_hour, q.source, q.note] for k, q in
                  ((k, quote_resources(v)) for k, v in cases.items())}))
"""


def test_quote_resources_in_skypilot_syntax(tmp_path: Path) -> None:
    seed_catalog(tmp_path)
    out = run_isolated(tmp_path, RESOURCE_QUOTES)
    assert out["infra"][:2] == [0.145, "catalog"]
    assert out["infra_spot"][:2] == [0.0593, "catalog"]
    assert out["cloud"][:2] == [0.1785, "catalog"]
    assert out["any_of"][:2] == [0.1785, "catalog"]  # the dearest alternative counts
    assert out["any_of_unknown"][0] is None and "x9.huge" in out["any_of_unknown"][2]
    assert out["configured"][:2] == [1.5, "configured"]
    assert out["k8s_free"][:2] == [0.0, "configured"]
    assert out["k8s_unknown"][0] is None and "price_per_hour" in out["k8s_unknown"][2]
    assert out["no_cloud"][0] is None and "no cloud/infra" in out["no_cloud"][2]


def test_split_infra() -> None:
    from bot.experiments.cost import split_infra

    assert split_infra("aws/us-east-1/us-east-1a") == ("aws", "us-east-1")
    assert split_infra("AWS") == ("aws", None)
    assert split_infra("k8s/my-context") == ("kubernetes", None)
    assert split_infra("*/us-east-1") == (None, "us-east-1")  # any cloud: no catalog to ask, price unknown
    assert split_infra(None) == (None, None)
