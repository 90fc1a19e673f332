"""`autoresearch-bot app create` and the sandbox's App-manifest flow, over real HTTP.

The sandbox plays github.com: its /settings/apps/new page takes the manifest form POST, creates the App and
redirects with `code` + `state`; `POST /app-manifests/{code}/conversions` is checked against GitHub's OpenAPI
description. The CLI runs as a subprocess; the test is the browser (GET the listener's page, POST its form,
follow the redirect back). The written settings must let the bot act as the new App."""

from __future__ import annotations

import html
import json
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from ground_truth import openapi_spec, validate_exchange
from sandbox_helpers import WebhookReceiver

from bot.appsetup import merge_env
from bot.config import Settings
from bot.signature import verify

REPO = Path(__file__).resolve().parents[1]
MANIFEST = json.loads((REPO / "deploy" / "app-manifest.json").read_text())


def post_manifest(url: str, manifest: dict[str, Any], state: str = "st4te") -> requests.Response:
    return requests.post(
        f"{url}?state={state}", data={"manifest": json.dumps(manifest)}, allow_redirects=False, timeout=30
    )


def manifest_for(name: str, hook: str = "https://bot.example.org/webhook") -> dict[str, Any]:
    return {
        **MANIFEST,
        "name": name,
        "hook_attributes": {"url": hook},
        "redirect_url": "https://bot.example.org/cb?x=1",
    }


def test_manifest_flow_and_conversion_match_githubs_description(sandbox: Any) -> None:
    spec = openapi_spec()
    resp = post_manifest(f"{sandbox.url}/organizations/acme-org/settings/apps/new", manifest_for("AR Flow"))
    assert resp.status_code == 302, resp.text
    location = resp.headers["Location"]
    assert location.startswith("https://bot.example.org/cb?x=1&code=") and location.endswith("&state=st4te")
    code = re.search(r"code=([0-9a-f]+)", location).group(1)

    conv = requests.post(f"{sandbox.api_url}/app-manifests/{code}/conversions", timeout=30)
    assert conv.status_code == 201
    body = conv.json()
    assert validate_exchange(spec, "POST", f"/app-manifests/{code}/conversions", 201, body) == (
        "apps/create-from-manifest"
    )
    assert body["slug"] == "ar-flow" and body["name"] == "AR Flow" and body["owner"]["login"] == "acme-org"
    assert body["permissions"] == MANIFEST["default_permissions"]
    assert body["events"] == MANIFEST["default_events"]
    assert body["pem"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert len(body["webhook_secret"]) == 40 and body["client_secret"]

    again = requests.post(f"{sandbox.api_url}/app-manifests/{code}/conversions", timeout=30)
    assert again.status_code == 404  # a code works once
    validate_exchange(spec, "POST", f"/app-manifests/{code}/conversions", 404, again.json())

    # the App's hook: the manifest's URL and events
    hooks = [h for h in sandbox.state.hooks.values() if h.app_id == body["id"]]
    assert [(h.url, h.events, h.secret) for h in hooks] == [
        ("https://bot.example.org/webhook", MANIFEST["default_events"], body["webhook_secret"])
    ]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"url": "ftp://x"}, "url must be an http(s) URL, got &#39;ftp://x&#39;"),
        ({"default_permissions": {"issues": "all"}}, "default_permissions.issues must be one of read, write"),
        ({"hook_attributes": {}}, "hook_attributes.url must be an http(s) URL, got None"),
        ({"colour": "red"}, "unknown manifest field &#39;colour&#39;"),
    ],
)
def test_sandbox_refuses_a_bad_manifest_naming_the_field(
    sandbox: Any, change: dict[str, Any], message: str
) -> None:
    before = len(sandbox.state.apps)
    resp = post_manifest(f"{sandbox.url}/settings/apps/new", {**manifest_for("AR Bad"), **change})
    assert resp.status_code == 422 and message in resp.text
    assert len(sandbox.state.apps) == before
    resp = requests.post(f"{sandbox.url}/settings/apps/new", data={"manifest": "{"}, timeout=30)
    assert resp.status_code == 422 and "manifest is not valid JSON" in resp.text


def test_merge_env_replaces_its_keys_and_keeps_the_rest() -> None:
    old = "# secrets\nANTHROPIC_API_KEY=k\nAUTORESEARCH_WEBHOOK_SECRET=old\n"
    old += "export AUTORESEARCH_GITHUB_APP_ID=1\n"
    new = merge_env(old, {"AUTORESEARCH_WEBHOOK_SECRET": "s", "AUTORESEARCH_GITHUB_APP_ID": "7", "X": "n"})
    assert new.splitlines() == [
        "# secrets",
        "ANTHROPIC_API_KEY=k",
        "AUTORESEARCH_WEBHOOK_SECRET=s",
        "AUTORESEARCH_GITHUB_APP_ID=7",
        "X=n",
    ]


