"""`autoresearch-bot doctor` and `config validate`: each misconfiguration reported with its fix, exit codes.

The GitHub App checks run in-process against the sandbox GitHub (a table: misconfiguration -> FAIL lines).
Otherwise doctor runs as a subprocess with SkyPilot's real task and catalog code against a hand-placed
catalog under an isolated HOME (nothing downloaded, no cloud)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sandbox_helpers import rsa_keypair
from sky_catalog_fixture import isolated_env, seed_catalog

from bot.cli import main
from bot.doctor import run_doctor

REPO = Path(__file__).resolve().parents[1]


def doctor(home: Path, cwd: Path, **settings: str) -> tuple[int, list[str]]:
    env = isolated_env(home)
    env["PYTHONPATH"] = str(REPO)
    env.update({f"AUTORESEARCH_{k.upper()}": v for k, v in settings.items()})
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "doctor"], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )
    return proc.returncode, proc.stdout.strip().splitlines()


def test_doctor_passes_a_good_setup_and_names_each_problem_with_its_fix(tmp_path: Path) -> None:
    home = tmp_path / "home"
    seed_catalog(home)
    good = {
        "executor": "skypilot",
        "webhook_secret": "s",
        "github_token": "t",
        "data_dir": str(tmp_path / "var"),
    }
    code, lines = doctor(home, tmp_path, **good)
    assert code == 0, lines
    assert lines[-1] == "all checks passed"
    assert "ok    architectures.x86: $0.1785/h (catalog)" in lines
    assert "ok    architectures.arm: $0.1450/h (catalog)" in lines
    assert any(ln.startswith("ok    driver files (sky/) at ") for ln in lines)

    pem = tmp_path / "missing.pem"
    bad = {
        **good,
        "webhook_secret": "",
        "github_token": "",
        "github_app_id": "42",
        "github_private_key": str(pem),
        "architectures": "{x86: {infra: aws/us-east-1, instance_type: c7x.nope},"
        " arm: {infra: k8s, cpus: '4+'},"
        " old: {cloud: aws, region: us-east-1, instance_type: c7g.xlarge}}",
    }
    code, lines = doctor(home, tmp_path, **bad)
    assert code == 1, lines
    fails = [ln for ln in lines if ln.startswith("FAIL")]
    assert len(fails) == 4 and lines[-1] == "4 problem(s)", lines
    assert all(" -> fix: " in ln for ln in fails)
    assert any("webhook_secret is empty" in ln and "AUTORESEARCH_WEBHOOK_SECRET" in ln for ln in fails)
    assert any(f"private key '{pem}' is not a readable file" in ln for ln in fails)
    assert any(
        "architectures.x86: SkyPilot rejects the task: Invalid instance type 'c7x.nope'" in ln for ln in fails
    )
    assert any(
        "architectures.arm: price unknown" in ln and "architectures.arm.price_per_hour" in ln for ln in fails
    )
    assert "ok    architectures.old: $0.1450/h (catalog)" in lines  # cloud/region syntax still accepted

    code, lines = doctor(home, tmp_path, **{**good, "executor": "kubernetes"})
    assert code == 2 and lines[0].startswith("FAIL  settings: executor: must be 'local' or 'skypilot'")


def test_config_validate(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    for key in [k for k in __import__("os").environ if k.startswith("AUTORESEARCH_")]:
        monkeypatch.delenv(key)
    (tmp_path / ".autoresearch.yml").write_text(
        "build: {commands: [make]}\nvalidate: {commands: [./check]}\n"
        "benchmark: {command: ./bench, metrics: [{name: t_ns, higher_is_better: false}], target: t_ns}\n"
    )
    assert main(["config", "validate"]) == 0
    assert "ok (preset generic, target t_ns, architectures x86, arm)" in capsys.readouterr().out
    bad = tmp_path / "bad.yml"
    bad.write_text((tmp_path / ".autoresearch.yml").read_text() + "architectures: [sparc]\n")
    assert main(["config", "validate", str(bad)]) == 1
    assert "bad.yml:4: architectures: 'sparc' is not configured in the bot" in capsys.readouterr().err
    bad.write_text("benchmark: {rounds: 1")
    assert main(["config", "validate", str(bad)]) == 1
    assert "bad.yml:1: expected ',' or '}', but got '<stream end>' at line 1" in capsys.readouterr().err
    assert main(["config", "validate", str(tmp_path / "nope.yml")]) == 2


def test_config_validate_reports_every_mistake_with_its_line_and_a_suggestion(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "three.yml"
    bad.write_text(
        "build: {commands: [make]}\n"
        "benchmark:\n"
        "  command: ./bench\n"
        "  rounds: 1\n"
        "  metrics:\n"
        "    - {name: t_ns, higher_is_better: nope}\n"
        "paths: {alowed: [src/**]}\n"
    )
    assert main(["config", "validate", str(bad)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{bad}:4: benchmark.rounds: must be >= 2, got 1",
        f"{bad}:6: benchmark.metrics[0].higher_is_better: must be of type bool, got str ('nope')",
        f"{bad}:7: paths.alowed: unknown field; did you mean 'allowed'?",
        f"{bad}: 3 problems",
    ]
    bad.write_text("benchmark: " + "[" * 5000 + "]" * 5000 + "\n")  # never an internal error
    assert main(["config", "validate", str(bad)]) == 1
    assert capsys.readouterr().err.strip() == f"{bad}:1: nested more than 32 levels deep"


# ------------------------------------------------------------------ the GitHub App, against the sandbox

NEEDS = {
    "checks": "write",
    "contents": "write",
    "issues": "write",
    "metadata": "read",
    "pull_requests": "write",
}
EVENTS = ["issues", "issue_comment", "pull_request_review", "check_run"]


def app_doctor(tmp_path: Path, sandbox, **env: str) -> tuple[int, list[str]]:
    base = {
        "AUTORESEARCH_WEBHOOK_SECRET": "s3cret",
        "AUTORESEARCH_GITHUB_BASE_URL": sandbox.api_url,
        "AUTORESEARCH_DATA_DIR": str(tmp_path / "var"),
    }
    return run_doctor(None, {**base, **env})


def fails(lines: list[str]) -> list[str]:
    return [ln for ln in lines if ln.startswith("FAIL")]


def test_doctor_names_each_app_misconfiguration_with_its_fix(tmp_path: Path, sandbox, sandbox_admin) -> None:
    """Table: one misconfiguration of the GitHub App path -> exactly the FAIL line(s) the doctor prints."""
    repo = sandbox_admin.repo("doc-org", "proj")

    def app(slug: str, install: bool = True, **kw) -> tuple[int, Path]:
        private, public = rsa_keypair()
        app_id = int(sandbox_admin._call("POST", "/apps", slug=slug, public_key_pem=public, **kw)["id"])
        pem = tmp_path / f"{slug}.pem"
        pem.write_text(private)
        if install:
            sandbox_admin.install(app_id, "doc-org", [repo])
        return app_id, pem

    good_id, good_pem = app("doc-good")
    bare_id, bare_pem = app("doc-bare", install=False)
    few_id, few_pem = app("doc-few", permissions={**NEEDS, "checks": "read", "pull_requests": "read"})
    deaf_id, deaf_pem = app("doc-deaf", events=["issues"])
    late_id, late_pem = app("doc-late", permissions={k: v for k, v in NEEDS.items() if k != "checks"})
    sandbox_admin._call("PATCH", f"/apps/{late_id}", permissions=NEEDS)  # not accepted by the installation
    late_inst = sandbox.state.installation_for_repo(late_id, sandbox.state.repo("doc-org", "proj")).id
    (tmp_path / "not.pem").write_text("hello\n")

    def key(app_id: int, pem: Path) -> dict[str, str]:
        return {"github_app_id": str(app_id), "github_private_key": str(pem)}

    url = sandbox.url
    rows = [
        ("good", key(good_id, good_pem), 0, []),
        (
            "key file missing",
            {"github_app_id": str(good_id), "github_private_key_file": str(tmp_path / "gone.pem")},
            2,
            [
                f"FAIL  settings: github_private_key: cannot read AUTORESEARCH_GITHUB_PRIVATE_KEY_FILE="
                f"{tmp_path / 'gone.pem'}: No such file or directory -> fix: point "
                "AUTORESEARCH_GITHUB_PRIVATE_KEY_FILE at an existing file the bot's user can read (the App's "
                ".pem: `autoresearch-bot app create` writes it)"
            ],
        ),
        (
            "key path unreadable",
            key(good_id, tmp_path),
            1,
            [
                f"FAIL  GitHub App {good_id}: private key '{tmp_path}' is not a readable file -> fix: set "
                "AUTORESEARCH_GITHUB_PRIVATE_KEY_FILE to the App's .pem (readable by the bot's user)"
            ],
        ),
        (
            "not a key",
            key(good_id, tmp_path / "not.pem"),
            1,
            [
                f"FAIL  GitHub App {good_id}: the private key is not a PEM private key -> fix: generate a "
                "private key on the App's settings page (Private keys) and point "
                "AUTORESEARCH_GITHUB_PRIVATE_KEY_FILE at the downloaded .pem"
            ],
        ),
        (
            "another App's key",
            key(good_id, bare_pem),
            1,
            [
                f"FAIL  GitHub App {good_id}: GitHub rejects the App's JWT (401: A JSON web token could not "
                "be decoded): the key is not this App's or the App id is wrong -> fix: set "
                "AUTORESEARCH_GITHUB_APP_ID to the 'App ID' on the App's settings page and "
                "AUTORESEARCH_GITHUB_PRIVATE_KEY_FILE to a private key generated for that App"
            ],
        ),
        (
            "webhook secret empty",
            {**key(good_id, good_pem), "webhook_secret": ""},
            1,
            [
                "FAIL  webhook_secret is empty: every webhook would be refused -> fix: set "
                "AUTORESEARCH_WEBHOOK_SECRET to the GitHub App's webhook secret"
            ],
        ),
        (
            "not installed",
            key(bare_id, bare_pem),
            1,
            [
                "FAIL  GitHub App doc-bare is not installed on any account: no repository can use the bot "
                "-> fix: install it on the repositories the bot serves: "
                f"{url}/apps/doc-bare/installations/new"
            ],
        ),
        (
            "permissions missing",
            key(few_id, few_pem),
            1,
            [
                f"FAIL  GitHub App doc-few: permission {perm} is read, the bot needs write -> fix: grant "
                f"{perm}: write in the App's settings ({url}/apps/doc-few -> Permissions & events), then "
                "accept the new permissions on each installation"
                for perm in ("checks", "pull_requests")
            ],
        ),
        (
            "events missing",
            key(deaf_id, deaf_pem),
            1,
            [
                "FAIL  GitHub App doc-deaf: not subscribed to the events issue_comment, pull_request_review, "
                "check_run -> fix: subscribe to issue_comment, pull_request_review, check_run "
                f"in the App's settings ({url}/apps/doc-deaf -> Permissions & events -> Subscribe to events)"
            ],
        ),
        (
            "installation behind",
            key(late_id, late_pem),
            1,
            [
                f"FAIL  GitHub App doc-late: installation {late_inst} (doc-org) has not accepted checks: "
                "write -> fix: accept the App's new permissions on doc-org: Settings -> Applications -> "
                "doc-late -> Review request"
            ],
        ),
    ]
    for name, settings, want_code, want_fails in rows:
        env = {f"AUTORESEARCH_{k.upper()}": v for k, v in settings.items()}
        code, lines = app_doctor(tmp_path, sandbox, **env)
        assert (code, fails(lines)) == (want_code, want_fails), name
    code, lines = app_doctor(
        tmp_path, sandbox, **{f"AUTORESEARCH_{k.upper()}": v for k, v in key(good_id, good_pem).items()}
    )
    assert [ln for ln in lines if "GitHub App" in ln] == [
        f"ok    GitHub App {good_id}: private key file {good_pem} is readable",
        f"ok    GitHub App doc-good (id {good_id}): GitHub accepts its JWT",
        "ok    GitHub App doc-good: permissions checks: write, contents: write, issues: write, "
        "metadata: read, pull_requests: write",
        "ok    GitHub App doc-good: subscribed to issues, issue_comment, pull_request_review, check_run",
        "ok    GitHub App doc-good: installed on 1 account(s): doc-org",
    ]
    sandbox_admin._call("POST", f"/installations/{late_inst}/accept")  # the owner accepts: fixed
    code, lines = app_doctor(
        tmp_path, sandbox, **{f"AUTORESEARCH_{k.upper()}": v for k, v in key(late_id, late_pem).items()}
    )
    assert code == 0 and lines[-1] == "all checks passed", lines


def test_doctor_says_when_github_is_unreachable(tmp_path: Path, sandbox, sandbox_admin) -> None:
    private, public = rsa_keypair()
    app_id = sandbox_admin.app("doc-far", public)
    pem = tmp_path / "far.pem"
    pem.write_text(private)
    code, lines = app_doctor(
        tmp_path,
        sandbox,
        AUTORESEARCH_GITHUB_APP_ID=str(app_id),
        AUTORESEARCH_GITHUB_PRIVATE_KEY=str(pem),
        AUTORESEARCH_GITHUB_BASE_URL="http://127.0.0.1:9/api/v3",
    )
    (line,) = fails(lines)
    assert code == 1 and line.startswith(
        f"FAIL  GitHub App {app_id}: cannot ask GitHub at http://127.0.0.1:9/api/v3 about the App: "
    )
    assert line.endswith(
        "-> fix: set AUTORESEARCH_GITHUB_BASE_URL to the API URL (github.com: https://api.github.com; "
        "GHES: https://HOST/api/v3) and check that this machine reaches it"
    )


# ------------------------------------------------------------ the host's tools, the webhook URL, the key


def test_doctor_says_where_the_private_key_came_from(tmp_path: Path) -> None:
    from bot.config import Settings
    from bot.doctor import check_settings

    private, _ = rsa_keypair()
    pem = tmp_path / "app.pem"
    pem.write_text(private)
    base = {"AUTORESEARCH_WEBHOOK_SECRET": "s", "AUTORESEARCH_GITHUB_APP_ID": "7"}
    for env, words in [
        (
            {"AUTORESEARCH_GITHUB_PRIVATE_KEY_FILE": str(pem)},
            f"read from AUTORESEARCH_GITHUB_PRIVATE_KEY_FILE={pem}",
        ),
        (
            {"AUTORESEARCH_GITHUB_PRIVATE_KEY": private},
            "given as PEM text in AUTORESEARCH_GITHUB_PRIVATE_KEY",
        ),
        ({"AUTORESEARCH_GITHUB_PRIVATE_KEY": str(pem)}, f"file {pem} is readable"),
    ]:
        lines = [c.line() for c in check_settings(Settings.load(None, {**base, **env}))]
        assert f"ok    GitHub App 7: private key {words}" in lines, lines


def test_doctor_checks_the_local_executors_tools(tmp_path: Path, monkeypatch) -> None:
    """With the tools `make tools` installs, every line is ok; with none on PATH, the two the local executor
    cannot do without (a jail, valgrind) are problems and the rest warnings; a bwrap whose jail does not start
    is a problem with the reason."""
    import os

    from bot.config import Settings
    from bot.doctor import check_local
    from bot.experiments import jail

    settings = Settings.load(None, {})
    jail._probe.cache_clear()
    real = list(check_local(settings))
    assert all(c.ok for c in real), [c.line() for c in real]
    assert real[0].what.startswith("local executor: a test jail starts (bubblewrap")
    empty = tmp_path / "bin"
    empty.mkdir()
    path = os.environ.get("PATH", "")
    monkeypatch.setenv("PATH", str(empty))
    bare = list(check_local(settings))
    assert [c.line().split(" -> ")[0] for c in bare if c.problem] == [
        "FAIL  local executor: bubblewrap (bwrap) is not installed: no candidate can run",
        "FAIL  local executor: the simulated tier (simulate.enabled, on by default) cannot run: valgrind is "
        "not installed (apt-get install valgrind)",
    ]
    assert [c.what.split(":")[1].strip() for c in bare if c.warn] == [
        "ccache is not installed",
        "cmake is not installed",
        "ninja is not installed",
    ]
    fake = empty / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace'\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{empty}{os.pathsep}{path}")
    jail._probe.cache_clear()
    try:
        (broken,) = [c for c in check_local(settings) if "jail" in c.what or "bwrap" in c.what]
    finally:
        jail._probe.cache_clear()
    assert broken.problem and "No permissions to create new namespace" in broken.what, broken.line()
    assert "unprivileged user namespaces" in broken.fix
    (trusting,) = [
        c for c in check_local(Settings.load(None, {"AUTORESEARCH_LOCAL_TRUST": "all"})) if "jail" in c.what
    ]
    assert trusting.warn and "no jail" in trusting.what


def test_doctor_checks_that_the_webhook_url_answers(tmp_path: Path) -> None:
    """public_url + /healthz over loopback: the bot's web service, a stranger, nothing, a silent socket."""
    import http.server
    import socket
    import threading

    from werkzeug.serving import make_server

    from bot.config import Settings
    from bot.doctor import check_webhook_url
    from bot.store import Store
    from bot.web import create_app

    settings = Settings.load(None, {"AUTORESEARCH_DATA_DIR": str(tmp_path)})
    bot_server = make_server("127.0.0.1", 0, create_app(settings, Store(tmp_path / "bot.db")), threaded=True)

    class Stranger(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            code = 200 if self.path == "/other/healthz" else 404
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b"<html>hello</html>")

        def log_message(self, *args) -> None:
            pass

    stranger = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stranger)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: connection refused
    for server in (bot_server, stranger):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:

        def check(url: str) -> list:
            env = {"AUTORESEARCH_PUBLIC_URL": url, "AUTORESEARCH_DATA_DIR": str(tmp_path)}
            return list(check_webhook_url(Settings.load(None, env), timeout=1.0))

        (ok,) = check(f"http://127.0.0.1:{bot_server.server_port}/")
        assert ok.ok and ok.what.startswith(
            f"webhook URL: http://127.0.0.1:{bot_server.server_port}/healthz answers (HTTP 200, "
        )
        for url, words in [
            (f"http://127.0.0.1:{stranger.server_address[1]}", "answers HTTP 404"),
            (
                f"http://127.0.0.1:{stranger.server_address[1]}/other",
                "answers HTTP 200, but not as this bot's",
            ),
            (f"http://127.0.0.1:{closed.getsockname()[1]}", "does not answer ("),
            (f"http://127.0.0.1:{silent.getsockname()[1]}", "does not answer (timed out)"),
        ]:
            (c,) = check(url)
            assert c.problem and words in c.what and "autoresearch-bot serve" in c.fix, c.line()
        (unset,) = list(check_webhook_url(settings))
        assert unset.warn and "public_url is not set" in unset.what
    finally:
        bot_server.shutdown()
        stranger.shutdown()
        silent.close()
        closed.close()


def test_the_manifest_subscribes_to_exactly_the_events_the_bot_handles() -> None:
    """deploy/app-manifest.json's default_events (what doctor compares the App with) are the events the router
    acts on: none missing (GitHub's Re-run button needs check_run), none that nothing handles."""
    from bot.appsetup import load_manifest
    from bot.events import SUBSCRIBED_EVENTS

    assert load_manifest()["default_events"] == list(SUBSCRIBED_EVENTS) == EVENTS
