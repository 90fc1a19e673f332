"""The demo says when its known outcomes are not met: a non-zero exit and one line of why, first in its
summary (bot/demo.py check_outcomes, the isolation check before anything runs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot import demo

EXPECTED = {
    "s1": ("hana", ("faster",), True),
    "s2": ("fiona", ("slower",), False),
    "s3": ("felix", ("broken",), False),
    "s4": ("gina", ("no_change", "noisy"), False),
}
CANDS = [{"name": f"{who}-x", "sha": sha} for sha, (who, _w, _m) in EXPECTED.items() if who != "gina"]
CANDS += [{"name": "gina-x", "sha": "port", "source": "fork", "fork": {"repo": "gina/x", "sha": "s4"}}]


def _decision(verdicts: dict[str, str], winners: list[str]) -> dict:
    rows = [
        {"candidate": f"{who}-x", "arch": "x86", "metric": "tg", "verdict": v} for who, v in verdicts.items()
    ]
    rows += [
        {"candidate": f"{who}-x", "arch": "x86", "metric": "pp", "verdict": "faster"} for who in verdicts
    ]
    rows += [
        {"candidate": "hana-x", "arch": "arm", "metric": "tg", "verdict": "missing"}
    ]  # arch not measured
    return {"target": "tg", "rows": rows, "winners": winners}


GOOD = {"hana": "faster", "fiona": "slower", "felix": "broken", "gina": "no_change"}


def test_every_known_outcome_met_is_no_failure() -> None:
    assert demo.check_outcomes("done", _decision(GOOD, ["hana-x"]), CANDS, {"pr_number": 3}, EXPECTED) == []


def test_every_variant_failed_is_said_first() -> None:
    every = dict.fromkeys(GOOD, "baseline_failed")
    out = demo.check_outcomes("done", _decision(every, []), CANDS, {"kind": "none"}, EXPECTED)
    assert out[0] == "every variant failed (baseline_failed)"
    assert "planted winner not found: hana got baseline_failed, expected faster" in out


def test_planted_winner_missed_bug_uncaught_neutral_called_winner_no_pr() -> None:
    bad = {"hana": "noisy", "fiona": "no_change", "felix": "faster", "gina": "no_change"}
    out = demo.check_outcomes(
        "failed", _decision(bad, ["felix-x", "gina-x"]), CANDS, {"kind": "none"}, EXPECTED
    )
    assert out[0] == "the run ended failed, not done"
    assert "planted winner not found: hana is not among the winners" in out
    assert "planted slowdown not caught: fiona got no_change, expected slower" in out
    assert "planted bug not caught: felix got faster, expected broken" in out
    assert "gina was called a winner" in out and "no draft PR for the winners (none)" in out
    gone = demo.check_outcomes(
        "done",
        _decision(GOOD, ["hana-x"]),
        CANDS[:3] + [{"name": "stack", "sha": "s4", "source": "stack"}],
        {"pr_number": 1},
        EXPECTED,
    )
    assert gone == ["gina was not measured"]


def test_demo_without_bubblewrap_exits_non_zero_and_its_first_line_says_why(tmp_path: Path) -> None:
    """bwrap not on PATH: nothing is started (no sandbox, no run), exit 2, the first line names the cause."""
    (tmp_path / "bin").mkdir()
    env = {**os.environ, "PATH": str(tmp_path / "bin")}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--workdir", str(tmp_path / "demo")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith(
        "DEMO FAILED: isolation unavailable, nothing was run: bubblewrap (bwrap) is not installed"
    )
    assert "Traceback" not in done.stdout + done.stderr and not (tmp_path / "demo").exists()


def test_check_edits_names_every_fork_edit_that_no_longer_applies(tmp_path: Path) -> None:
    """What scripts/upgrade_llamacpp.sh checks first on a new llama.cpp: every fork anchor, exactly once."""
    from bot import llamacpp_forks as forks

    for path in {p for edits, _m, _w in forks.DEMO_FORKS.values() for p, _a, _r in edits}:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("")
    problems = forks.check_edits(tmp_path)
    assert {p.split(":")[0] for p in problems} == set(forks.DEMO_FORKS)  # every fork's edit is reported
    texts = {}
    for edits, _m, _w in forks.DEMO_FORKS.values():
        for path, anchor, _r in edits:
            texts.setdefault(path, []).append(anchor)
    for path, anchors in texts.items():  # a tree that holds every anchor once: nothing to report
        (tmp_path / path).write_text("\n".join(dict.fromkeys(anchors)))
    # (gina's anchor is also inside fiona's, so this synthetic tree holds it twice)
    assert [p for p in forks.check_edits(tmp_path) if not p.startswith("gina")] == []
