"""deploy/: the image, its build context, compose services and systemd units; the worker's SIGTERM handling.

The systemd units are checked by systemd's own parser (`systemd-analyze verify`); the image is built and run
where a Docker daemon answers (skipped with the reason otherwise).
"""

from __future__ import annotations

import configparser
import fnmatch
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, buf = [], ""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        buf += line.rstrip()
        if buf.endswith("\\"):
            buf = buf[:-1] + " "
            continue
        word, _, rest = buf.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def test_dockerfile_layers_init_and_no_shared_healthcheck() -> None:
    ins = dockerfile_instructions()
    kinds = [k for k, _ in ins]
    assert "HEALTHCHECK" not in kinds  # web, worker, API server share the image; compose gives each its own
    entry = next(a for k, a in ins if k == "ENTRYPOINT")
    assert '"tini"' in entry and any("tini" in a for k, a in ins if k == "RUN")
    deps = next(i for i, (k, a) in enumerate(ins) if k == "RUN" and "-r /tmp/requirements.txt" in a)
    copies = [(i, a) for i, (k, a) in enumerate(ins) if k == "COPY"]
    assert [a for i, a in copies if i < deps] == ["pyproject.toml ./"]  # dependency layer: only the metadata
    assert any(a.startswith("bot ") for i, a in copies if i > deps)
    install = next(a for k, a in ins if k == "RUN" and "pip install" in a and "--no-deps ." in a)
    assert install
    assert ("ARG", "BOT_UID=10001") in ins and ("USER", "bot") in ins
    assert ("ARG", "CLOUD_EXTRAS=aws") in ins  # the default architectures are on AWS


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule for a path: the last matching pattern wins; a match on a parent folder covers it."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    result = False
    for raw in patterns:
        neg = raw.startswith("!")
        pat = raw[1:] if neg else raw
        variants = {pat}
        if pat.startswith("**/"):
            variants.add(pat[3:])
        if any(fnmatch.fnmatchcase(p, v) for p in prefixes for v in variants):
            result = not neg
    return result


def test_dockerignore_keeps_state_and_secrets_out_of_the_context() -> None:
    patterns = [
        ln.strip()
        for ln in (REPO / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.lstrip().startswith("#")
    ]
    for secret in (
        ".venv/bin/python",
        "var/autoresearch.db",
        "var/demo/x",
        "deploy/.env",
        "deploy/app.pem",
        "app.pem",
        "keys/github.pem",
        ".git/config",
        "bot/__pycache__/x.pyc",
        "sky/__pycache__/d.pyc",
    ):
        assert _ignored(secret, patterns), secret
    copied = [a.split()[:-1] for k, a in dockerfile_instructions() if k == "COPY"]
    for path in [p for args in copied for p in args] + [
        "bot/experiments/tasks.py",
        "sky/driver.py",
        "prompts/dossier.md",
    ]:
        assert not _ignored(path, patterns), path


def test_compose_services() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    svc = compose["services"]
    assert set(svc) == {"web", "worker", "skypilot-api"}
    assert "healthz" in " ".join(svc["web"]["healthcheck"]["test"])
    assert svc["worker"]["healthcheck"] == {"disable": True}
    assert svc["worker"]["command"] == ["autoresearch-bot", "worker"]
    assert svc["worker"]["environment"]["SKYPILOT_API_SERVER_ENDPOINT"] == "http://skypilot-api:46580"
    api_cmd = svc["skypilot-api"]["command"]
    assert api_cmd[:3] == ["sky", "api", "start"] and "--foreground" in api_cmd
    assert "/api/health" in " ".join(svc["skypilot-api"]["healthcheck"]["test"])
    for name, s in svc.items():
        assert s["build"]["args"]["BOT_UID"] == "${BOT_UID:-1000}", name
        for vol in s.get("volumes", []):
            assert not vol.startswith("${HOME}/.sky"), (name, vol)  # SkyPilot state lives in named volumes
    aws = [v for v in svc["skypilot-api"]["volumes"] if ".aws" in v]
    assert aws == ["${HOME}/.aws:/home/bot/.aws:ro"]
    assert not any(".aws" in v for v in svc["worker"]["volumes"])  # credentials stay with the API server
    assert int(svc["worker"]["stop_grace_period"].rstrip("s")) >= 60


def _unit(name: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string((DEPLOY / name).read_text())
    return cp


UNITS = ["autoresearch-web.service", "autoresearch-worker.service", "skypilot-api.service"]


@pytest.mark.parametrize("name", UNITS)
def test_systemd_units_are_hardened(name: str) -> None:
    u = _unit(name)
    assert "network-online.target" in u["Unit"]["Wants"] and "network-online.target" in u["Unit"]["After"]
    s = u["Service"]
    assert s["NoNewPrivileges"] == "yes" and s["ProtectSystem"] == "strict" and s["PrivateTmp"] == "yes"
    assert s["UMask"] == "0077" and s["ReadWritePaths"].strip()


def test_worker_unit_keeps_runners_and_uses_the_api_server_unit() -> None:
    u = _unit("autoresearch-worker.service")
    assert u["Service"]["KillMode"] == "process"  # detached benchmark runners survive a restart
    assert "skypilot-api.service" in u["Unit"]["After"]
    envs = [
        ln
        for ln in (DEPLOY / "autoresearch-worker.service").read_text().splitlines()
        if ln.startswith("Environment=")
    ]  # a key systemd allows many times
    assert "Environment=SKYPILOT_API_SERVER_ENDPOINT=http://127.0.0.1:46580" in envs
    assert "/srv/autoresearch/var" in u["Service"]["ReadWritePaths"].split()
    assert "--foreground" in _unit("skypilot-api.service")["Service"]["ExecStart"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    """systemd's own parser: unknown keys and bad values are reported (ExecStart pointed at /bin/true and
    User at root, since this machine has neither /srv/autoresearch nor the user)."""
    for name in UNITS:
        text = (DEPLOY / name).read_text()
        lines = []
        for line in text.splitlines():
            if line.startswith("ExecStart="):
                args = line.split(None, 1)[1] if " " in line else ""
                line = f"ExecStart=/bin/true {args}".rstrip()
            elif line.startswith(("User=", "Group=")):
                line = line.split("=")[0] + "=root"
            lines.append(line)
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *[str(tmp_path / n) for n in UNITS]],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "info"},
    )
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, report
    for complaint in ("Unknown key", "Failed to parse", "ignoring"):
        assert complaint not in report, report


