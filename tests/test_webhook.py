"""POST /webhook: signature, size, JSON, idempotency, routing; real payloads from
@octokit/webhooks-examples."""

import json
import threading
import urllib.error
import urllib.request
import uuid

import pytest
from werkzeug.serving import make_server

from bot.events import parse_slash_command, route
from bot.signature import sign
from bot.signature import verify as verify_signature
from bot.web import create_app

SECRET = "It's a Secret to Everybody"


def test_github_documented_test_vector():
    # https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
    header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign(SECRET, b"Hello, World!") == header
    assert verify_signature(SECRET, b"Hello, World!", header)
    assert not verify_signature(SECRET, b"Hello, World?", header)
    assert not verify_signature(SECRET, b"Hello, World!", header.replace("sha256=", "sha1="))
    assert not verify_signature("", b"Hello, World!", header)
    assert not verify_signature(SECRET, b"Hello, World!", None)


@pytest.fixture()
def env(bot_store):
    settings, store = bot_store(webhook_secret=SECRET, max_body_bytes=64 * 1024)
    app = create_app(settings, store)
    return settings, store, app.test_client()


def post(client, event, payload, *, secret=SECRET, delivery=None, raw=None, headers=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    h = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "Content-Type": "application/json",
        "X-Hub-Signature-256": sign(secret, body),
    }
    h.update(headers or {})
    return client.post("/webhook", data=body, headers=h)


def labeled(label="autoresearch", login="alice", number=5):
    return {
        "action": "labeled",
        "label": {"name": label},
        "issue": {"number": number, "title": "t", "body": "b"},
        "repository": {"full_name": "octo/llama"},
        "sender": {"login": login, "type": "User"},
    }


def test_valid_label_enqueues_a_start_command(env):
    _, store, client = env
    r = post(client, "issues", labeled(), delivery="d-1")
    assert r.status_code == 202 and r.json["command"] == "start"
    cmd = store.pending_commands()[0]
    assert (cmd["kind"], cmd["repo"], cmd["issue_number"], cmd["user"]) == ("start", "octo/llama", 5, "alice")
    assert store.delivery("d-1")["status"] == "accepted"


def test_wrong_or_missing_signature_is_401_and_nothing_recorded(env):
    _, store, client = env
    assert post(client, "issues", labeled(), secret="wrong", delivery="d-x").status_code == 401
    r = client.post("/webhook", data=b"{}", headers={"X-GitHub-Event": "issues", "X-GitHub-Delivery": "d-y"})
    assert r.status_code == 401
    assert store.delivery("d-x") is None and store.pending_commands() == []


def test_oversized_body_is_413(env):
    _, store, client = env
    big = {"padding": "x" * (80 * 1024), **labeled()}
    assert post(client, "issues", big).status_code == 413
    assert store.pending_commands() == []


def test_malformed_json_is_400(env):
    _, _, client = env
    r = post(client, "issues", None, raw=b"{not json")
    assert r.status_code == 400 and "JSON" in r.json["error"]


def test_payload_missing_fields_is_400_logged_and_not_recorded(env, caplog):
    _, store, client = env
    payload = {"action": "labeled", "label": {"name": "autoresearch"}, "sender": {"login": "alice"}}
    r = post(client, "issues", payload, delivery="d-bad")
    assert r.status_code == 400 and "repository" in r.json["error"]
    assert store.delivery("d-bad") is None and store.commands() == []
    assert any("refused delivery 'd-bad'" in rec.getMessage() for rec in caplog.records)


def test_missing_event_header_is_400(env):
    _, _, client = env
    body = json.dumps(labeled()).encode()
    r = client.post(
        "/webhook", data=body, headers={"X-Hub-Signature-256": sign(SECRET, body), "X-GitHub-Delivery": "d-2"}
    )
    assert r.status_code == 400


def test_redelivery_is_acknowledged_once(env):
    _, store, client = env
    assert post(client, "issues", labeled(), delivery="same").status_code == 202
    r = post(client, "issues", labeled(), delivery="same")
    assert r.status_code == 200 and r.json["status"] == "duplicate"
    assert len(store.pending_commands()) == 1


