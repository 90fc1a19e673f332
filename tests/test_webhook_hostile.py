"""Hostile deliveries: signed but type-confused bodies, deep nesting, lone surrogates, huge numbers, chunked
oversize, form encoding, replays; and the status pages' auth. Never a 500; a refused delivery records nothing.

The fuzz cases are type-confused variants of GitHub's real example payloads (@octokit/webhooks-examples), made
by a seeded generator (same cases on every run).
"""

from __future__ import annotations

import base64
import copy
import http.client
import http.server
import json
import logging
import random
import re
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from bot.payloads import FULL_NAME, LOGIN
from bot.signature import sign
from bot.store import Store
from bot.web import create_app

SECRET = "hostile-secret"
LIMIT = 64 * 1024


@pytest.fixture()
def env(bot_store):
    settings, store = bot_store(webhook_secret=SECRET, max_body_bytes=LIMIT)
    return settings, store, create_app(settings, store).test_client()


def post_raw(
    client,
    event: str,
    body: bytes,
    *,
    delivery: str | None = None,
    content_type: str = "application/json",
    secret: str = SECRET,
):
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "Content-Type": content_type,
        "X-Hub-Signature-256": sign(secret, body),
    }
    return client.post("/webhook", data=body, headers=headers)


def recorded(store: Store) -> tuple[int, int]:
    return len(store.deliveries(10_000)), len(store.commands(10_000))


def comment_payload(body: str = "/autoresearch rerun", comment_id: int = 77) -> dict[str, Any]:
    return {
        "action": "created",
        "issue": {"number": 9},
        "comment": {"id": comment_id, "body": body, "user": {"login": "alice", "type": "User"}},
        "repository": {"full_name": "octo/llama"},
        "sender": {"login": "alice", "type": "User"},
    }


