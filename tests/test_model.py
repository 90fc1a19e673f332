"""The run model (bot/model.py): one phase table that the store, the pipeline, the stages and the status
comment all read, and verdicts whose strings are what the store and the golden files hold."""

from __future__ import annotations

import json

import pytest

from bot import report, stages
from bot.config import Settings
from bot.model import (
    ACTIVE_PHASES,
    CHECKLIST,
    FAILED_VERDICTS,
    FINAL_PHASES,
    PHASES,
    SEQUENCES,
    Phase,
    Verdict,
    checklist_item,
    title,
)
from bot.pipeline import Pipeline
from bot.store import STATES, Store


def test_phase_strings_are_the_stored_states():
    assert [str(p) for p in Phase] == [
        "queued",
        "researching",
        "implementing",
        "benchmarking",
        "deciding",
        "verifying",
        "reviewing",
        "publishing",
        "done",
        "failed",
        "cancelled",
    ]
    assert STATES == ACTIVE_PHASES + FINAL_PHASES == tuple(Phase)
    assert json.dumps({"state": Phase.DONE}) == '{"state": "done"}'
    assert f"{Phase.REVIEWING:<11}|" == "reviewing  |"


def test_every_sequenced_phase_has_its_stage_and_checklist_item():
    items = {item for item, _ in CHECKLIST}
    for kind, sequence in SEQUENCES.items():
        for phase in sequence:
            assert stages.DEFAULT_STAGES[phase].__name__ == PHASES[phase].stage, (kind, phase)
            assert PHASES[phase].checklist in items, (kind, phase)
    assert set(stages.DEFAULT_STAGES) == {p for p, info in PHASES.items() if info.stage}
    # the final states and queued are no stages and tick no item
    assert [p for p, info in PHASES.items() if info.stage is None] == [Phase.QUEUED, *FINAL_PHASES]


def test_titles_and_checklist_items():
    assert title("verifying") == "Verification" and title(Phase.REVIEWING) == "Wave review"
    assert title("no-such-state") == "no-such-state" and title("done") == "done"
    assert checklist_item("reviewing") == "verify" and checklist_item("queued") is None
    assert checklist_item("publish") == "publish"  # already an item


def test_checklist_of_the_wave_review_ticks_verification():
    lines = report.phase_checklist("reviewing", "wave 1 reviewed").splitlines()
    assert lines[:4] == [
        "- ✅ Research: papers, forks, other backends",
        "- ✅ Candidates",
        "- ✅ Benchmark (A/B, interleaved)",
        "- ✅ Statistics and decision",
    ]
    assert lines[4] == "- ⏳ Stack and re-measure winners — wave 1 reviewed"
    assert lines[5] == "- ⬜ Draft pull request"


def test_verdict_table_matches_the_report():
    assert report.VERDICT_ORDER == (
        "faster",
        "no_change",
        "noisy",
        "not_measurable",
        "disagree",
        "slower",
        "not_timed",
        "broken",
        "build_failed",
        "bench_failed",
        "baseline_failed",
        "missing",
    )
    assert report.FAILED_VERDICTS == {"broken", "build_failed", "bench_failed", "baseline_failed", "missing"}
    assert FAILED_VERDICTS == {
        Verdict.BROKEN,
        Verdict.BUILD_FAILED,
        Verdict.BENCH_FAILED,
        Verdict.BASELINE_FAILED,
        Verdict.MISSING,
    }
    assert report.VERDICT_LABEL["disagree"] == "tiers disagree" and report.VERDICT_ICON["no_change"] == "⚪"