# --------------------------------------------------------------------------- the CLI, end to end


def cli(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTORESEARCH_")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "app", "create", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def be_the_browser(proc: subprocess.Popen[str]) -> requests.Response:
    """Open the listener's page, submit its form to the (sandbox) GitHub, follow the redirect back."""
    assert proc.stdout is not None
    first = proc.stdout.readline()
    url = re.search(r"open (http://127\.0\.0\.1:\d+/) in a browser", first).group(1)
    page = requests.get(url, timeout=30).text
    action = html.unescape(re.search(r'action="([^"]+)"', page).group(1))
    manifest = html.unescape(re.search(r'name="manifest" value="([^"]+)"', page).group(1))
    return requests.post(action, data={"manifest": manifest}, timeout=30)


def test_app_create_end_to_end(tmp_path: Path, sandbox: Any, sandbox_admin: Any) -> None:
    receiver = WebhookReceiver()
    try:
        out = tmp_path / "deploy"
        out.mkdir()
        (out / ".env").write_text("ANTHROPIC_API_KEY=keep-me\n")
        proc = cli(
            "--github-url",
            sandbox.url,
            "--org",
            "e2e-org",
            "--out",
            str(out),
            "--webhook-url",
            receiver.url,
            "--name",
            "AR End To End",
            "--timeout",
            "60",
            cwd=tmp_path,
        )
        back = be_the_browser(proc)
        assert back.status_code == 200 and "The GitHub App was created" in back.text
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr

        env = read_env(out / ".env")
        assert env["ANTHROPIC_API_KEY"] == "keep-me"
        assert env["AUTORESEARCH_GITHUB_BASE_URL"] == sandbox.api_url
        assert env["AUTORESEARCH_GITHUB_PRIVATE_KEY_FILE"] == str(out / "app.pem")
        app_id = int(env["AUTORESEARCH_GITHUB_APP_ID"])
        secret = env["AUTORESEARCH_WEBHOOK_SECRET"]
        for name in ("app.pem", ".env", "app.json"):
            assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
        record = json.loads((out / "app.json").read_text())
        assert (record["id"], record["slug"], record["owner"]) == (app_id, "ar-end-to-end", "e2e-org")
        pem = (out / "app.pem").read_text()
        for hidden in (secret, pem.strip().splitlines()[1], record["client_secret"]):
            assert hidden not in stdout and hidden not in stderr  # never printed
        assert (
            f"install the App on the repositories the bot serves: {sandbox.url}/apps/ar-end-to-end/" in stdout
        )

        # GitHub pinged the new App's webhook: signed with the written secret
        deadline = time.time() + 20
        while not receiver.received and time.time() < deadline:
            time.sleep(0.05)
        headers, body = receiver.received[0]
        assert headers["X-GitHub-Event"] == "ping"
        assert verify(secret, body, headers["X-Hub-Signature-256"])

        # the bot, on exactly these settings, authenticates as the App once it is installed
        from bot.app import make_forge

        settings = Settings.load(None, env)
        assert settings.github_app_id == app_id and settings.webhook_secret == secret
        repo = sandbox_admin.repo("e2e-org", "proj")
        sandbox_admin.install(app_id, "e2e-org", [repo])
        forge = make_forge(settings)
        try:
            token, _ = forge.installation_token(repo)
            assert token.startswith("ghs_")
            assert forge.bot_login() == "ar-end-to-end[bot]"
            user = sandbox_admin.user("e2e-user")
            sandbox_admin.collaborator(repo, "e2e-user", "write")
            made = requests.post(
                f"{sandbox.api_url}/repos/{repo}/issues",
                json={"title": "speed it up"},
                headers={"Authorization": f"token {user}"},
                timeout=30,
            )
            assert made.status_code == 201
            comment = forge.create_comment(repo, made.json()["number"], "on it")  # writes as the App
            assert comment.user == "ar-end-to-end[bot]"
        finally:
            forge.close()

        # the App's webhook delivers the issue event, signed with the written secret
        deadline = time.time() + 20
        while (
            not any(h["X-GitHub-Event"] == "issues" for h, _ in receiver.received) and time.time() < deadline
        ):
            time.sleep(0.05)
        headers, body = next((h, b) for h, b in receiver.received if h["X-GitHub-Event"] == "issues")
        assert verify(secret, body, headers["X-Hub-Signature-256"])
        assert not verify("another-secret", body, headers["X-Hub-Signature-256"])
        assert json.loads(body)["installation"]["id"] > 0
    finally:
        receiver.stop()


def test_app_create_checks_its_outputs_before_spending_the_code(tmp_path: Path, sandbox: Any) -> None:
    resp = post_manifest(f"{sandbox.url}/settings/apps/new", manifest_for("AR Code Only"))
    code = re.search(r"code=([0-9a-f]+)", resp.headers["Location"]).group(1)
    out = tmp_path / "out"
    out.mkdir()
    (out / "app.pem").write_text("an older App's key\n")
    args = ("--github-url", sandbox.url, "--out", str(out), "--code", code)

    proc = cli(*args, cwd=tmp_path)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert (
        stderr.strip()
        == f"app create: {out / 'app.pem'} exists (another App's key?); move it away or pass --force"
    )
    assert (out / "app.pem").read_text() == "an older App's key\n" and not (out / ".env").exists()

    proc = cli(*args, "--force", cwd=tmp_path)  # the code was not spent by the refusal
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "created GitHub App ar-code-only" in stdout
    assert (out / "app.pem").read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")

    proc = cli(*args, "--force", cwd=tmp_path)  # now it is
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert stderr.startswith("app create: GitHub refused the code (404: Not Found); a code works once")


def test_app_create_without_a_webhook_url_says_what_to_pass(tmp_path: Path) -> None:
    proc = cli("--github-url", "http://127.0.0.1:9", "--out", str(tmp_path), cwd=tmp_path)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert stderr.startswith("app create: no webhook URL: pass --webhook-url https://<your host>/webhook")
    proc = cli("--github-url", "github.com", "--out", str(tmp_path), "--code", "abc", cwd=tmp_path)
    _, stderr = proc.communicate(timeout=60)
    assert (
        proc.returncode == 1
        and stderr.strip() == "app create: --github-url: not an http(s) URL: 'github.com'"
    )
    proc = cli("--github-url", "http://127.0.0.1:9", "--out", str(tmp_path), "--code", "a/b", cwd=tmp_path)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert stderr.strip() == "app create: --code: not a code from GitHub's redirect: 'a/b'"
    proc = cli("--github-url", "http://127.0.0.1:9", "--out", str(tmp_path), "--code", "c0de", cwd=tmp_path)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert stderr.startswith("app create: cannot reach GitHub at http://127.0.0.1:9/api/v3 (")
    assert stderr.strip().endswith(
        "the code stays good for an hour: autoresearch-bot app create --code c0de "
        "(same --github-url and --out)"
    )
    assert not (tmp_path / "app.pem").exists() and not (tmp_path / ".env").exists()


def test_sandbox_refuses_an_app_name_in_use(sandbox: Any) -> None:
    assert post_manifest(f"{sandbox.url}/settings/apps/new", manifest_for("AR Twice")).status_code == 302
    resp = post_manifest(f"{sandbox.url}/settings/apps/new?owner=someone", manifest_for("AR Twice"))
    assert resp.status_code == 422 and "Name &#39;AR Twice&#39; is already in use" in resp.text


def test_listener_refuses_a_foreign_redirect_and_times_out_with_the_way_on(tmp_path: Path) -> None:
    proc = cli(
        "--github-url",
        "http://127.0.0.1:9",
        "--out",
        str(tmp_path),
        "--webhook-url",
        "https://bot.example.org/webhook",
        "--timeout",
        "3",
        cwd=tmp_path,
    )
    assert proc.stdout is not None
    url = re.search(r"open (http://127\.0\.0\.1:\d+/) ", proc.stdout.readline()).group(1)
    page = requests.get(url, timeout=30).text
    assert 'action="http://127.0.0.1:9/settings/apps/new?state=' in page
    manifest = json.loads(html.unescape(re.search(r'name="manifest" value="([^"]+)"', page).group(1)))
    assert manifest == {
        **MANIFEST,
        "hook_attributes": {"url": "https://bot.example.org/webhook", "active": True},
        "redirect_url": f"{url}callback",
    }
    forged = requests.get(f"{url}callback", params={"code": "abc", "state": "not-ours"}, timeout=30)
    assert forged.status_code == 400
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert stderr.startswith(
        f"app create: no redirect from GitHub within 3 s; if the browser shows {url}callback"
    )
    assert not (tmp_path / "app.pem").exists()