def dumps(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def with_raw(payload: dict[str, Any], marker: str, raw: bytes) -> bytes:
    """JSON text with one value written verbatim (numbers JSON allows but Python would not produce)."""
    return dumps(payload).replace(json.dumps(marker).encode(), raw)


DEEP = b"[" * 1100 + b"]" * 1100

# the specific probes of issue #11 (and relatives): event, body -> refused with 400
SPECIFIC: dict[str, tuple[str, bytes]] = {
    "sender is a string": ("issue_comment", dumps({**comment_payload(), "sender": "octocat"})),
    "comment.user is a string": (
        "issue_comment",
        dumps({**comment_payload(), "comment": {"id": 77, "body": "/autoresearch rerun", "user": "octocat"}}),
    ),
    "repositories: [1]": (
        "installation",
        dumps(
            {
                "action": "created",
                "installation": {"id": 5},
                "repositories": [1],
                "sender": {"login": "alice"},
            }
        ),
    ),
    "number 1e400": (
        "issue_comment",
        with_raw({**comment_payload(), "issue": {"number": "N"}}, "N", b"1e400"),
    ),
    "number 2**64": (
        "issue_comment",
        with_raw({**comment_payload(), "issue": {"number": "N"}}, "N", b"18446744073709551616"),
    ),
    "number -1": ("issue_comment", dumps({**comment_payload(), "issue": {"number": -1}})),
    "number true": ("issue_comment", dumps({**comment_payload(), "issue": {"number": True}})),
    "number NaN": ("issue_comment", with_raw({**comment_payload(), "issue": {"number": "N"}}, "N", b"NaN")),
    "comment id 2**63": (
        "issue_comment",
        with_raw(
            {
                **comment_payload(),
                "comment": {"id": "N", "body": "/autoresearch stop", "user": {"login": "a"}},
            },
            "N",
            b"9223372036854775808",
        ),
    ),
    "action lone surrogate": ("issue_comment", dumps({**comment_payload(), "action": "\ud800"})),
    "action lone surrogate, ignored event": ("gollum", dumps({"action": "\ud800", "pages": []})),
    "raw surrogate bytes": ("gollum", b'{"action": "\xed\xa0\x80"}'),
    "login lone surrogate": (
        "issue_comment",
        dumps(
            {
                **comment_payload(),
                "comment": {"id": 77, "body": "/autoresearch rerun", "user": {"login": "a\udfff"}},
            }
        ),
    ),
    "login with markdown": (
        "issues",
        dumps(
            {
                "action": "labeled",
                "label": {"name": "autoresearch"},
                "issue": {"number": 5},
                "repository": {"full_name": "o/r"},
                "sender": {"login": "x\n\n![p](http://evil/p.png)"},
            }
        ),
    ),
    "full_name a/b/c": ("issue_comment", dumps({**comment_payload(), "repository": {"full_name": "a/b/c"}})),
    "label name an object": (
        "issues",
        dumps(
            {
                "action": "labeled",
                "label": {"name": {}},
                "issue": {"number": 5},
                "repository": {"full_name": "o/r"},
                "sender": {"login": "a"},
            }
        ),
    ),
    "review head sha a list": (
        "pull_request_review",
        dumps(
            {
                "action": "submitted",
                "review": {"id": 1, "state": "approved", "user": {"login": "m"}},
                "pull_request": {"number": 3, "head": {"sha": ["a"], "ref": "x"}, "base": {"sha": "b" * 40}},
                "repository": {"full_name": "o/r"},
                "sender": {"login": "m"},
            }
        ),
    ),
    "installation.id a string": ("issue_comment", dumps({**comment_payload(), "installation": {"id": "1"}})),
    "nesting depth 1100": ("gollum", DEEP),
    "nesting depth 1100 in a field": ("issue_comment", with_raw({**comment_payload(), "x": "N"}, "N", DEEP)),
    "body is a list": ("issues", b"[1, 2]"),
    "body is a string": ("issues", b'"labeled"'),
    "body is null": ("ping", b"null"),
    "not JSON": ("issues", b"{not json"),
    "invalid UTF-8": ("issues", b'{"action": "\xff"}'),
}


@pytest.mark.parametrize("name", list(SPECIFIC))
def test_specific_hostile_bodies_get_400_a_log_line_and_record_nothing(env, caplog, name):
    _, store, client = env
    event, body = SPECIFIC[name]
    with caplog.at_level(logging.WARNING, logger="autoresearch.web"):
        r = post_raw(client, event, body, delivery=f"probe-{abs(hash(name)) % 10**8}")
    assert r.status_code == 400, (name, r.status_code, r.get_data()[:300])
    assert "Traceback" not in r.get_data(as_text=True) and r.is_json
    assert recorded(store) == (0, 0)
    assert any(rec.getMessage().startswith("refused delivery 'probe-") for rec in caplog.records)


def test_deep_nesting_below_the_parser_limit_in_an_unread_field_is_accepted(env):
    _, store, client = env
    body = with_raw({**comment_payload(), "x": "N"}, "N", b"[" * 500 + b"]" * 500)
    r = post_raw(client, "issue_comment", body)
    assert r.status_code == 202 and recorded(store) == (1, 1)


# ------------------------------------------------------------------------------------------------------------
# fuzz: type-confused variants of the real example payloads

ROUTED_EVENTS = [
    "issues",
    "issue_comment",
    "pull_request_review",
    "installation",
    "installation_repositories",
    "ping",
]
# fields the router reads: mutated half of the time so that the fuzz reaches the code that uses them
READ_PATHS = [
    ("sender",),
    ("sender", "login"),
    ("sender", "type"),
    ("repository",),
    ("repository", "full_name"),
    ("issue",),
    ("issue", "number"),
    ("issue", "pull_request"),
    ("label",),
    ("label", "name"),
    ("comment",),
    ("comment", "id"),
    ("comment", "body"),
    ("comment", "user"),
    ("comment", "user", "login"),
    ("comment", "user", "type"),
    ("comment", "performed_via_github_app"),
    ("review",),
    ("review", "id"),
    ("review", "state"),
    ("review", "user"),
    ("review", "user", "login"),
    ("pull_request",),
    ("pull_request", "number"),
    ("pull_request", "head"),
    ("pull_request", "head", "sha"),
    ("pull_request", "head", "ref"),
    ("pull_request", "base", "sha"),
    ("installation",),
    ("installation", "id"),
    ("installation", "account"),
    ("installation", "account", "login"),
    ("repositories",),
    ("repositories_added",),
    ("action",),
    ("zen",),
]
RAW_MARK = "\x00raw:"
HOSTILE_VALUES: list[Any] = [
    "octocat",
    "",
    "a/b/c",
    "../../etc/passwd",
    "x" * 300,
    "\ud800",
    "a\udfffb",
    "\u202e\u200b",
    0,
    -1,
    1,
    2**53,
    2**63,
    2**64,
    1.5,
    float("inf"),
    float("nan"),
    True,
    False,
    None,
    [],
    [1],
    ["octocat"],
    {},
    {"id": 1},
    {"login": 1},
    {"login": ["x"]},
    RAW_MARK + "1e400",
    RAW_MARK + "18446744073709551616",
    RAW_MARK + "-0",
    RAW_MARK + "[" * 1100 + "]" * 1100,
]


def _paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    if prefix:
        yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):
            yield from _paths(v, prefix + (i,))


