"""Profile-guided research and the multi-wave loop, end to end through the real pipeline: sandbox GitHub, the
attention project built and benchmarked for real (both tiers), the real `anthropic` SDK talking to the API
double. The bot profiles the baseline first (a baseline-only batch under cachegrind), the dossier opens with
where the time goes, and the scripted model reacts to what it is shown:

- wave 1: it proposes the i-k-j matmul (the profile's costliest function); the agent writes it; measured
  faster;
- wave 2: the plan request carries wave 1's measured table and per-function diff; the model proposes the fused
  softmax; the agent writes it on top of wave 1's winner; measured faster against that winner;
- the loop stops at research.max_waves (2) with the reason recorded; the PR holds both waves and tells the
  path.

Assertions are on deterministic quantities (simulated verdicts, shares, commit ancestry), never wall times.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
from anthropic_double import AnthropicDouble, Reply, tool_use
from e2e_helpers import MATMUL_NEW, MATMUL_OLD, SOFTMAX_NEW, SOFTMAX_OLD, run_issue

from bot.demo import World
from bot.pipeline import status_marker

pytestmark = pytest.mark.timeout(900)

MATMUL_TITLE = "Reorder the matmul loops to i-k-j"
SOFTMAX_TITLE = "Compute each softmax exponential once"


class Model:
    """Answers each request from what it asks for: wave-1 synthesis, wave-2 plan, coding turns, review."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.plan_requests: list[str] = []

    def __call__(self, request: dict) -> Reply:
        tools = {t["name"]: t for t in request.get("tools") or []}
        raw = json.dumps(request)
        first = request["messages"][0]["content"]
        first = first if isinstance(first, str) else json.dumps(first)
        usage = {"input_tokens": 1200, "output_tokens": 150}
        if "submit" in tools and "hypotheses" in json.dumps(tools["submit"]["input_schema"]):
            if "planning wave 2" in first:
                self.seen.append("plan2")
                self.plan_requests.append(first)
                measured = re.search(r"measured:w1:[a-z0-9-]+", raw).group(0)
                return Reply(
                    [
                        tool_use(
                            "submit",
                            summary="matmul moved; exp now dominates",
                            hypotheses=[
                                {
                                    "title": SOFTMAX_TITLE,
                                    "rationale": (
                                        "After the i-k-j matmul the exponentials hold the largest share; "
                                        "the textbook softmax evaluates each twice: store it once, scale by "
                                        "1/sum."
                                    ),
                                    "target_files": ["src/softmax.c"],
                                    "expected_effect": {"x86": "faster", "arm": "faster"},
                                    "risk": "low",
                                    "citations": [measured, "profile:__expf_fma"],
                                    "hot_functions": ["softmax_row"],
                                }
                            ],
                        )
                    ],
                    usage=usage,
                )
            self.seen.append("synthesis")
            return Reply(
                [
                    tool_use(
                        "submit",
                        summary="matmul holds most of the cost",
                        hypotheses=[
                            {
                                "title": MATMUL_TITLE,
                                "rationale": (
                                    "The i-j-k order walks b by columns; i-k-j streams rows of b and c."
                                ),
                                "target_files": ["src/matmul.c"],
                                "expected_effect": {"x86": "faster", "arm": "faster"},
                                "risk": "low",
                                "citations": ["profile:matmul"],
                                "hot_functions": ["matmul"],
                            }
                        ],
                    )
                ],
                usage=usage,
            )
        if "submit" in tools:
            self.seen.append("review")
            return Reply([tool_use("submit", approve=True, problems=[])], usage=usage)
        turn = len(request["messages"]) // 2 + 1  # 1 on a session's first call
        softmax = SOFTMAX_TITLE in first
        self.seen.append(f"coder-{'softmax' if softmax else 'matmul'}-{turn}")
        edit = (
            tool_use("replace", path="src/softmax.c", old=SOFTMAX_OLD, new=SOFTMAX_NEW)
            if softmax
            else tool_use("replace", path="src/matmul.c", old=MATMUL_OLD, new=MATMUL_NEW)
        )
        steps = {
            1: edit,
            2: tool_use("run_build"),
            3: tool_use(
                "finish",
                summary=("softmax: one exponential per element" if softmax else "i-k-j loop order in matmul"),
            ),
        }
        return Reply([steps.get(turn, tool_use("finish", summary="done"))], usage=usage)


def _configure(world: World, tmp_path) -> None:
    """Two waves at most, no forks or papers (the LLM is the only source of candidates), fewer rounds."""
    clone = tmp_path / "clone"
    token = world.tokens["maria"]
    url = world.sandbox.url.replace("://", f"://x-access-token:{token}@") + f"/{world.repo}.git"
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    subprocess.run(["git", "clone", "-q", url, str(clone)], check=True, env=env)
    cfg = clone / ".autoresearch.yml"
    text = (
        cfg.read_text()
        .replace("rounds: 8", "rounds: 4")
        .replace("  max_forks: 30\n", "  max_forks: 0\n  max_waves: 2\n")
        .replace("arxiv: true", "arxiv: false")
    )
    cfg.write_text(text)
    for args in (
        ["-c", "user.name=m", "-c", "user.email=m@x", "commit", "-qam", "two waves"],
        ["push", "-q", "origin", "HEAD:main"],
    ):
        subprocess.run(["git", *args], cwd=clone, check=True, env=env)