def test_other_label_and_unknown_event_are_ignored(env):
    _, store, client = env
    assert post(client, "issues", labeled(label="bug")).json["status"] == "ignored"
    assert post(client, "gollum", {"pages": []}).json["status"] == "ignored"
    assert store.pending_commands() == []


@pytest.mark.parametrize(
    "body, expected",
    [
        ("/autoresearch status", ("status", [])),
        ("please\n/autoresearch stop\nthanks", ("stop", [])),
        ("/autoresearch rerun", ("rerun", [])),
        ("/autoresearch bench feature/fast-softmax", ("bench", ["feature/fast-softmax"])),
        ("/autoresearch rebench", ("rebench", [])),
        ("/autoresearch", ("help", [])),
        ("/autoresearch explode", ("help", ["explode"])),
        ("/autoresearchx stop", None),
        ("no command here", None),
    ],
)
def test_slash_command_parsing(body, expected):
    assert parse_slash_command(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        "```\n/autoresearch rerun\n```",
        "text\n\n```sh\n/autoresearch stop\n```\nafter",
        "````\n```\n/autoresearch stop\n````",  # a shorter fence does not close a longer one
        "~~~\n/autoresearch rerun\n~~~",
        "  ~~~~ text\n/autoresearch rerun\n~~~~",
        "```\nnever closed\n/autoresearch stop",
        "    /autoresearch stop",  # indented code block
        "intro\n\n\t/autoresearch stop",
        "<!-- /autoresearch rerun -->",
        "<!--\n/autoresearch stop\n-->",
        "hello <!-- x\n/autoresearch stop",  # unclosed comment hides the rest
        "<!<!-- -->-- \n/autoresearch stop\n-->",  # a comment spliced together by removing another
        "<pre>\n/autoresearch stop\n</pre>",
        "<script>\n/autoresearch stop\n</script>",
        "> /autoresearch stop",
        "> quoted\n/autoresearch stop",  # lazy continuation of the quote
        "`/autoresearch stop`",
        "- /autoresearch stop",
    ],
)
def test_commands_in_code_quotes_and_html_comments_are_ignored(body):
    assert parse_slash_command(body) is None


@pytest.mark.parametrize(
    "body, expected",
    [
        ("```\ncode\n```\n/autoresearch stop", ("stop", [])),  # after a closed fence
        ("~~~\n/autoresearch rerun\n~~~\n\n/autoresearch status", ("status", [])),
        ("<!-- note -->\n/autoresearch rerun", ("rerun", [])),
        ("> quoted\n\n/autoresearch stop", ("stop", [])),  # a blank line ends the quote
        ("   /autoresearch stop", ("stop", [])),  # up to 3 spaces is still prose
        ("```not a fence``` /autoresearch x\n/autoresearch stop", ("stop", [])),
    ],
)
def test_commands_in_prose_around_code_are_found(body, expected):
    assert parse_slash_command(body) == expected


@pytest.mark.parametrize(
    "sep", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"], ids=ascii
)
def test_only_githubs_line_breaks_end_a_line(sep):
    # GitHub renders these inside the line: "please /autoresearch stop" is not a line starting with a command
    assert parse_slash_command(f"please{sep}/autoresearch stop") is None
    assert parse_slash_command(f"{sep}/autoresearch stop") is None  # not at the very start of the line either
    # what GitHub does break on: \n, \r\n, a lone \r
    for nl in ("\n", "\r\n", "\r"):
        assert parse_slash_command(f"please{sep}x{nl}/autoresearch stop{nl}thanks") == ("stop", [])


@pytest.mark.parametrize(
    "body",
    [
        "<details>\n/autoresearch stop\n</details>",
        "<details><summary>logs</summary>\n\n/autoresearch rerun\n\n</details>",
        "<details open>\n\n/autoresearch rerun\n\n</details>",
        "<details>\n<details>\ninner\n</details>\n/autoresearch stop\n</details>",  # nested
        "<DETAILS>\n/autoresearch stop",  # unclosed: hidden to the end
        "<div hidden>\n\n/autoresearch stop\n\n</div>",
        "<div\n  hidden\n>\n/autoresearch stop\n</div>",  # attributes over several lines
        '<p hidden="hidden">\n/autoresearch stop\n</p>',
        '<span aria-hidden="true">\n/autoresearch stop\n</span>',
        '<div style="display: none">\n/autoresearch stop\n</div>',
        "<template>\n/autoresearch stop\n</template>",
        "<noscript>\n/autoresearch stop\n</noscript>",
        "x <details>y</details>/autoresearch stop",
        "<details>a</details><details>\n/autoresearch stop\n</details>",
        "<details/>\n/autoresearch stop",  # the slash is ignored: an open details element to the end
        "<div hidden/>\n/autoresearch stop",
    ],
)
def test_commands_in_hidden_html_are_ignored(body):
    assert parse_slash_command(body) is None