def _set(payload: Any, path: tuple, value: Any) -> bool:
    cur = payload
    for key in path[:-1]:
        if isinstance(cur, dict) and key in cur:
            cur = cur[key]
        elif isinstance(cur, list) and isinstance(key, int) and key < len(cur):
            cur = cur[key]
        else:
            return False
    if isinstance(cur, dict) or (isinstance(cur, list) and isinstance(path[-1], int) and path[-1] < len(cur)):
        cur[path[-1]] = value
        return True
    return False


def _encode(payload: Any) -> bytes:
    raws: dict[str, str] = {}

    def swap(v: Any) -> Any:
        if isinstance(v, str) and v.startswith(RAW_MARK):
            key = f"@@raw{len(raws)}@@"
            raws[key] = v[len(RAW_MARK) :]
            return key
        if isinstance(v, dict):
            return {k: swap(x) for k, x in v.items()}
        if isinstance(v, list):
            return [swap(x) for x in v]
        return v

    text = json.dumps(swap(payload))
    for key, raw in raws.items():
        text = text.replace(json.dumps(key), raw)
    return text.encode()


def fuzz_cases(seed: int = 11, count: int = 360) -> list[tuple[str, bytes, str]]:
    from ground_truth import webhook_examples

    examples = webhook_examples()
    rng = random.Random(seed)
    cases = []
    while len(cases) < count:
        event = ROUTED_EVENTS[len(cases) % len(ROUTED_EVENTS)]
        payload = copy.deepcopy(rng.choice(examples[event]))
        if event == "issue_comment" and rng.random() < 0.7:
            payload["comment"]["body"] = rng.choice(
                ["/autoresearch rerun", "/autoresearch bench o:b rounds=5", "/autoresearch stop"]
            )
            payload["action"] = "created"
            payload["comment"].pop("performed_via_github_app", None)
        if event == "issues" and rng.random() < 0.7:
            payload["action"] = "labeled"
            payload["label"] = {"name": "autoresearch"}
        if event == "pull_request_review" and rng.random() < 0.7:
            payload["action"], payload["review"]["state"] = "submitted", "approved"
        for _ in range(rng.choice([1, 1, 2, 3])):
            readable = [p for p in READ_PATHS if _set(copy.deepcopy(payload), p, 0)]
            if readable and rng.random() < 0.5:
                path = rng.choice(readable)
            else:
                path = rng.choice(list(_paths(payload)))
            _set(payload, path, copy.deepcopy(rng.choice(HOSTILE_VALUES)))
        what = f"{event} #{len(cases)}"
        cases.append((event, _encode(payload), what))
    return cases


