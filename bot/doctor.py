"""`autoresearch-bot doctor` and `autoresearch-bot config validate`: find misconfigurations before a run does.

Each check yields (ok, what, fix). Nothing here launches anything; SkyPilot is used offline (its schema and
catalog code), so those checks run the same on a laptop, in the image and in CI. With GitHub App auth the
doctor asks GitHub (the configured API URL) about the App: its JWT accepted (the key is the App's), its
permissions and events against deploy/app-manifest.json's, and its installations.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import configyaml
from .config import PROJECT_CONFIG_FILE, ConfigError, ProjectConfig, Settings


@dataclass
class Check:
    ok: bool
    what: str
    fix: str = ""
    warn: bool = False  # not ok, but not a problem either: something some projects need (counted apart)

    def line(self) -> str:
        if self.ok:
            return f"ok    {self.what}"
        return f"{'warn' if self.warn else 'FAIL'}  {self.what} -> fix: {self.fix}"

    @property
    def problem(self) -> bool:
        return not self.ok and not self.warn


def check_settings(settings: Settings) -> Iterator[Check]:
    yield (
        Check(True, "webhook_secret is set")
        if settings.webhook_secret
        else Check(
            False,
            "webhook_secret is empty: every webhook would be refused",
            "set AUTORESEARCH_WEBHOOK_SECRET to the GitHub App's webhook secret",
        )
    )
    if settings.github_app_id is not None:
        key = settings.github_private_key or ""
        origin = settings.origins.get("github_private_key", "")
        if key.lstrip().startswith("-----BEGIN"):
            # where the PEM came from: a *_FILE variable's file, the variable itself, the settings file
            source = (
                f"read from {origin}"
                if "_FILE=" in origin
                else f"given as PEM text in {origin or 'settings'}"
            )
            yield Check(True, f"GitHub App {settings.github_app_id}: private key {source}")
        elif key and Path(key).is_file() and os.access(key, os.R_OK):
            yield Check(True, f"GitHub App {settings.github_app_id}: private key file {key} is readable")
        else:
            yield Check(
                False,
                f"GitHub App {settings.github_app_id}: private key {key!r} is not a readable file",
                "set AUTORESEARCH_GITHUB_PRIVATE_KEY_FILE to the App's .pem (readable by the bot's user)",
            )
    elif settings.github_token:
        yield Check(True, "GitHub token auth (check runs need a GitHub App)")
    else:
        yield Check(
            False,
            "no GitHub credentials",
            "set AUTORESEARCH_GITHUB_APP_ID and "
            "AUTORESEARCH_GITHUB_PRIVATE_KEY_FILE (or AUTORESEARCH_GITHUB_TOKEN)",
        )
    data = settings.data_path
    probe = data if data.exists() else next((p for p in data.parents if p.exists()), Path("."))
    yield (
        Check(True, f"data_dir {data} is writable")
        if os.access(probe, os.W_OK)
        else Check(
            False, f"data_dir {data} is not writable", f"create it for the bot's user: install -d {data}"
        )
    )


LEVELS = ("none", "read", "write", "admin")


def _level(value: str | None) -> int:
    return LEVELS.index(value) if value in LEVELS else 0


def _load_key(settings: Settings) -> str | None:
    """The App's PEM text (None when it cannot be read: check_settings reports that)."""
    key = settings.github_private_key or ""
    if key.lstrip().startswith("-----BEGIN"):
        return key
    try:
        return Path(key).read_text()
    except (OSError, UnicodeDecodeError):
        return None


