"""End to end over real HTTP (sandbox GitHub -> signed webhooks -> bot -> worker -> sandbox GitHub, real git,
builds and benchmarks of examples/attention, real SQLite, the PyGithub-based forge):

- check runs follow GitHub's lifecycle (queued -> in_progress -> completed, each exchange validated against
  GitHub's OpenAPI description) and GitHub's Re-run button (`check_run.rerequested`) measures again;
- a 30-minute GitHub rate limit defers a run and a slash command (in the store), survives a worker restart and
  resumes after the reset without a second benchmark launch. The bot's clock is injected (services["clock"])
  and the sandbox's is moved by its admin API, so "30 minutes later" takes no real half hour; every call
  still goes through the real worker, store, forge and PyGithub over HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from ground_truth import openapi_spec, validate_exchange

from bot import report
from bot.app import build_bot
from bot.demo import World
from bot.pipeline import status_marker

pytestmark = pytest.mark.timeout(900)
PUBLIC_URL = "http://bot.example.test"
BOT = "autoresearch[bot]"


def wait_for(cond: Any, timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Clock:
    """The bot's clock: real time plus what the test advanced it by (the sandbox's moves alike)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def push_branch(world: World, tmp: Path, branch: str) -> str:
    """A branch of maria/attention with a comment-only change (correct, no faster): its head sha."""
    clone = tmp / f"clone-{branch}"
    url = (
        world.sandbox.url.replace("://", f"://x-access-token:{world.tokens['maria']}@") + f"/{world.repo}.git"
    )
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    subprocess.run(["git", "clone", "-q", url, str(clone)], check=True, env=env)
    src = clone / "src" / "rmsnorm.c"
    src.write_text(src.read_text() + "\n/* tidy */\n")
    for args in (
        ["-c", "user.name=m", "-c", "user.email=m@x", "commit", "-qam", "rmsnorm: a comment"],
        ["push", "-q", "origin", f"HEAD:refs/heads/{branch}"],
    ):
        subprocess.run(["git", *args], cwd=clone, check=True, env=env)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=clone, check=True, capture_output=True, text=True
    ).stdout.strip()


def bot_comments(world: World, number: int) -> list[Any]:
    return [c for c in world.comments(number) if c.user.login == BOT]


def finished(store: Any, run_id: int, timeout: float) -> Any:
    return wait_for(
        lambda: (r := store.get_run(run_id)).state in ("done", "failed", "cancelled") and r,
        timeout=timeout,
        what=f"run {run_id} finished",
    )


def batches(world: World, run_id: int) -> list[dict[str, Any]]:
    """The local executor's batch plans of one run (one per benchmark launch)."""
    local = Path(world.bot.settings.data_dir) / "executor" / "local"
    plans = [json.loads(p.read_text()) for p in local.glob("local-*/batch.json")]
    return [p for p in plans if p["run_id"] == run_id]


def check_exchanges(log: list[dict[str, Any]], repo: str) -> dict[int, list[dict[str, Any]]]:
    """Each check run's create/update exchanges in order, by check run id."""
    out: dict[int, list[dict[str, Any]]] = {}
    prefix = f"/repos/{repo}/check-runs"
    for e in log:
        if not e["path"].startswith(prefix) or e["method"] not in ("POST", "PATCH"):
            continue
        if e["path"].endswith("/rerequest") or e["status"] >= 300:
            continue
        out.setdefault(int(e["response_json"]["id"]), []).append(e)
    return out


@pytest.fixture()
def world(tmp_path: Path) -> Any:
    clock = Clock()
    w = World(
        tmp_path / "world",
        settings_overrides={"public_url": PUBLIC_URL, "arxiv_enabled": False},
        services={"clock": clock},
    )
    w.clock = clock  # type: ignore[attr-defined]
    w.add_attention_project()
    yield w
    w.stop()