def test_fuzzed_real_payloads_never_get_500_and_refusals_record_nothing(env):
    _, store, client = env
    outcomes: dict[int, int] = {}
    for i, (event, body, what) in enumerate(fuzz_cases()):
        before = recorded(store)
        r = post_raw(client, event, body, delivery=f"fuzz-{i}")
        outcomes[r.status_code] = outcomes.get(r.status_code, 0) + 1
        assert r.status_code in (200, 202, 400), (what, r.status_code, body[:300])
        assert "Traceback" not in r.get_data(as_text=True)
        if r.status_code == 400:
            assert recorded(store) == before, what
            assert store.delivery(f"fuzz-{i}") is None
        else:
            assert store.delivery(f"fuzz-{i}") is not None, what
    # every command that got through is well-typed (what the worker and SQLite rely on)
    for cmd in store.commands(10_000):
        assert isinstance(cmd["issue_number"], int) and 0 <= cmd["issue_number"] < 2**53, cmd
        if cmd["kind"] != "installation":
            assert re.fullmatch(FULL_NAME.pattern, cmd["repo"]) and cmd["issue_number"] >= 1, cmd
        assert re.fullmatch(LOGIN.pattern, cmd["user"]), cmd
        json.dumps(cmd["args"]).encode("utf-8")
    # the fuzz reached both sides: refusals and accepted commands (numbers fixed by the seed)
    assert outcomes.get(400, 0) >= 100 and outcomes.get(202, 0) >= 30, outcomes
    assert sum(outcomes.values()) == 360 and set(outcomes) <= {200, 202, 400}


# ------------------------------------------------------------------------------------------------------------
# replays, form encoding


def test_replayed_comment_with_a_fresh_delivery_id_is_one_command(env):
    _, store, client = env
    body = dumps(comment_payload("/autoresearch rerun", comment_id=4242))
    first = post_raw(client, "issue_comment", body, delivery="orig")
    again = post_raw(client, "issue_comment", body, delivery="replay-1")
    assert first.status_code == 202 and again.status_code == 200
    assert again.json == {"status": "duplicate", "reason": "issue_comment:4242:created was already received"}
    assert len(store.commands()) == 1 and store.delivery("replay-1")["status"] == "replay"
    # the same delivery id again is GitHub's redelivery: acknowledged as a duplicate too
    assert post_raw(client, "issue_comment", body, delivery="replay-1").json["status"] == "duplicate"
    # another comment is another command
    assert post_raw(client, "issue_comment", dumps(comment_payload(comment_id=4243))).status_code == 202
    assert len(store.commands()) == 2


def test_replayed_approving_review_is_one_command(env):
    _, store, client = env
    body = dumps(
        {
            "action": "submitted",
            "review": {"id": 31, "state": "approved", "user": {"login": "maint"}},
            "pull_request": {
                "number": 12,
                "head": {"sha": "a" * 40, "ref": "autoresearch/5/x"},
                "base": {"sha": "b" * 40},
            },
            "repository": {"full_name": "octo/llama"},
            "sender": {"login": "maint"},
        }
    )
    assert post_raw(client, "pull_request_review", body).status_code == 202
    assert post_raw(client, "pull_request_review", body).json["status"] == "duplicate"
    assert [c["kind"] for c in store.commands()] == ["approved"]