def test_worker_stops_at_a_safe_point_on_sigterm(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "AUTORESEARCH_DATABASE": str(tmp_path / "bot.db"),
        "AUTORESEARCH_DATA_DIR": str(tmp_path),
        "AUTORESEARCH_GITHUB_TOKEN": "t",
        "AUTORESEARCH_GITHUB_BASE_URL": "http://127.0.0.1:9",
        "PYTHONPATH": str(REPO),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "worker"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "bot.db").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        time.sleep(1.0)
        assert proc.poll() is None, proc.communicate()[0]
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "SIGTERM: stopping the worker at a safe point" in out


def _docker_daemon() -> str | None:
    if shutil.which("docker") is None:
        return "the docker CLI is not installed"
    p = subprocess.run(
        ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=30
    )
    if p.returncode != 0 or not p.stdout.strip():
        return "no Docker daemon answers: " + (p.stderr.strip().splitlines() or ["docker info failed"])[-1]
    return None


def test_image_builds_and_runs(tmp_path: Path) -> None:
    why = _docker_daemon()
    if why:
        pytest.skip(why)
    tag = f"autoresearch-bot-test:{uuid.uuid4().hex[:8]}"
    try:
        subprocess.run(
            ["docker", "build", "-q", "-f", "deploy/Dockerfile", "-t", tag, "."],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        health = subprocess.run(
            ["docker", "inspect", "--format", "{{json .Config.Healthcheck}}", tag],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert health == "null"
        code = (
            "import bot.resources as r, sky; print(r.sky_dir(), r.prompts_dir(), sky.__file__); "
            "from sky.adaptors import aws; import boto3"
        )
        out = subprocess.run(
            ["docker", "run", "--rm", tag, "python", "-c", code],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        ).stdout
        assert "/bot/_data/sky" in out and "/bot/_data/prompts" in out
        doctor = subprocess.run(  # doctor starts a test jail: the worker service's security options
            [
                "docker",
                "run",
                "--rm",
                *[
                    f"--security-opt={o}"
                    for o in ("seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined")
                ],
                "-e",
                "AUTORESEARCH_WEBHOOK_SECRET=s",
                "-e",
                "AUTORESEARCH_GITHUB_TOKEN=t",
                tag,
                "autoresearch-bot",
                "doctor",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert doctor.returncode == 0 and "all checks passed" in doctor.stdout, doctor.stdout + doctor.stderr
        name = f"ar-test-{uuid.uuid4().hex[:8]}"
        subprocess.run(
            [
                "docker",
                "run",
                "-d",
                "--name",
                name,
                "-e",
                "AUTORESEARCH_GITHUB_TOKEN=t",
                tag,
                "autoresearch-bot",
                "worker",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        time.sleep(5)
        t0 = time.monotonic()
        subprocess.run(["docker", "stop", "-t", "30", name], check=True, capture_output=True, timeout=60)
        assert time.monotonic() - t0 < 20  # stopped on SIGTERM, not killed after the grace period
        code_out = subprocess.run(
            ["docker", "inspect", "--format", "{{.State.ExitCode}}", name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        assert code_out == "0"
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