def check_app(settings: Settings) -> Iterator[Check]:
    """The GitHub App as GitHub sees it: JWT accepted, permissions and events as the manifest asks,
    installed somewhere, every installation on the App's current permissions."""
    if settings.github_app_id is None:
        return
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from .appsetup import SetupError, load_manifest
    from .forge import ForgeError, PermissionDenied, forge_from_settings

    app_id = settings.github_app_id
    pem = _load_key(settings)
    if pem is None:
        return
    try:
        load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        yield Check(
            False,
            f"GitHub App {app_id}: the private key is not a PEM private key",
            "generate a private key on the App's settings page (Private keys) and point "
            "AUTORESEARCH_GITHUB_PRIVATE_KEY_FILE at the downloaded .pem",
        )
        return
    forge = forge_from_settings(
        base_url=settings.github_base_url, app_id=app_id, private_key=pem, retries=1, timeout=10.0
    )
    try:
        info = forge.app_info()
    except PermissionDenied as exc:
        yield Check(
            False,
            f"GitHub App {app_id}: GitHub rejects the App's JWT ({exc}): the key is not this App's or the "
            "App id is wrong",
            "set AUTORESEARCH_GITHUB_APP_ID to the 'App ID' on the App's settings page and "
            "AUTORESEARCH_GITHUB_PRIVATE_KEY_FILE to a private key generated for that App",
        )
        return
    except ForgeError as exc:
        yield Check(
            False,
            f"GitHub App {app_id}: cannot ask GitHub at {settings.github_base_url} about the App: {exc}",
            "set AUTORESEARCH_GITHUB_BASE_URL to the API URL (github.com: https://api.github.com; "
            "GHES: https://HOST/api/v3) and check that this machine reaches it",
        )
        return
    finally:
        forge.close()
    where = f"{info.html_url} -> Permissions & events"
    yield Check(True, f"GitHub App {info.slug} (id {info.id}): GitHub accepts its JWT")
    try:
        manifest = load_manifest()
    except SetupError as exc:
        yield Check(
            False,
            f"GitHub App {info.slug}: {exc}",
            "pip install 'autoresearch-bot[aws]' (not a partial copy)",
        )
        return
    needed = dict(manifest.get("default_permissions") or {})
    short = False
    for perm, level in sorted(needed.items()):
        have = info.permissions.get(perm)
        if _level(have) < _level(level):
            short = True
            yield Check(
                False,
                f"GitHub App {info.slug}: permission {perm} is {have or 'not granted'}, "
                f"the bot needs {level}",
                f"grant {perm}: {level} in the App's settings ({where}), then accept the new permissions "
                "on each installation",
            )
    if not short:
        yield Check(
            True,
            f"GitHub App {info.slug}: permissions "
            + ", ".join(f"{k}: {v}" for k, v in sorted(needed.items())),
        )
    missing_events = [e for e in manifest.get("default_events") or [] if e not in info.events]
    yield (
        Check(
            False,
            f"GitHub App {info.slug}: not subscribed to the events {', '.join(missing_events)}",
            f"subscribe to {', '.join(missing_events)} in the App's settings "
            f"({where} -> Subscribe to events)",
        )
        if missing_events
        else Check(
            True, f"GitHub App {info.slug}: subscribed to {', '.join(manifest.get('default_events') or [])}"
        )
    )
    if not info.installations:
        yield Check(
            False,
            f"GitHub App {info.slug} is not installed on any account: no repository can use the bot",
            f"install it on the repositories the bot serves: {info.html_url}/installations/new",
        )
        return
    for inst in info.installations:
        behind = sorted(p for p, lv in needed.items() if _level(inst.permissions.get(p)) < _level(lv))
        if behind and not short:
            yield Check(
                False,
                f"GitHub App {info.slug}: installation {inst.id} ({inst.account}) has not accepted "
                f"{', '.join(f'{p}: {needed[p]}' for p in behind)}",
                f"accept the App's new permissions on {inst.account}: Settings -> Applications -> "
                f"{info.slug} -> Review request",
            )
    accounts = ", ".join(sorted(i.account for i in info.installations))
    yield Check(
        True, f"GitHub App {info.slug}: installed on {len(info.installations)} account(s): {accounts}"
    )


def check_files() -> Iterator[Check]:
    from .resources import MissingData, prompts_dir, sky_dir

    for name, find in (("driver files (sky/)", sky_dir), ("prompt templates (prompts/)", prompts_dir)):
        try:
            yield Check(True, f"{name} at {find()}")
        except MissingData as exc:
            yield Check(
                False, f"{name}: {exc}", "pip install 'autoresearch-bot[aws]' (not from a partial copy)"
            )


