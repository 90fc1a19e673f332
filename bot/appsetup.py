"""`autoresearch-bot app create`: register the bot's GitHub App from the manifest in deploy/ (GitHub's
App-manifest flow) and write the settings the bot reads.

The flow: a small listener on 127.0.0.1 serves a page whose form POSTs the manifest to
<github>/settings/apps/new (or /organizations/<org>/settings/apps/new) with a random `state`; GitHub creates
the App and redirects the browser back to the listener with `code` and `state`; the code is exchanged once
(`POST /app-manifests/{code}/conversions`, bot.forge) for the App's id, private key and webhook secret.
`--code` finishes a flow whose redirect did not reach the listener (a browser on another machine: the code is
in the address bar). Nothing secret is printed; the key and the env file are written with mode 0600, and
everything that could stop the write is checked before the code is spent.
"""

from __future__ import annotations

import html
import json
import os
import secrets
import sys
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .config import ConfigError, Settings
from .forge import AppCredentials, ForgeError, api_url, convert_manifest_code
from .forge.apps import GITHUB_WEB

ENV_KEYS = (
    "AUTORESEARCH_GITHUB_APP_ID",
    "AUTORESEARCH_GITHUB_PRIVATE_KEY_FILE",
    "AUTORESEARCH_WEBHOOK_SECRET",
    "AUTORESEARCH_GITHUB_BASE_URL",
)


class SetupError(Exception):
    """A problem `app create` reports in one line (exit 1)."""


def manifest_path() -> Path:
    from .resources import data_dir

    return data_dir("deploy") / "app-manifest.json"


