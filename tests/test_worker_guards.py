"""Worker guards against the sandbox GitHub over real HTTP (App auth, PyGithub): the payload's installation
must be the repository's, a stranger is refused once per person per issue with a sentence that fits what they
asked, and `bench owner:branch` naming a missing fork or branch says so instead of failing a run.

Signed deliveries go through the webhook app (Flask test client); the worker then handles the commands.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sandbox_helpers import Admin

from bot import commands
from bot.config import Settings
from bot.demo import rsa_keypair
from bot.forge import AppAuth, GitHubForge, RetryPolicy
from bot.pipeline import Pipeline
from bot.sandbox import Sandbox
from bot.signature import sign
from bot.stages import DEFAULT_STAGES, render_status
from bot.web import create_app
from bot.worker import Worker, refusal_sentence

SECRET = "guards-secret"
FAST = RetryPolicy(
    total=2,
    backoff_factor=0.05,
    backoff_max_s=0.5,
    max_wait_s=5,
    secondary_rate_wait_s=1,
    connection_attempts=2,
)


class World:
    def __init__(self, sb: Sandbox, admin: Admin) -> None:
        self.sb = sb
        self.http = requests.Session()
        self.tokens = {u: admin.user(u) for u in ("maria", "olaf", "fiona", "eve")}
        self.repo = admin.repo("maria", "proj")
        self.other = admin.repo("eve", "other")
        admin.collaborator(self.repo, "olaf", "triage")
        self.fork = admin.fork(self.repo, "fiona")
        self.private, public = rsa_keypair()
        self.app_id = admin.app("guard-bot", public)
        self.inst = admin.install(self.app_id, "maria", [self.repo])
        self.inst_other = admin.install(self.app_id, "eve", [self.other])

    def api(self, verb: str, path: str, user: str = "maria", **body: Any) -> Any:
        resp = self.http.request(
            verb,
            f"{self.sb.api_url}{path}",
            json=body or None,
            timeout=30,
            headers={"Authorization": f"token {self.tokens[user]}"},
        )
        assert resp.status_code < 300, (path, resp.status_code, resp.text[:300])
        return resp.json() if resp.content else None

    def issue(self, title: str) -> int:
        return int(self.api("POST", f"/repos/{self.repo}/issues", title=title, body="")["number"])

    def comment(self, number: int, body: str, user: str) -> int:
        path = f"/repos/{self.repo}/issues/{number}/comments"
        return int(self.api("POST", path, user=user, body=body)["id"])

    def bot_comments(self, number: int) -> list[str]:
        return [
            c["body"]
            for c in self.api("GET", f"/repos/{self.repo}/issues/{number}/comments")
            if c["user"]["login"].endswith("[bot]")
        ]


@pytest.fixture(scope="module")
def world(sandbox: Sandbox, sandbox_admin: Admin) -> World:
    return World(sandbox, sandbox_admin)


@pytest.fixture()
def bot(world: World, bot_store) -> Iterator[dict[str, Any]]:
    settings, store = bot_store(
        webhook_secret=SECRET,
        github_base_url=world.sb.api_url,
        github_app_id=world.app_id,
        github_private_key=world.private,
    )
    forge = GitHubForge(
        AppAuth(world.app_id, world.private), base_url=world.sb.api_url, retry=FAST, min_interval_s=0
    )
    pipeline = Pipeline(settings, store, forge, stages=DEFAULT_STAGES, status_renderer=render_status)
    worker = Worker(settings, store, pipeline, owner="test:1")
    client = create_app(settings, store).test_client()
    yield {"store": store, "worker": worker, "client": client}
    forge.close()


def deliver(
    bot: dict[str, Any], world: World, number: int, body: str, user: str, installation: int | None
) -> dict[str, Any]:
    """A signed issue_comment delivery for a real comment, then one worker pass; returns the command row."""
    comment_id = world.comment(number, body, user)
    payload: dict[str, Any] = {
        "action": "created",
        "issue": {"number": number},
        "repository": {"full_name": world.repo},
        "comment": {"id": comment_id, "body": body, "user": {"login": user, "type": "User"}},
        "sender": {"login": user, "type": "User"},
    }
    if installation is not None:
        payload["installation"] = {"id": installation}
    raw = json.dumps(payload).encode()
    r = bot["client"].post(
        "/webhook",
        data=raw,
        headers={
            "X-GitHub-Event": "issue_comment",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(SECRET, raw),
        },
    )
    assert r.status_code == 202, r.json
    bot["worker"].tick_commands()
    return next(c for c in bot["store"].commands() if c["id"] == r.json["command_id"])


def test_payload_installation_must_be_the_repositorys(bot, world):
    number = world.issue("installation check")
    wrong = deliver(bot, world, number, "/autoresearch status", "maria", installation=world.inst_other)
    assert wrong["state"] == "refused" and f"installation {world.inst_other}" in wrong["detail"]
    missing = deliver(bot, world, number, "/autoresearch status", "maria", installation=None)
    assert missing["state"] == "refused" and "installation None" in missing["detail"]
    assert world.bot_comments(number) == []  # nothing said or done on the repository
    right = deliver(bot, world, number, "/autoresearch status", "maria", installation=world.inst)
    assert right["state"] == "done" and right["detail"] == "no runs"
    said = world.bot_comments(number)
    assert len(said) == 1 and "no run for this issue yet" in said[0]


def test_a_stranger_is_refused_once_per_issue_with_a_fitting_sentence(bot, world):
    number = world.issue("stranger")
    first = deliver(bot, world, number, "/autoresearch rerun", "olaf", installation=world.inst)
    again = deliver(bot, world, number, "/autoresearch stop", "olaf", installation=world.inst)
    third = deliver(bot, world, number, "/autoresearch bench fiona:main", "olaf", installation=world.inst)
    assert [c["state"] for c in (first, again, third)] == ["refused"] * 3
    assert "already told" in again["detail"] and "already told" in third["detail"]
    said = world.bot_comments(number)
    assert said == [
        "@olaf thanks for the interest! Only people with write access to this repository can "
        "use `/autoresearch rerun`, so nothing was started. A maintainer can do it for you (this "
        "note comes once per person per issue)."
    ]
    other = world.issue("stranger elsewhere")
    deliver(bot, world, other, "/autoresearch stop", "olaf", installation=world.inst)
    assert len(world.bot_comments(other)) == 1 and "so nothing was stopped" in world.bot_comments(other)[0]
    assert bot["store"].list_runs() == []


def test_refusal_sentences_name_what_was_asked():
    s = Settings()
    assert refusal_sentence("approved", s).startswith(
        "thanks for the interest! An approving review makes the bot re-measure this pull request only "
        "when the reviewer has"
    )
    assert "`autoresearch` label" in refusal_sentence("start", s)
    assert "`approved`" not in refusal_sentence("approved", s)
    assert "`/autoresearch status`, so nothing was done" in refusal_sentence("status", s)


def test_bench_names_a_missing_fork_or_branch_in_plain_words(bot, world):
    number = world.issue("bench targets")
    cases = {
        "/autoresearch bench nobody:main": "fork `nobody/proj` not found",
        "/autoresearch bench fiona:no-such-branch": "branch `no-such-branch` not found in `fiona/proj`",
        "/autoresearch bench no-such-branch": "branch `no-such-branch` not found in `maria/proj`",
    }
    for body, words in cases.items():
        cmd = deliver(bot, world, number, body, "maria", installation=world.inst)
        assert cmd["state"] == "refused" and cmd["detail"] == words
        assert world.bot_comments(number)[-1].startswith(f"@maria {words}, so nothing was measured.")
    assert bot["store"].list_runs() == [] and "internal error" not in " ".join(world.bot_comments(number))


def _parse_ping(words: list[str]) -> dict[str, Any]:
    if len(words) > 1 or (words and not words[0].isdigit()):
        raise commands.UsageError("usage: /autoresearch ping [times]")
    return {"times": int(words[0])} if words else {}


def _handle_ping(worker: Worker, repo: str, number: int, user: str, args: dict) -> commands.CommandResult:
    times = int(args.get("times", 1))
    worker.pipeline.post_issue_note(repo, number, f"@{user} pong x{times}")
    return commands.CommandResult("done", f"pong {times}")


def test_a_toy_command_is_one_spec_routed_dispatched_and_listed(bot, world, monkeypatch):
    """A new slash command: one spec in the registry; routing, dispatch, help, footer and refusal follow."""
    ping = commands.CommandSpec(
        "ping",
        _handle_ping,
        _parse_ping,
        help="`{p} ping [times]`",
        footer="ping",
        refused="nothing was done",
    )
    monkeypatch.setitem(commands.REGISTRY, ping.name, ping)
    number = world.issue("ping")
    done = deliver(bot, world, number, "/autoresearch ping 3", "maria", installation=world.inst)
    assert (done["kind"], done["state"], done["detail"]) == ("ping", "done", "pong 3")
    assert world.bot_comments(number) == ["@maria pong x3"]
    bad = deliver(bot, world, number, "/autoresearch ping lots", "maria", installation=world.inst)
    assert (bad["kind"], bad["state"]) == ("help", "done")
    assert world.bot_comments(number)[-1] == (
        "@maria usage: /autoresearch ping [times]\n\nCommands: `/autoresearch status`, `/autoresearch stop`, "
        "`/autoresearch rerun`, `/autoresearch bench <branch>` (or `owner:branch` of a fork), on pull "
        "requests `/autoresearch rebench`, and `/autoresearch ping [times]`. `rerun`, `bench` and `rebench` "
        "take `rounds=N` (2-100) to measure with more interleaved rounds when a result came back noisy."
    )
    refused = deliver(bot, world, number, "/autoresearch ping", "olaf", installation=world.inst)
    assert refused["state"] == "refused"
    assert "can use `/autoresearch ping`, so nothing was done." in world.bot_comments(number)[-1]
    assert commands.footer_text() == (
        "<sub>Commands: `/autoresearch status | stop | rerun | bench <branch> | rebench | ping`</sub>"
    )


def labeled_delivery(bot: dict[str, Any], world: World, number: int, state: str) -> Any:
    payload = {
        "action": "labeled",
        "label": {"name": "autoresearch"},
        "issue": {"number": number, "state": state},
        "repository": {"full_name": world.repo},
        "sender": {"login": "maria", "type": "User"},
        "installation": {"id": world.inst},
    }
    raw = json.dumps(payload).encode()
    return bot["client"].post(
        "/webhook",
        data=raw,
        headers={
            "X-GitHub-Event": "issues",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(SECRET, raw),
        },
    )


def test_a_closed_issue_starts_nothing(bot, world):
    number = world.issue("closed before the label")
    world.api("PATCH", f"/repos/{world.repo}/issues/{number}", state="closed")
    # the payload says closed: ignored at the edge, no command recorded
    r = labeled_delivery(bot, world, number, "closed")
    assert r.status_code == 200 and r.json["status"] == "ignored" and "closed" in r.json["reason"]
    assert bot["store"].commands() == []
    # a stale payload still saying open: the worker asks GitHub, which says closed; nothing said or queued
    r = labeled_delivery(bot, world, number, "open")
    assert r.status_code == 202
    bot["worker"].tick_commands()
    row = next(c for c in bot["store"].commands() if c["id"] == r.json["command_id"])
    assert row["state"] == "ignored" and "closed" in row["detail"]
    assert bot["store"].runs_for_issue(world.repo, number) == []
    assert world.bot_comments(number) == []
    # an explicit rerun on the closed issue: a one-line note, no run
    rerun = deliver(bot, world, number, "/autoresearch rerun", "maria", installation=world.inst)
    assert rerun["state"] == "ignored" and "closed" in rerun["detail"]
    assert bot["store"].runs_for_issue(world.repo, number) == []
    notes = world.bot_comments(number)
    assert len(notes) == 1 and "closed" in notes[0] and "\n" not in notes[0].strip()


def rerequest(bot: dict[str, Any], world: World, check_id: int, run_id: int, number: int, user: str) -> Any:
    """A signed check_run.rerequested delivery (GitHub's Re-run button) for one of the bot's check runs."""
    payload = {
        "action": "rerequested",
        "check_run": {
            "id": check_id,
            "head_sha": "a" * 40,
            "name": "autoresearch / benchmark",
            "external_id": f"autoresearch:run={run_id}:issue={number}:kind=benchmark",
            "pull_requests": [],
        },
        "repository": {"full_name": world.repo},
        "sender": {"login": user, "type": "User"},
        "installation": {"id": world.inst},
    }
    raw = json.dumps(payload).encode()
    headers = {
        "X-GitHub-Event": "check_run",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "Content-Type": "application/json",
        "X-Hub-Signature-256": sign(SECRET, raw),
    }
    r = bot["client"].post("/webhook", data=raw, headers=headers)
    assert r.status_code == 202, r.json
    bot["worker"].tick_commands()
    return next(c for c in bot["store"].commands() if c["id"] == r.json["command_id"])


def test_the_rerun_button_needs_write_access_and_reruns_the_bench(bot, world):
    """check_run.rerequested is a command like the slash commands: a stranger is refused (once, in words that
    fit), a maintainer's click starts a new bench run of the same branch on the run's issue."""
    store = bot["store"]
    number = world.issue("re-run a check")
    origin = store.create_run(world.repo, number, "bench", "maria", {"branch": "main", "rounds": 3})
    store.set_state(origin.id, "done")
    refused = rerequest(bot, world, 901, origin.id, number, "olaf")
    assert refused["state"] == "refused" and len(store.list_runs()) == 1
    assert world.bot_comments(number) == [
        "@olaf thanks for the interest! Re-running the bot's checks measures again only when someone with "
        "write access to this repository asks, so nothing was started. A maintainer can do it for you (this "
        "note comes once per person per issue)."
    ]
    done = rerequest(bot, world, 902, origin.id, number, "maria")
    assert done["state"] == "done", done
    again = store.get_run(done["run_id"])
    assert (again.kind, again.issue_number, again.trigger_user) == ("bench", number, "maria")
    assert again.params == {"reason": "check run re-run", "rounds": 3, "branch": "main", "is_pull": False}
    # a second click while it is measuring starts nothing more
    assert rerequest(bot, world, 903, origin.id, number, "maria")["state"] == "ignored"
    assert len(store.list_runs()) == 2


def test_every_ending_without_a_pull_request_mentions_the_requester_once(bot, world):
    store, pipeline = bot["store"], bot["worker"].pipeline
    number = world.issue("endings")
    failed = store.create_run(world.repo, number, "issue", "maria")
    store.set_state(failed.id, "benchmarking", stage="benchmarking")
    store.set_state(failed.id, "failed", error="The benchmark machine produced no result.")
    stopped = store.create_run(world.repo, number, "bench", "maria", {"branch": "main"})
    store.set_state(stopped.id, "cancelled")
    for run in (failed, stopped, failed):
        pipeline.mention_ending(store.get_run(run.id))
    said = world.bot_comments(number)
    assert len(said) == 2
    assert (
        f"@maria run #{failed.id} failed during Benchmarks: The benchmark machine produced no result."
        in said[0]
    )
    assert f"@maria run #{stopped.id} was stopped" in said[1]