@pytest.mark.parametrize(
    "body, expected",
    [
        ("<details><summary>logs</summary>\nlong log\n</details>\n\n/autoresearch stop", ("stop", [])),
        ("<div>\n/autoresearch stop\n</div>", ("stop", [])),  # a visible element
        ("<div hidden>x</div>\n/autoresearch rerun", ("rerun", [])),
        ("Use `<details>` for logs\n/autoresearch stop", ("stop", [])),  # a tag in inline code hides nothing
        ("```html\n<details>\n```\n/autoresearch stop", ("stop", [])),  # nor one in a code block
    ],
)
def test_commands_after_hidden_html_are_found(body, expected):
    assert parse_slash_command(body) == expected


def comment(body, login="alice", user_type="User", pull=False):
    issue = {"number": 9}
    if pull:
        issue["pull_request"] = {"url": "http://x/pulls/9"}
    return {
        "action": "created",
        "issue": issue,
        "comment": {"id": 77, "body": body, "user": {"login": login, "type": user_type}},
        "repository": {"full_name": "octo/llama"},
        "sender": {"login": login, "type": user_type},
    }


@pytest.mark.parametrize(
    "body, kind, args",
    [
        ("/autoresearch status", "status", {}),
        ("/autoresearch stop", "stop", {}),
        ("/autoresearch rerun", "rerun", {}),
        ("/autoresearch bench someone:fast-branch", "bench", {"branch": "someone:fast-branch"}),
        (
            "/autoresearch bench ../../etc",
            "help",
            {"error": "usage: /autoresearch bench <branch> [rounds=N] (or owner:branch for a fork)"},
        ),
        ("/autoresearch rebench", "rebench", {}),
        ("/autoresearch rerun rounds=20", "rerun", {"rounds": 20}),
        (
            "/autoresearch bench rounds=16 someone:fast-branch",
            "bench",
            {"branch": "someone:fast-branch", "rounds": 16},
        ),
        ("/autoresearch rebench Rounds=3", "rebench", {"rounds": 3}),
        (
            "/autoresearch rerun rounds=1",
            "help",
            {"error": "rounds must be a whole number from 2 to 100, got '1'"},
        ),
        (
            "/autoresearch rebench rounds=lots",
            "help",
            {"error": "rounds must be a whole number from 2 to 100, got 'lots'"},
        ),
        ("/autoresearch status rounds=20", "status", {"extra": ["rounds=20"]}),
    ],
)
def test_each_slash_command_routes(body, kind, args):
    cmd = route("issue_comment", comment(body, pull="rebench" in body), trigger_label="autoresearch")
    assert cmd.kind == kind and cmd.comment_id == 77 and cmd.user == "alice"
    assert cmd.args == args
    assert cmd.is_pull == ("rebench" in body)


def test_bot_comments_never_trigger_commands():
    assert (
        route(
            "issue_comment",
            comment("/autoresearch rerun", login="autoresearch[bot]", user_type="Bot"),
            trigger_label="autoresearch",
        ).reason
        == "comment written by a bot"
    )


def test_unlabel_and_close_stop_the_run():
    p = labeled()
    p["action"] = "unlabeled"
    assert route("issues", p, trigger_label="autoresearch").kind == "stop"
    p["action"] = "closed"
    assert route("issues", p, trigger_label="autoresearch").kind == "stop"


def test_approving_review_routes_to_approved():
    payload = {
        "action": "submitted",
        "review": {"id": 3, "state": "approved", "user": {"login": "maint"}},
        "pull_request": {
            "number": 12,
            "head": {"sha": "a" * 40, "ref": "autoresearch/5/x"},
            "base": {"sha": "b" * 40},
        },
        "repository": {"full_name": "octo/llama"},
        "sender": {"login": "maint"},
    }
    cmd = route("pull_request_review", payload, trigger_label="autoresearch")
    assert cmd.kind == "approved" and cmd.issue_number == 12 and cmd.args["base_sha"] == "b" * 40