def check_architectures(settings: Settings) -> Iterator[Check]:
    """Render each arch's task, validate it with SkyPilot (schema, then catalog: instance type, region) and
    quote its price."""
    from .experiments import tasks
    from .experiments.cost import quote_resources
    from .resources import skypilot

    try:
        skypilot()
    except ImportError as exc:
        yield Check(
            False, f"SkyPilot: {exc}", "pip install 'autoresearch-bot[aws]' (or [gcp], [azure], [kubernetes])"
        )
        return
    from .experiments.skypilot_exec import build_task

    spec = {
        "schema": 1,
        "run_id": 0,
        "seed": 1,
        "source": {"url": "https://example.invalid/doctor.git"},
        "baseline": {"name": "baseline", "sha": "0" * 40},
        "candidates": [],
        "project": {"preset": "generic"},
    }
    with tempfile.TemporaryDirectory(prefix="autoresearch-doctor-") as tmp:
        for arch, cfg in settings.architectures.items():
            field = f"architectures.{arch}"
            try:
                files = tasks.write_batch_files(dict(spec, arch=arch), Path(tmp) / arch)
                task = tasks.render_task(dict(spec, arch=arch), cfg, files)
                tasks.validate_task(task)
                built = build_task(task)
            except Exception as exc:  # noqa: BLE001 - every failure is a finding
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                yield Check(
                    False,
                    f"{field}: SkyPilot rejects the task: {first}",
                    f"correct {field} (SkyPilot resource syntax: infra, instance_type, ...)",
                )
                continue
            resources = ", ".join(sorted({str(r) for r in built.resources}))
            yield Check(True, f"{field}: task renders and validates ({resources})")
            quote = quote_resources(cfg)
            if quote.usd_per_hour is None:
                yield Check(
                    False,
                    f"{field}: price unknown ({quote.note}); launches would be refused",
                    f"set {field}.price_per_hour, or fetch SkyPilot's catalog (`sky check`)",
                )
            else:
                yield Check(True, f"{field}: ${quote.usd_per_hour:.4f}/h ({quote.source})")


def check_local(settings: Settings) -> Iterator[Check]:
    """What the local executor needs on this host: a jail that starts (bubblewrap), valgrind for the simulated
    tier; ccache, cmake and ninja, which some projects need (warnings)."""
    import shutil

    from .experiments import jail
    from .resources import sky_module

    if settings.local_trust == "all":
        yield Check(
            False,
            "local executor: local_trust is 'all': candidate code runs with the bot's rights, no jail",
            "set AUTORESEARCH_LOCAL_TRUST=none unless every candidate is trusted code",
            warn=True,
        )
    elif not shutil.which("bwrap"):
        yield Check(
            False,
            "local executor: bubblewrap (bwrap) is not installed: no candidate can run",
            "apt-get install bubblewrap (dnf install bubblewrap)",
        )
    else:
        ok, how = jail.probe()
        yield (
            Check(True, f"local executor: a test jail starts ({how})")
            if ok
            else Check(
                False,
                f"local executor: {how}",
                "a non-root worker needs unprivileged user namespaces (sysctl "
                "kernel.unprivileged_userns_clone=1; Ubuntu 24.04: "
                "kernel.apparmor_restrict_unprivileged_userns=0), or run the worker as root",
            )
        )
    ok, how = sky_module("simulate").available()
    yield (
        Check(True, f"local executor: valgrind for the simulated tier ({how})")
        if ok
        else Check(
            False,
            f"local executor: the simulated tier (simulate.enabled, on by default) cannot run: {how}",
            "apt-get install valgrind",
        )
    )
    for tool, why, fix in (
        (
            "ccache",
            "builds recompile from scratch (build.ccache, the llama.cpp preset's shared cache)",
            "ccache",
        ),
        ("cmake", "the llama.cpp preset cannot build", "cmake"),
        ("ninja", "llama.cpp builds use make (slower incremental builds)", "ninja-build"),
    ):
        path = shutil.which(tool)
        yield (
            Check(True, f"local executor: {tool} at {path}")
            if path
            else Check(
                False, f"local executor: {tool} is not installed: {why}", f"apt-get install {fix}", warn=True
            )
        )