def test_store_reads_states_back_as_phases(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    run = store.create_run("o/r", 1, "issue", "maria")
    assert run.state is Phase.QUEUED and run.active
    store.set_state(run.id, Phase.VERIFYING, stage=Phase.VERIFYING)
    again = store.get_run(run.id)
    assert again.state is Phase.VERIFYING and again.stage == "verifying"
    raw = store.conn.execute("SELECT state, typeof(state) FROM runs WHERE id = ?", (run.id,)).fetchone()
    assert tuple(raw) == ("verifying", "text")
    with pytest.raises(ValueError):
        store.set_state(run.id, "verified")  # type: ignore[arg-type]


def test_pipeline_refuses_a_stage_table_without_a_sequenced_phase(tmp_path):
    settings = Settings(database=str(tmp_path / "db.sqlite"), data_dir=str(tmp_path / "data"))
    store = Store(settings.db_path)
    partial = {p: f for p, f in stages.DEFAULT_STAGES.items() if p != Phase.VERIFYING}
    with pytest.raises(ValueError, match="no stage for phase\\(s\\) verifying"):
        Pipeline(settings, store, None, stages=partial, status_renderer=stages.render_status)  # type: ignore


def test_one_min_effect_default_from_config():
    """stats fell back to min_effect 0.01 where the config says 0.02: every default is now the config's."""
    import inspect

    from bot.config import GENERIC_DEFAULTS, ProjectConfig
    from bot.experiments import stats
    from bot.research import dossier

    default = GENERIC_DEFAULTS["decision"]["min_effect"]
    project = ProjectConfig.from_yaml("preset: llama.cpp\narchitectures: [x86]\n").to_dict()
    assert default == 0.02 == project["decision"]["min_effect"]
    for fn in (stats.compare, stats.compare_paired, dossier.rank):
        assert inspect.signature(fn).parameters["min_effect"].default == default, fn.__name__
    assert stats.DECISION_DEFAULTS is GENERIC_DEFAULTS["decision"]


def test_candidate_round_trips_what_runs_stored():
    from pathlib import Path

    from bot.model import Candidate

    recorded = json.loads((Path(__file__).parent / "golden" / "attention_run.json").read_text())["candidates"]
    for stored in recorded:
        again = Candidate.from_dict(stored).to_dict()
        assert again == stored and list(again) == list(stored)
    odd = {"sha": "a" * 40, "name": "x", "note": "a key no code names"}
    assert list(Candidate.from_dict(odd).to_dict().items()) == list(odd.items())


def test_new_candidates_have_the_shape_of_their_source():
    from bot.model import Candidate

    user = Candidate(name="b", branch="b", sha="1" * 40, source="user", title="branch o/r:b").to_dict()
    assert user == {
        "name": "b",
        "branch": "b",
        "sha": "1" * 40,
        "source": "user",
        "title": "branch o/r:b",
        "hypothesis": None,
        "citations": [],
    }
    stack = Candidate(name="stack", branch="s", sha="2" * 40, source="stack", title="stacked").to_dict()
    assert list(stack) == ["name", "branch", "sha", "source", "title"]
    agent = Candidate(
        name="a", sha="3" * 40, source="agent", hypothesis="h1", wave=2, hot_share=0.4
    ).to_dict()
    assert list(agent) == [
        "name",
        "branch",
        "sha",
        "source",
        "title",
        "hypothesis",
        "citations",
        "fork",
        "wave",
        "base",
        "hot_function",
        "hot_share",
        "amdahl_max",
    ]
    assert (agent["hypothesis"], agent["wave"], agent["hot_share"], agent["fork"]) == ("h1", 2, 0.4, None)


def test_baseline_and_publication_keep_their_stored_shapes():
    from bot.model import Baseline, Publication

    assert Baseline(branch="main", sha="b" * 40).to_dict() == {"branch": "main", "sha": "b" * 40}
    none = Publication(kind="none", reason="no winner", stopped=None).to_dict()
    assert none == {"kind": "none", "reason": "no winner", "stopped": None}
    rebench = Publication(kind="rebench", pr_number=4, base_sha="b" * 40, head_sha="c" * 40).to_dict()
    assert list(rebench) == ["kind", "pr_number", "base_sha", "head_sha"]
    pull = Publication(
        kind="stack",
        pr_number=5,
        pr_url="u",
        head_branch="h",
        head_sha="c" * 40,
        base_sha="b" * 40,
        reason="r",
        waves=[1, 2],
    ).to_dict()
    assert list(pull) == [
        "kind",
        "pr_number",
        "pr_url",
        "head_branch",
        "head_sha",
        "base_sha",
        "reason",
        "waves",
    ]
    for stored in (none, rebench, pull, {"kind": "single", "pr_number": 1, "later": True}):
        assert list(Publication.from_dict(stored).to_dict().items()) == list(stored.items())
    assert Publication.from_dict(pull).waves == [1, 2] and Publication.from_dict(rebench).pr_url is None