def load_manifest(path: str | Path | None = None) -> dict[str, Any]:
    path = Path(path) if path else manifest_path()
    try:
        manifest = json.loads(path.read_text())
    except OSError as exc:
        raise SetupError(f"cannot read the App manifest {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise SetupError(f"the App manifest {path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise SetupError(f"the App manifest {path} must be a JSON object")
    return manifest


def build_manifest(
    base: dict[str, Any], webhook_url: str, redirect_url: str, name: str | None = None
) -> dict[str, Any]:
    """The manifest sent to GitHub: deploy/'s, with this deployment's webhook URL and the listener's
    redirect URL (and a name of the user's: App names are unique on a GitHub)."""
    parts = urllib.parse.urlsplit(webhook_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SetupError(f"the webhook URL must be an http(s) URL, got {webhook_url!r}")
    manifest = dict(base)
    manifest["hook_attributes"] = {**dict(base.get("hook_attributes") or {}), "url": webhook_url}
    manifest["hook_attributes"].setdefault("active", True)
    manifest["redirect_url"] = redirect_url
    if name:
        manifest["name"] = name
    return manifest


def new_app_url(github_url: str, org: str | None, state: str) -> str:
    base = github_url.rstrip("/")
    where = f"/organizations/{urllib.parse.quote(org, safe='')}" if org else ""
    return f"{base}{where}/settings/apps/new?state={urllib.parse.quote(state)}"


def form_page(action: str, manifest: dict[str, Any]) -> str:
    """The page whose form the browser POSTs to GitHub (a manifest must come as a form POST)."""
    value = html.escape(json.dumps(manifest), quote=True)
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>Create the GitHub App</title></head><body>'
        "<h1>Create the autoresearch-bot GitHub App</h1>"
        f'<form id="manifest-form" method="post" action="{html.escape(action, quote=True)}">'
        f'<input type="hidden" name="manifest" value="{value}">'
        "<p>GitHub will show the App's name, permissions and events; confirm there.</p>"
        '<button type="submit">Create the GitHub App on GitHub</button></form></body></html>'
    )


@dataclass
class Outputs:
    pem: Path
    env: Path
    record: Path
    key_file_as: str  # the key's path as the bot sees it (AUTORESEARCH_GITHUB_PRIVATE_KEY_FILE)


def plan_outputs(out: str, env_file: str | None, key_file_as: str | None, force: bool) -> Outputs:
    """Where the key, the env file and the App record go; refused before the code is spent when one cannot
    be written."""
    out_dir = Path(out).resolve()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SetupError(f"cannot create {out_dir}: {exc.strerror}") from None
    outputs = Outputs(
        pem=out_dir / "app.pem",
        env=Path(env_file).resolve() if env_file else out_dir / ".env",
        record=out_dir / "app.json",
        key_file_as="",
    )
    outputs.key_file_as = key_file_as or str(outputs.pem)
    if outputs.pem.exists() and not force:
        raise SetupError(f"{outputs.pem} exists (another App's key?); move it away or pass --force")
    for path in (outputs.pem, outputs.env, outputs.record):
        folder = path.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise SetupError(f"cannot write {path}: {folder} is not a writable folder")
        if path.exists() and not os.access(path, os.W_OK):
            raise SetupError(f"cannot write {path}: permission denied")
    return outputs


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600, atomically (a crash leaves the old file or the new one)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def merge_env(existing: str, values: dict[str, str]) -> str:
    """`existing` env-file text with `values` set: their old lines replaced in place, new ones appended,
    every other line kept."""
    lines, seen = [], set()
    for line in existing.splitlines():
        key = line.split("=", 1)[0].strip().removeprefix("export ").strip()
        if "=" in line and key in values:
            if key not in seen:
                lines.append(f"{key}={values[key]}")
                seen.add(key)
            continue
        lines.append(line)
    lines += [f"{k}={v}" for k, v in values.items() if k not in seen]
    return "\n".join(lines) + "\n"


def write_settings(creds: AppCredentials, outputs: Outputs, api_base: str) -> None:
    if creds.webhook_secret is None:
        raise SetupError("GitHub created the App without a webhook secret (the manifest had no webhook URL)")
    _write_private(outputs.pem, creds.pem if creds.pem.endswith("\n") else creds.pem + "\n")
    values = {
        "AUTORESEARCH_GITHUB_APP_ID": str(creds.id),
        "AUTORESEARCH_GITHUB_PRIVATE_KEY_FILE": outputs.key_file_as,
        "AUTORESEARCH_WEBHOOK_SECRET": creds.webhook_secret,
        "AUTORESEARCH_GITHUB_BASE_URL": api_base,
    }
    old = outputs.env.read_text() if outputs.env.exists() else ""
    _write_private(outputs.env, merge_env(old, values))
    record = {
        "id": creds.id,
        "slug": creds.slug,
        "name": creds.name,
        "owner": creds.owner,
        "html_url": creds.html_url,
        "client_id": creds.client_id,
        "client_secret": creds.client_secret,
        "permissions": creds.permissions,
        "events": creds.events,
    }
    _write_private(outputs.record, json.dumps(record, indent=2) + "\n")


class Listener:
    """127.0.0.1:<port>: GET / serves the form page, GET /callback receives GitHub's redirect."""

    def __init__(self, port: int, github_url: str, org: str | None, base_manifest: dict[str, Any], **kw: Any):
        self.state = secrets.token_urlsafe(16)
        self.code: str | None = None
        self.done = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                if url.path == "/":
                    self._send(200, outer.page)
                elif url.path == "/callback":
                    code, state = query.get("code", [""])[0], query.get("state", [""])[0]
                    if not code or not secrets.compare_digest(state, outer.state):
                        self._send(400, "<p>This redirect does not belong to this `app create` (state).</p>")
                        return
                    outer.code = code
                    self._send(200, "<p>The GitHub App was created. Return to the terminal.</p>")
                    outer.done.set()
                else:
                    self._send(404, "<p>Not found</p>")

            def _send(self, status: int, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        try:
            self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        except OSError as exc:
            raise SetupError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
        self.url = f"http://127.0.0.1:{self._server.server_port}/"
        try:
            self.manifest = build_manifest(base_manifest, redirect_url=self.url + "callback", **kw)
        except SetupError:
            self._server.server_close()
            raise
        self.page = form_page(new_app_url(github_url, org, self.state), self.manifest)
        threading.Thread(target=self._server.serve_forever, name="app-create", daemon=True).start()

    def wait(self, timeout: float) -> str | None:
        self.done.wait(timeout)
        return self.code

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def webhook_url_from(args: Any) -> str:
    if args.webhook_url:
        return args.webhook_url
    try:
        public = Settings.load(args.config).public_url
    except ConfigError:
        public = ""
    if not public:
        raise SetupError(
            "no webhook URL: pass --webhook-url https://<your host>/webhook "
            "(or set AUTORESEARCH_PUBLIC_URL; the webhook is <public_url>/webhook)"
        )
    return public.rstrip("/") + "/webhook"


def run_app_create(args: Any) -> int:
    try:
        return _app_create(args)
    except SetupError as exc:
        print(f"app create: {exc}", file=sys.stderr)
        return 1


def _app_create(args: Any) -> int:
    github_url = args.github_url.rstrip("/")
    try:
        api_base = api_url(github_url)
    except ValueError as exc:
        raise SetupError(f"--github-url: {exc}") from None
    outputs = plan_outputs(args.out, args.env_file, args.key_file_as, args.force)
    code = args.code
    if code is not None and not code.replace("-", "").replace("_", "").isalnum():
        raise SetupError(f"--code: not a code from GitHub's redirect: {code!r}")
    if not code:
        base = load_manifest(args.manifest)
        listener = Listener(
            args.port, github_url, args.org, base, webhook_url=webhook_url_from(args), name=args.name
        )
        try:
            where = f"organization {args.org}" if args.org else "your account"
            print(
                f"open {listener.url} in a browser on this machine to create the App for {where}", flush=True
            )
            print(
                f"(webhook {listener.manifest['hook_attributes']['url']}; waiting up to {args.timeout:.0f} s)"
            )
            code = listener.wait(args.timeout)
        finally:
            listener.close()
        if not code:
            raise SetupError(
                f"no redirect from GitHub within {args.timeout:.0f} s; if the browser shows "
                f"{listener.url}callback?code=CODE&state=..., finish with: autoresearch-bot app create "
                "--code CODE (same --github-url and --out)"
            )
    try:
        creds = convert_manifest_code(api_base, code)
    except ForgeError as exc:
        if exc.status == 0:  # no answer: the code is not spent
            raise SetupError(
                f"cannot reach GitHub at {api_base} ({exc}); the code stays good for an hour: "
                f"autoresearch-bot app create --code {code} (same --github-url and --out)"
            ) from None
        raise SetupError(
            f"GitHub refused the code ({exc}); a code works once and for one hour: run `app create` again"
        ) from None
    write_settings(creds, outputs, api_base)
    print(f"created GitHub App {creds.slug} (id {creds.id}, owner {creds.owner}): {creds.html_url}")
    print(f"wrote {outputs.pem} (private key, mode 0600)")
    print(f"wrote {outputs.env} (App id, key file, webhook secret, API URL; mode 0600)")
    print(f"wrote {outputs.record} (App record with its OAuth client secret; mode 0600)")
    print(f"next: install the App on the repositories the bot serves: {creds.html_url}/installations/new")
    print("then: autoresearch-bot doctor (with the settings from the env file) and start the bot")
    return 0


__all__ = [
    "GITHUB_WEB",
    "Listener",
    "SetupError",
    "build_manifest",
    "load_manifest",
    "merge_env",
    "new_app_url",
    "run_app_create",
]