def test_check_runs_go_queued_in_progress_completed_and_the_rerun_button_measures_again(
    world: World, tmp_path: Path
) -> None:
    sha = push_branch(world, tmp_path, "tidy")
    world.start_bot()
    store = world.bot.store
    world.admin.call("DELETE", "/requests")
    number = world.open_issue("Is the tidy branch any different?", "")
    world.comment(number, "/autoresearch bench tidy rounds=2")
    run = wait_for(lambda: store.list_runs() and store.list_runs()[0], what="bench run")
    final = finished(store, run.id, 600)
    assert final.state == "done", (final, store.events(run.id)[-5:])

    # the two check runs of the measured commit: created queued, in_progress while measured, completed
    spec = openapi_spec()
    log = world.admin.call("GET", "/requests")
    exchanges = check_exchanges(log, world.repo)
    assert len(exchanges) == 2, exchanges.keys()
    for steps in exchanges.values():
        for e in steps:  # every request and response as GitHub's OpenAPI description has them
            op = validate_exchange(
                spec, e["method"], e["path"], e["status"], e["response_json"], e["request_json"]
            )
            assert op in ("checks/create", "checks/update")
        statuses = [e["response_json"]["status"] for e in steps]
        assert statuses[0] == "queued" and steps[0]["method"] == "POST", statuses
        assert "in_progress" in statuses and statuses[-1] == "completed", statuses
        first_done = statuses.index("completed")
        assert statuses.index("in_progress") < first_done == len(statuses) - 1, statuses
        created = steps[0]["request_json"]
        assert created["head_sha"] == sha and created["details_url"] == f"{PUBLIC_URL}/runs/{run.id}"
        assert created["external_id"].startswith(f"autoresearch:run={run.id}:issue={number}:kind=")
        assert steps[-1]["response_json"]["conclusion"] in ("success", "neutral", "failure")
    checks = {c.name: c for c in world.gh("maria").get_repo(world.repo).get_commit(sha).get_check_runs()}
    assert set(checks) == {"autoresearch / correctness", "autoresearch / benchmark"}
    correctness = checks["autoresearch / correctness"]
    # its conclusion is the decision's (a comment-only change is correct: success, unless the busy machine
    # lost a measurement, and then "not established"), never made up
    decision = store.get_artifact(run.id, "decision")
    expected = report.check_run_output("correctness", decision, "tidy")[0]
    assert correctness.conclusion == expected, correctness.output.title
    summary = correctness.output.summary
    # the correctness check lists the checks that ran, not the benchmark table again
    assert "| build |" in summary and "| candidate |" not in summary
    results = store.get_artifact(run.id, "results:main")
    ran = {
        c["name"]
        for r in results.values()
        for c in ((r["variants"].get("tidy") or {}).get("validation") or {}).get("checks") or []
    }
    assert all(f"| `{name}` |" in summary for name in ran), (ran, summary)
    if expected == "success":
        assert ran == {"./check"} and "| `./check` | ✅ pass |" in summary, summary
    # a bench run ends without a pull request: the requester is told, once
    mention = [c for c in bot_comments(world, number) if f"autoresearch:run:{run.id}:no-pr" in c.body]
    assert len(mention) == 1 and "@maria" in mention[0].body and f"bench run #{run.id}" in mention[0].body

    # GitHub's Re-run button on the benchmark check: one new bench run of the same branch, once per click
    benchmark = checks["autoresearch / benchmark"]
    deliveries_before = len(world.admin.call("GET", "/deliveries"))
    resp = requests.post(
        f"{world.sandbox.api_url}/repos/{world.repo}/check-runs/{benchmark.id}/rerequest",
        headers={"Authorization": f"token {world.tokens['maria']}"},
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    world.wait_deliveries()
    again = wait_for(lambda: len(store.list_runs()) == 2 and store.list_runs()[0], what="re-run")
    assert again.kind == "bench" and again.issue_number == number and again.trigger_user == "maria"
    assert again.params["branch"] == "tidy" and again.params["reason"] == "check run re-run"
    assert again.params["rounds"] == 2
    # the same delivery again (GitHub's redelivery): no second re-run
    rerequested = [
        d
        for d in world.admin.call("GET", "/deliveries")[deliveries_before:]
        if d["event"] == "check_run" and d["action"] == "rerequested"
    ]
    assert len(rerequested) == 1
    world.admin.call("POST", f"/deliveries/{rerequested[0]['id']}/redeliver")
    world.wait_deliveries()
    assert finished(store, again.id, 600).state == "done"
    time.sleep(1.0)
    assert len(store.list_runs()) == 2
    commands = [c for c in store.commands() if c["kind"] == "rerequest"]
    assert [c["state"] for c in commands] == ["done"], commands
    # the re-run's own check runs went through the lifecycle on the same commit
    later = check_exchanges(world.admin.call("GET", "/requests"), world.repo)
    new = {cid: steps for cid, steps in later.items() if cid not in exchanges}
    assert len(new) == 2
    for steps in new.values():
        statuses = [e["response_json"]["status"] for e in steps]
        assert statuses[0] == "queued" and "in_progress" in statuses and statuses[-1] == "completed"
        assert steps[0]["request_json"]["external_id"].startswith(f"autoresearch:run={again.id}:")
    runs = list(world.gh("maria").get_repo(world.repo).get_commit(sha).get_check_runs())
    assert len(runs) == 4 and all(r.status == "completed" for r in runs)


def test_a_30_minute_rate_limit_defers_the_run_and_a_command_across_a_restart(
    world: World, tmp_path: Path
) -> None:
    push_branch(world, tmp_path, "tidy")
    clock: Clock = world.clock  # type: ignore[attr-defined]
    world.start_bot()
    store = world.bot.store
    number = world.open_issue("Is the tidy branch any different?", "")
    world.comment(number, "/autoresearch bench tidy rounds=2")
    run = wait_for(lambda: store.list_runs() and store.list_runs()[0], what="bench run")
    # the benchmark batch is out: from now on every GitHub call of the bot is refused for 30 minutes
    wait_for(lambda: any(x["name"] == "main" for x in store.experiments(run.id)), timeout=300, what="batch")
    limit = world.admin.call(
        "POST", "/rate-limits", {"login": BOT, "seconds": 1800, "kind": "primary", "status": 403}
    )
    deferred = wait_for(
        lambda: (r := store.get_run(run.id)).deferred_until is not None and r, timeout=300, what="deferral"
    )
    assert deferred.active and deferred.deferred_until == pytest.approx(limit["reset_at"] + 1, abs=1.5)
    assert "rate limit" in (deferred.deferred_reason or "")
    # a slash command meanwhile waits too: kept pending until the reset, no attempt counted
    other = world.open_issue("Anything running here?", "")
    world.comment(other, "/autoresearch status")
    world.wait_deliveries()
    cmd = wait_for(
        lambda: next((c for c in store.commands() if c["issue_number"] == other and c["not_before"]), None),
        what="deferred command",
    )
    assert cmd["state"] == "pending" and cmd["attempts"] == 0 and "deferred until" in cmd["detail"]
    assert cmd["not_before"] == pytest.approx(limit["reset_at"] + 1, abs=1.5)

    # the worker is restarted: a new store, pipeline and worker on the same database
    world.bot.worker.stop()
    bot2 = build_bot(world.bot.settings, services={"clock": clock})
    bot2.worker.start()
    try:
        time.sleep(3.0)  # before the reset nothing is resumed, nothing is retried
        held = bot2.store.get_run(run.id)
        assert held.state == deferred.state and held.deferred_until == deferred.deferred_until
        assert bot2.store.commands()[0]["state"] == "pending"
        assert bot_comments(world, other) == []

        # 30 minutes later (both clocks): the run resumes where it stopped, the command is handled
        world.admin.call("POST", "/clock", {"advance_s": 1805})
        clock.offset += 1805
        final = finished(bot2.store, run.id, 600)
        assert final.state == "done", (final, bot2.store.events(run.id)[-5:])
        done = wait_for(
            lambda: next(
                (c for c in bot2.store.commands() if c["id"] == cmd["id"] and c["state"] == "done"), None
            ),
            what="command handled",
        )
        assert done["attempts"] == 0
        reply = wait_for(lambda: bot_comments(world, other), what="status reply")
        assert len(reply) == 1 and "no run for this issue yet" in reply[0].body
    finally:
        bot2.worker.stop()

    # no second launch: one benchmark batch for the run, one experiment
    assert len(batches(world, run.id)) == 1
    assert [x["name"] for x in bot2.store.experiments(run.id)] == ["main"]
    events = [e["message"] for e in bot2.store.events(run.id, "deferred")]
    assert events[0].startswith("deferred until ") and events[-1] == "resumed after the rate limit's reset"
    status = [c for c in bot_comments(world, number) if status_marker(run.id) in c.body]
    assert len(status) == 1 and "Deferred until" not in status[0].body  # brought up to date on resume
