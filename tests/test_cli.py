"""The command line: --help everywhere, `bench` reproduces a measurement, `status` lists runs, bad settings
exit 2."""

import subprocess
import sys

import make_fork  # examples/make_fork.py (examples/ is on pytest's pythonpath)
import pytest

from bot.cli import build_parser, main

SUBCOMMANDS = ["serve", "worker", "status", "sandbox", "demo", "bench", "doctor", "config"]


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_every_subcommand_has_help(sub, capsys):
    with pytest.raises(SystemExit) as info:
        main([sub, "--help"])
    assert info.value.code == 0
    assert "usage: autoresearch-bot " + sub in capsys.readouterr().out


def test_python_dash_m_bot_works():
    out = subprocess.run(
        [sys.executable, "-m", "bot", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert all(s in out for s in SUBCOMMANDS)


def test_bench_reproduces_a_measurement(tmp_path, capsys):
    history = make_fork.build(tmp_path / "git")
    repo = history.upstream
    subprocess.run(["git", "fetch", "-q", str(history.forks["fork"]), "perf:perf"], cwd=repo, check=True)
    broken = history.commit("3-fast-exp").sha  # its parents hold the two improvements; it breaks ./check
    subprocess.run(["git", "fetch", "-q", str(history.forks["fork"]), broken], cwd=repo, check=True)
    rc = main(
        [
            "bench",
            "--repo",
            str(repo),
            "--baseline",
            history.base_sha,
            "--candidate",
            broken,
            "--candidate",
            history.base_sha,
            "--rounds",
            "2",
            "--workdir",
            str(tmp_path / "wd"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "| candidate | arch | metric |" in out
    assert "broken" in out and "winners: none" in out, out


def test_status_and_bad_settings(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AUTORESEARCH_DATABASE", str(tmp_path / "bot.db"))
    assert main(["status"]) == 0
    assert "no runs yet" in capsys.readouterr().out
    monkeypatch.setenv("AUTORESEARCH_EXECUTOR", "kubernetes")
    assert main(["status"]) == 2
    assert "executor" in capsys.readouterr().err


def test_parser_requires_a_subcommand():
    with pytest.raises(SystemExit):
        build_parser().parse_args([])


class _Stream:
    def __init__(self, tty: bool):
        self.tty, self.text = tty, ""

    def write(self, s: str) -> None:
        self.text += s

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return self.tty


def test_log_lines_are_plain_off_a_terminal(monkeypatch):
    """werkzeug colours its request lines whatever the stream; the bot's log handler drops the codes unless
    it writes to a terminal (and NO_COLOR is unset)."""
    import logging

    from bot.cli import PlainFormatter

    monkeypatch.delenv("NO_COLOR", raising=False)
    coloured = "\x1b[33m\x1b[1mGET /webhook HTTP/1.1\x1b[0m 404"
    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, coloured, None, None)
    assert PlainFormatter("%(message)s", _Stream(tty=False)).format(record) == "GET /webhook HTTP/1.1 404"
    assert PlainFormatter("%(message)s", _Stream(tty=True)).format(record) == coloured
    monkeypatch.setenv("NO_COLOR", "1")
    assert PlainFormatter("%(message)s", _Stream(tty=True)).format(record) == "GET /webhook HTTP/1.1 404"