def test_form_encoded_delivery_is_verified_over_the_raw_body_then_parsed(env):
    _, store, client = env
    form = urllib.parse.urlencode({"payload": json.dumps(comment_payload("/autoresearch stop"))}).encode()
    r = post_raw(client, "issue_comment", form, content_type="application/x-www-form-urlencoded")
    assert r.status_code == 202 and r.json["command"] == "stop"
    # signed over something else: 401, nothing recorded
    h = {
        "X-GitHub-Event": "issue_comment",
        "X-GitHub-Delivery": "form-bad",
        "X-Hub-Signature-256": sign(SECRET, json.dumps(comment_payload()).encode()),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    assert client.post("/webhook", data=form, headers=h).status_code == 401
    # two payload fields, no payload field, a payload that is not JSON: 400
    for bad in (form + b"&" + form, b"other=1", b"payload=%7Bnope", b"payload=%ff%fe"):
        r = post_raw(client, "issue_comment", bad, content_type="application/x-www-form-urlencoded")
        assert r.status_code == 400, bad
    assert len(store.commands()) == 1 and store.delivery("form-bad") is None


def test_event_and_delivery_headers_must_look_like_githubs(env):
    _, store, client = env
    body = dumps(comment_payload())
    assert post_raw(client, "Issue Comment!", body).status_code == 400
    assert post_raw(client, "issue_comment", body, delivery="x" * 500).status_code == 400
    assert post_raw(client, "issue_comment", body, delivery="a b").status_code == 400
    assert recorded(store) == (0, 0)


# ------------------------------------------------------------------------------------------------------------
# over real HTTP: chunked bodies


@pytest.fixture()
def server(bot_store):
    settings, store = bot_store(webhook_secret=SECRET, max_body_bytes=LIMIT)
    srv = make_server("127.0.0.1", 0, create_app(settings, store), threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv.server_port, store
    srv.shutdown()


def chunked_post(port: int, body: bytes, delivery: str) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("POST", "/webhook")
        for k, v in {
            "X-GitHub-Event": "issue_comment",
            "X-GitHub-Delivery": delivery,
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(SECRET, body),
            "Transfer-Encoding": "chunked",
        }.items():
            conn.putheader(k, v)
        conn.endheaders()
        for i in range(0, len(body), 8192):
            piece = body[i : i + 8192]
            conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        conn.send(b"0\r\n\r\n")
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def test_chunked_body_over_the_limit_is_413_not_401(server):
    port, store = server
    big = dumps({**comment_payload(), "padding": "x" * (LIMIT + 10)})
    status, data = chunked_post(port, big, "chunk-big")
    assert status == 413 and str(LIMIT) in data["error"]
    exact = dumps({**comment_payload(), "padding": ""})
    exact = dumps({**comment_payload(), "padding": "x" * (LIMIT - len(exact))})
    assert len(exact) == LIMIT
    assert chunked_post(port, exact, "chunk-exact")[0] == 202  # exactly the limit is allowed
    assert store.delivery("chunk-big") is None and store.delivery("chunk-exact")["status"] == "accepted"


# ------------------------------------------------------------------------------------------------------------
# status pages: auth, no tracebacks


def _seed_failed_run(store: Store) -> int:
    run = store.create_run("octo/llama", 5, "issue", "alice")
    trace = (
        'Traceback (most recent call last):\n  File "/srv/autoresearch/bot/stages.py", line 9, in x\n'
        "    boom()\nRuntimeError: disk on fire"
    )
    store.add_event(run.id, "error", trace, {"traceback": trace})
    store.set_state(run.id, "failed", error=trace)
    return run.id


def test_status_pages_need_the_token_and_show_no_tracebacks(bot_store):
    settings, store = bot_store(webhook_secret=SECRET, status_token="s3cret-token")
    client = create_app(settings, store).test_client()
    run_id = _seed_failed_run(store)
    pages = ["/", f"/runs/{run_id}", "/api/runs", f"/api/runs/{run_id}"]
    for path in pages:
        r = client.get(path)
        assert r.status_code == 401 and "WWW-Authenticate" in r.headers, path
        assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    basic = "Basic " + base64.b64encode(b"anyone:s3cret-token").decode()
    for path in pages:
        for auth in ("Bearer s3cret-token", basic):
            r = client.get(path, headers={"Authorization": auth})
            text = r.get_data(as_text=True)
            assert r.status_code == 200, path
            assert "Traceback" not in text and "/srv/autoresearch" not in text, path
            assert 'File \\"' not in text and 'File "' not in text, path
    detail = client.get(f"/api/runs/{run_id}", headers={"Authorization": "Bearer s3cret-token"}).json
    assert detail["error"] == "disk on fire"
    assert all("traceback" not in (e["data"] or {}) for e in detail["events"])
    assert client.get("/healthz").status_code == 200  # probes need no token


def status_paths(app, run_id: int) -> list[str]:
    """A URL for every GET route but /webhook and /healthz: all of them are status pages (fail closed)."""
    paths = [
        rule.rule.replace("<int:run_id>", str(run_id)).replace("<path:key>", "decision")
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in ("webhook", "healthz") and "GET" in (rule.methods or ())
    ]
    assert {"/", "/runs/<int:run_id>", "/api/runs"} <= {r.rule for r in app.url_map.iter_rules()}
    assert "/" in paths and f"/api/runs/{run_id}/artifacts/decision" in paths
    return paths


def test_status_pages_without_a_token_are_refused_even_on_loopback(bot_store):
    # the default (status_pages: token) with no token set: nobody reads them, whatever the client's address
    # (behind a proxy on this host every request comes from 127.0.0.1)
    settings, store = bot_store(webhook_secret=SECRET)
    assert settings.status_pages == "token"
    client = create_app(settings, store).test_client()
    run_id = _seed_failed_run(store)
    for path in status_paths(client.application, run_id):
        local = client.get(path, environ_base={"REMOTE_ADDR": "127.0.0.1"})
        assert local.status_code == 403 and "status_token" in local.json["error"], path
        assert "disk on fire" not in local.get_data(as_text=True)
    assert client.get("/healthz", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200


def test_status_pages_tokenless_loopback_only_as_an_explicit_opt_in(bot_store):
    settings, store = bot_store(webhook_secret=SECRET, status_pages="loopback")
    client = create_app(settings, store).test_client()
    run_id = _seed_failed_run(store)
    local = client.get(f"/runs/{run_id}", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert local.status_code == 200 and "disk on fire" in local.get_data(as_text=True)
    remote = client.get("/api/runs", environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert remote.status_code == 403 and "status_token" in remote.json["error"]
    proxied = client.get(
        "/api/runs", environ_base={"REMOTE_ADDR": "127.0.0.1"}, headers={"X-Forwarded-For": "203.0.113.7"}
    )
    assert proxied.status_code == 403


def test_status_pages_off_and_unknown_paths_answer_404(bot_store):
    settings, store = bot_store(webhook_secret=SECRET, status_token="s3cret-token")
    client = create_app(settings, store).test_client()
    for auth in ({}, {"Authorization": "Bearer s3cret-token"}):
        # a path no route knows is a 404, not "status pages need the status token"
        assert client.post("/webhook/", data=b"{}", headers=auth).status_code == 404
        assert client.get("/nope", headers=auth).status_code == 404
        assert client.get("/runs/abc", headers=auth).status_code == 404
    assert client.get("/webhook").status_code == 405
    settings, store = bot_store(webhook_secret=SECRET, status_token="s3cret-token", status_pages="off")
    client = create_app(settings, store).test_client()
    r = client.get("/api/runs", headers={"Authorization": "Bearer s3cret-token"})
    assert r.status_code == 404 and "status_pages: off" in r.json["error"]
    assert client.get("/healthz").status_code == 200


def test_status_pages_setting_is_validated():
    from bot.config import ConfigError, Settings

    with pytest.raises(ConfigError, match="status_pages"):
        Settings(status_pages="public").validate()
    assert Settings.load(env={"AUTORESEARCH_STATUS_PAGES": "loopback"}).status_pages == "loopback"


class _PlainProxy(http.server.BaseHTTPRequestHandler):
    """A reverse proxy like nginx's bare `proxy_pass`: forwards method, path, Authorization and body to the
    upstream, adds no X-Forwarded-For / X-Real-IP / Forwarded header."""

    upstream = 0

    def log_message(self, *args):
        pass

    def _forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream, timeout=10)
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    do_GET = do_POST = _forward


@pytest.mark.parametrize("token", [None, "s3cret-token"])
def test_status_page_behind_a_headerless_proxy_refuses_a_request_without_the_token(bot_store, token):
    settings, store = bot_store(webhook_secret=SECRET, status_token=token)
    run_id = _seed_failed_run(store)
    app_srv = make_server("127.0.0.1", 0, create_app(settings, store), threaded=True)
    proxy_cls = type("Proxy", (_PlainProxy,), {"upstream": app_srv.server_port})
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), proxy_cls)
    for srv in (app_srv, proxy):
        threading.Thread(target=srv.serve_forever, daemon=True).start()

    def get(path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.server_address[1], timeout=10)
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        out = resp.status, resp.read().decode()
        conn.close()
        return out

    try:
        for path in status_paths(app_srv.app, run_id):
            status, text = get(path)
            assert status == (403 if token is None else 401), (path, status)
            assert "disk on fire" not in text
        if token:
            status, text = get(f"/runs/{run_id}", {"Authorization": f"Bearer {token}"})
            assert status == 200 and "disk on fire" in text
        assert get("/healthz")[0] == 200
    finally:
        proxy.shutdown()
        app_srv.shutdown()
