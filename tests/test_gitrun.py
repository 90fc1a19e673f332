"""The one git runner (sky/gitrun.py, imported by the bot as bot.gitutil and by the VM driver): its hardening
on real git repositories."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bot import gitutil, publish
from bot.research import forks
from tests.engine_helpers import DRIVER

sys.path.insert(0, str(DRIVER.parent))
import driver  # noqa: E402  (sky/driver.py, stdlib only)

IDENTITY = ("-c", "user.name=t", "-c", "user.email=t@t")


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    gitutil.run(None, "init", "-q", "-b", "main", str(path))
    (path / "a.txt").write_text("a\n")
    gitutil.run(path, "add", "a.txt")
    gitutil.run(path, *IDENTITY, "commit", "-qm", "first")
    return path


def test_one_runner_and_one_error_class_on_both_sides() -> None:
    shared = DRIVER.parent / "gitrun.py"
    assert Path(driver.gitrun.__file__).resolve() == shared
    assert Path(sys.modules["autoresearch_sky_gitrun"].__file__).resolve() == shared
    assert forks.GitError is gitutil.GitError and issubclass(publish.PublishError, gitutil.GitError)
    assert issubclass(gitutil.GitError, RuntimeError)


def test_hooks_never_run_and_nothing_is_signed(repo: Path) -> None:
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\necho ran > {repo / 'hook-ran'}\nexit 1\n")
    hook.chmod(0o755)
    gitutil.run(repo, "config", "commit.gpgsign", "true")
    gitutil.run(repo, "config", "gpg.program", "false")  # signing would fail the commit
    (repo / "a.txt").write_text("b\n")
    gitutil.run(repo, *IDENTITY, "commit", "-qam", "second")
    assert not (repo / "hook-ran").exists()
    assert gitutil.output(repo, "log", "--format=%s").split() == ["second", "first"]


def test_errors_name_the_command_without_credentials(repo: Path) -> None:
    with pytest.raises(gitutil.GitError) as info:
        gitutil.run(repo, "fetch", "https://someone:s3cret-token@127.0.0.1:9/o/r.git", "main", timeout=60)
    text = str(info.value)
    assert text.startswith("git fetch https://***@127.0.0.1:9/o/r.git main failed (128): ")
    assert "s3cret" not in text and info.value.returncode == 128
    with pytest.raises(gitutil.GitError) as info:  # the caller's redaction applies to the whole message
        gitutil.run(repo, "rev-parse", "nope", redact=lambda s: s.replace("nope", "[x]"))
    assert str(info.value).startswith("git rev-parse [x] failed (128): fatal: ") and "nope" not in str(
        info.value
    )
    assert gitutil.run(repo, "rev-parse", "nope", check=False).returncode == 128
    assert not gitutil.ok(repo, "cat-file", "-e", "HEAD:missing") and gitutil.ok(
        repo, "cat-file", "-e", "HEAD:a.txt"
    )


def test_a_hung_git_times_out_as_a_git_error(repo: Path) -> None:
    with pytest.raises(gitutil.GitError, match=r"^git -c alias.nap=!sleep 30 nap timed out after 0.5 s$"):
        gitutil.run(repo, "-c", "alias.nap=!sleep 30", "nap", timeout=0.5)


def test_isolated_ignores_the_users_global_config(repo: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[alias]\n\twho = log -1 --format=%s\n")
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    assert gitutil.output(repo, "who", env=env, isolated=False).strip() == "first"
    assert gitutil.run(repo, "who", env=env, check=False).returncode != 0


def test_input_text_and_bytes(repo: Path) -> None:
    sha = gitutil.output(repo, "hash-object", "-w", "--stdin", input="héllo\n").strip()
    assert gitutil.run(repo, "cat-file", "blob", sha).stdout == "héllo\n".encode()
    assert gitutil.output(repo, "cat-file", "blob", sha) == "héllo\n"
    assert gitutil.output(repo, "hash-object", "--stdin", input=b"h\xe9llo\n").strip() != sha