# ------------------------------------------------------------------------------------------------------------
# real payloads published by GitHub (npm @octokit/webhooks-examples)


def _examples():
    from ground_truth import webhook_examples

    return webhook_examples()


@pytest.mark.parametrize(
    "event", ["issues", "issue_comment", "ping", "installation", "pull_request_review", "check_run"]
)
def test_real_example_payloads_are_accepted_and_routed(env, event):
    _, store, client = env
    examples = _examples()[event]
    assert examples, f"no examples for {event}"
    rerouted: list[dict] = []
    for payload in examples:
        r = post(client, event, payload)
        assert r.status_code in (200, 202), (event, payload.get("action"), r.json)
        outcome = route(event, payload, trigger_label="autoresearch")
        if event == "installation":
            assert r.status_code == 202 and outcome.kind == "installation"
            assert outcome.args["installation_id"] == payload["installation"]["id"]
        if event == "issues" and payload.get("action") == "labeled":
            # the examples' label is not ours: acknowledged and ignored; with our label it starts a run
            relabeled = json.loads(json.dumps(payload))
            relabeled["label"]["name"] = "autoresearch"
            if relabeled["sender"].get("type") != "Bot":
                assert route(event, relabeled, trigger_label="autoresearch").kind == "start"
        if event == "issue_comment" and payload.get("action") == "created":
            commanded = json.loads(json.dumps(payload))
            commanded["comment"]["body"] = "/autoresearch status"
            commanded["comment"].pop("performed_via_github_app", None)
            if commanded["comment"]["user"].get("type") != "Bot":
                cmd = route(event, commanded, trigger_label="autoresearch")
                assert cmd.kind == "status" and cmd.issue_number == payload["issue"]["number"]
        if event == "check_run":
            # GitHub's examples are other Apps' check runs: acknowledged and ignored; with the bot's
            # external_id a Re-run click becomes the `rerequest` command, once per check run
            assert not hasattr(outcome, "kind"), outcome
            if payload.get("action") == "rerequested" and not rerouted:
                rerouted.append(payload)
                ours = json.loads(json.dumps(payload))
                ours["check_run"]["external_id"] = "autoresearch:run=12:issue=5:kind=benchmark"
                cmd = route(event, ours, trigger_label="autoresearch")
                assert (cmd.kind, cmd.issue_number, cmd.args["run_id"]) == ("rerequest", 5, 12)
                assert cmd.args["head_sha"] == payload["check_run"]["head_sha"]
                assert cmd.key == f"check_run:{payload['check_run']['id']}:rerequested"
                r = post(client, event, ours)
                assert r.status_code == 202, r.json
                assert post(client, event, ours).status_code == 200  # a replay under a new delivery id
                assert [c["kind"] for c in store.pending_commands()].count("rerequest") == 1
            for action in ("created", "completed", "requested_action"):
                other = {**json.loads(json.dumps(payload)), "action": action}
                other["check_run"]["external_id"] = "autoresearch:run=12:issue=5:kind=benchmark"
                assert not hasattr(route(event, other, trigger_label="autoresearch"), "kind")
    if event == "ping":
        assert r.json["status"] == "pong"
    if event == "check_run":
        assert rerouted, "no check_run.rerequested example"


def test_acknowledgement_over_real_http_is_fast(bot_store):
    settings, store = bot_store(webhook_secret=SECRET)
    server = make_server("127.0.0.1", 0, create_app(settings, store), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/webhook"
        body = json.dumps(labeled()).encode()
        req = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={
                "X-GitHub-Event": "issues",
                "X-GitHub-Delivery": "http-1",
                "Content-Type": "application/json",
                "X-Hub-Signature-256": sign(SECRET, body),
            },
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 202
        bad = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={
                "X-GitHub-Event": "issues",
                "X-GitHub-Delivery": "http-2",
                "X-Hub-Signature-256": "sha256=" + "0" * 64,
            },
        )
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(bad, timeout=5)
        assert info.value.code == 401
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/healthz", timeout=5) as resp:
            assert json.load(resp)["status"] == "ok"
    finally:
        server.shutdown()