def check_webhook_url(settings: Settings, timeout: float = 5.0) -> Iterator[Check]:
    """public_url + /healthz answers as this bot's does: GitHub's deliveries reach the service (a short
    timeout; this runs before the service is up too, README step 5: run doctor again once it serves)."""
    import json
    import time
    import urllib.error
    import urllib.request

    base = settings.public_url.rstrip("/")
    if not base:
        yield Check(
            False,
            "public_url is not set: comments cannot link to run pages; `app create` needs a webhook URL",
            "set AUTORESEARCH_PUBLIC_URL to the URL GitHub reaches this service at (https://bot.example.org)",
            warn=True,
        )
        return
    url = f"{base}/healthz"
    fix = (
        f"start the web service (autoresearch-bot serve) and make {base} reach it (reverse proxy or port "
        f"forwarding to its bind address): GitHub delivers webhooks to {base}/webhook"
    )
    start = time.monotonic()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=timeout) as resp:
            status, body = resp.status, resp.read(4096)
    except urllib.error.HTTPError as exc:
        yield Check(False, f"webhook URL: {url} answers HTTP {exc.code}", fix)
        return
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        yield Check(False, f"webhook URL: {url} does not answer ({reason})", fix)
        return
    ms = (time.monotonic() - start) * 1000
    try:
        ours = json.loads(body).get("status") == "ok"
    except (ValueError, AttributeError):
        ours = False
    yield (
        Check(True, f"webhook URL: {url} answers (HTTP {status}, {ms:.0f} ms)")
        if ours
        else Check(False, f"webhook URL: {url} answers HTTP {status}, but not as this bot's /healthz", fix)
    )


def run_doctor(config: str | None = None, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    """(exit code, report lines): 0 when every check passed, 1 otherwise, 2 when the settings do not load."""
    try:
        settings = Settings.load(config, env)
    except ConfigError as exc:
        variable = f"AUTORESEARCH_{str(exc.field).split('.')[0].upper()}"
        if exc.problem.startswith(f"cannot read {variable}_FILE="):
            fix = f"point {variable}_FILE at an existing file the bot's user can read"
            if exc.field == "github_private_key":
                fix += " (the App's .pem: `autoresearch-bot app create` writes it)"
        else:
            fix = f"correct `{exc.field}` in the settings file or its {variable} variable"
        return 2, [f"FAIL  settings: {exc} -> fix: {fix}"]
    checks = [
        Check(
            True,
            f"settings load (executor {settings.executor}, "
            f"architectures {', '.join(settings.architectures)})",
        )
    ]
    checks += list(check_settings(settings))
    checks += list(check_app(settings))
    checks += list(check_files())
    from .experiments import registry

    capabilities = registry.get(settings.executor).capabilities
    if capabilities.jail:  # candidate code runs on this host
        checks += list(check_local(settings))
    if capabilities.archs == "configured":  # SkyPilot resources, priced
        checks += list(check_architectures(settings))
    checks += list(check_webhook_url(settings))
    lines = [c.line() for c in checks]
    problems = sum(c.problem for c in checks)
    lines.append(f"{problems} problem(s)" if problems else "all checks passed")
    return (1 if problems else 0), lines


def validate_project_file(path: str | None, config: str | None = None) -> tuple[int, str]:
    """`config validate [file]`: the project config as the bot would read it (presets, architectures). Every
    problem at once, one line each, `file:line: field: problem` (unknown fields with a did-you-mean)."""
    path = path or PROJECT_CONFIG_FILE
    try:
        with open(path, "rb") as f:
            raw = f.read(configyaml.MAX_BYTES + 1)
    except OSError as exc:
        return 2, f"{path}: cannot read: {exc.strerror}"
    if len(raw) > configyaml.MAX_BYTES:
        return 1, f"{path}: is over {configyaml.MAX_BYTES:,} bytes; a config may have at most that"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return 1, f"{path}: not UTF-8 text (byte {exc.start})"
    known: list[str] | None
    try:
        known = list(Settings.load(config).architectures)
    except ConfigError:
        known = None  # the bot's settings are not here: architectures are not checked against them
    try:
        project = ProjectConfig.from_yaml(text, known)
    except ConfigError as exc:
        errors = sorted(exc.errors, key=lambda e: e.line or 0)
        lines = []
        for e in errors:
            where = f"{path}:{e.line}" if e.line else path
            field = "" if e.field in ("", PROJECT_CONFIG_FILE) else f"{e.field}: "
            lines.append(f"{where}: {field}{e.problem}")
        if len(errors) > 1:
            lines.append(f"{path}: {len(errors)} problems")
        return 1, "\n".join(lines)
    return 0, (
        f"{path}: ok (preset {project.preset}, target {project.target}, "
        f"architectures {', '.join(project.architectures)})"
    )


__all__ = ["Check", "check_app", "check_local", "check_webhook_url", "run_doctor", "validate_project_file"]