def test_two_waves_profile_guided_hill_climb(tmp_path):
    model = Model()
    with AnthropicDouble([model] * 60, api_key="sk-test") as double:
        world = World(
            tmp_path / "world",
            settings_overrides={
                "anthropic_api_key": "sk-test",
                "anthropic_base_url": double.base_url,
                "anthropic_model": "claude-sonnet-4-6",
                "arxiv_enabled": False,
            },
        )
        try:
            world.add_attention_project()
            _configure(world, tmp_path)
            world.start_bot()
            store, run, number = run_issue(
                world, "Speed up attention", "Attention is slow on CPU.", 840, events=8
            )
            get = lambda key, default=None: store.get_artifact(run.id, key, default)  # noqa: E731

            # the baseline was profiled first, through the executor: matmul is where the time goes
            profile = get("profile")
            assert profile["available"] and profile["functions"][0]["name"] == "matmul"
            assert profile["functions"][0]["share"] > 0.5
            assert [e["name"] for e in store.experiments(run.id)][0] == "profile"

            # the dossier opens with the profile; every hypothesis names its hot function and Amdahl bound
            dossier = get("dossier")
            md = dossier["markdown"]
            assert md.index("#### Where the time goes") < md.index("#### Hypotheses")
            assert "| `matmul` |" in md and "`src/matmul.c:4`" in md
            assert dossier["hypotheses"]
            assert all(
                h["hot_function"] and h["hot_share"] > 0 and h["amdahl_max"] > 1
                for h in dossier["hypotheses"]
            )
            h1 = dossier["hypotheses"][0]
            assert h1["hot_function"] == "matmul" and abs(h1["amdahl_max"] - 1 / (1 - h1["hot_share"])) < 1e-3

            # wave 1: the agent's i-k-j matmul, measured faster on the simulated tier (deterministic)
            w1 = get("wave:1")
            (c1,) = get("candidates")
            assert c1["source"] == "agent" and w1["kept"]["names"] == [c1["name"]]
            assert w1["next"] == "continue"
            rows1 = [r for r in get("decision")["rows"] if r["metric"] == "attn_ms"]
            assert rows1 and all(r["verdict"] == "faster" and r["simulated"]["speedup"] > 1.02 for r in rows1)
            moved = {f["name"]: f for f in rows1[0]["simulated"]["functions"]}
            assert moved["matmul"]["delta"] < 0

            # wave 2's plan request carried wave 1's measured table and per-function diff
            assert model.seen.count("plan2") == 1
            plan = model.plan_requests[0]
            assert "What wave 1 measured" in plan and f"{c1['name']} ({MATMUL_TITLE}) on " in plan
            assert "faster; simulated " in plan
            assert re.search(r"matmul: \d+ -> \d+ estimated cycles \(-\d+\.\d%", plan)

            # wave 2's candidate is built on wave 1's winner and measured against it
            (c2,) = get("candidates@2")
            assert c2["base"] == c1["sha"] and c2["name"].startswith("w2-")
            repo = world.gh("maria").get_repo(world.repo)
            assert [p.sha for p in repo.get_commit(c2["sha"]).parents] == [c1["sha"]]
            assert [f.filename for f in repo.compare(c1["sha"], c2["sha"]).files] == ["src/softmax.c"]
            rows2 = [r for r in get("decision@2")["rows"] if r["metric"] == "attn_ms"]
            assert rows2 and all(r["verdict"] == "faster" for r in rows2)
            assert get("dossier@2")["hypotheses"][0]["hot_function"] == "softmax_row"

            # the loop stopped at max_waves, with the reason recorded
            loop = get("loop")
            assert loop["waves"] == 2 and loop["stop"] == "max_waves"
            assert "research.max_waves (2)" in loop["reason"]
            assert get("wave:2")["next"] == "stop" and model.seen.count("synthesis") == 1

            # the PR holds both waves (measured together against the baseline) and tells the path
            final = get("final")
            assert final["choice"]["kind"] == "stack"
            assert final["stack"]["applied"] == [c1["name"], c2["name"]]
            pub = get("publication")
            assert pub["head_sha"] == c2["sha"] and pub["waves"] == [1, 2]
            body = repo.get_pull(pub["pr_number"]).body
            assert "### How this was found" in body and f"built on wave 1's {MATMUL_TITLE}" in body
            assert "research.max_waves (2) reached" in body

            # one status comment, with a section per wave and the stop reason
            status = [c.body for c in world.comments(number) if status_marker(run.id) in c.body]
            assert len(status) == 1
            assert "### Wave 1 (built on the baseline)" in status[0]
            assert "### Wave 2 (built on wave 1's" in status[0]
            assert "**Stopped after wave 2:**" in status[0]
        finally:
            world.stop()
