"""`autoresearch-bot doctor` and `config validate`: each misconfiguration reported with its fix, exit codes.

Doctor runs as a subprocess with SkyPilot's real task and catalog code against a hand-placed catalog under an
isolated HOME (nothing downloaded, no cloud)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sky_catalog_fixture import isolated_env, seed_catalog

from bot.cli import main

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
    assert "bad.yml: architectures: 'sparc' is not configured in the bot" in capsys.readouterr().err
    bad.write_text("benchmark: {rounds: 1")
    assert main(["config", "validate", str(bad)]) == 1
    assert "bad.yml: expected ',' or '}', but got '<stream end>' at line 1" in capsys.readouterr().err
    assert main(["config", "validate", str(tmp_path / "nope.yml")]) == 2
