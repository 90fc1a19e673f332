"""The wave loop's state machine over a real SQLite store: the review is written once, a restart right after
a "continue" goes on to the next wave's research (nothing reviewed twice), the stop reasons are recorded, and
the status comment (rendered for real) shows a section per wave."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from bot import waves
from bot.config import ProjectConfig, Settings
from bot.pipeline import Pipeline, StageContext
from bot.stages import DEFAULT_STAGES, render_status, review, verify
from bot.store import Store

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Comment:
    id: int
    html_url: str


class CommentLog:
    """The one forge call the review makes (the status comment), kept as text."""

    def __init__(self) -> None:
        self.bodies: dict[str, str] = {}

    def upsert_marked_comment(self, repo: str, number: int, marker: str, body: str) -> Comment:
        self.bodies[marker] = body
        return Comment(1, f"https://example.test/{repo}/issues/{number}#c1")


def _ctx(tmp_path: Path, *, llm: bool = True, max_waves: int = 3) -> StageContext:
    settings = Settings(database=str(tmp_path / "db.sqlite"), data_dir=str(tmp_path / "data"))
    store = Store(settings.db_path)
    forge = CommentLog()
    pipeline = Pipeline(
        settings,
        store,
        forge,
        stages=DEFAULT_STAGES,
        status_renderer=render_status,
        services={"llm_factory": (lambda ctx: object()) if llm else (lambda ctx: None)},
    )
    raw = yaml.safe_load((ROOT / "examples" / "attention" / ".autoresearch.yml").read_text())
    raw["research"]["max_waves"] = max_waves
    project = ProjectConfig.from_dict(raw, list(settings.architectures))
    run = store.create_run("maria/attention", 7, "issue", "maria")
    store.set_state(run.id, "reviewing")
    ctx = StageContext(pipeline, store.get_run(run.id), "test", project=project)
    ctx.put("project", project.to_dict())
    ctx.put("baseline", {"branch": "main", "sha": "b" * 40})
    return ctx


def _measured_wave(ctx: StageContext, n: int, winners: list[str]) -> None:
    cands = [
        {
            "name": w,
            "sha": f"{i}" * 40,
            "branch": f"autoresearch/7/{w}",
            "title": f"idea {w}",
            "source": "agent",
        }
        for i, w in enumerate(winners or ["loser"], 1)
    ]
    ctx.put(waves.key("candidates", n), cands)
    ctx.put(waves.key("decision", n), {"rows": [], "winners": winners, "target": "attn_ms", "archs": ["x86"]})


def test_review_is_written_once_and_a_restart_goes_on_to_the_next_wave(tmp_path) -> None:
    ctx = _ctx(tmp_path)
    _measured_wave(ctx, 1, ["w1-fast"])
    verify(ctx)
    assert ctx.artifact("choice")["kind"] == "single"  # one winner: kept as measured, nothing to stack
    assert review(ctx) == "researching"
    rec = ctx.artifact("wave:1")
    assert rec["next"] == "continue" and rec["kept"]["names"] == ["w1-fast"]
    assert rec["best"] == {
        "sha": "1" * 40,
        "branch": "autoresearch/7/w1-fast",
        "wave": 1,
        "label": "wave 1's idea w1-fast",
        "path": [{"wave": 1, "names": ["w1-fast"], "titles": ["idea w1-fast"], "speedup": 1.0}],
    }
    # kill -9 after the review was stored, before the state moved: the stage runs again
    assert waves.current(ctx.artifact) == 2
    assert review(ctx) == "researching"
    assert ctx.artifact("wave:1") == rec and ctx.artifact("wave:2") is None

    # wave 2 is built on wave 1's winner and keeps nothing: the loop stops and says why
    _measured_wave(ctx, 2, [])
    verify(ctx)
    assert ctx.artifact("choice@2")["kind"] == "none"
    assert review(ctx) is None
    rec2 = ctx.artifact("wave:2")
    assert rec2["base"] == {"sha": "1" * 40, "label": "wave 1's idea w1-fast"}
    assert rec2["next"] == "stop" and rec2["stop"] == "no_improvement" and rec2["best"]["wave"] == 1
    loop = ctx.artifact("loop")
    assert loop == {
        "waves": 2,
        "stop": "no_improvement",
        "best_wave": 1,
        "reason": "wave 2 brought no verified improvement (no candidate was correct and "
        "significantly faster)",
    }
    assert review(ctx) is None and ctx.artifact("loop") == loop  # again after a restart: nothing changes

    body = render_status(ctx.pipeline, ctx.store.get_run(ctx.run.id))
    assert "### Wave 1 (built on the baseline)" in body and "kept: idea w1-fast" in body
    assert "### Wave 2 (built on wave 1's idea w1-fast)" in body
    assert "**Stopped after wave 2:** wave 2 brought no verified improvement" in body


def test_without_an_llm_one_wave_and_the_reason(tmp_path) -> None:
    ctx = _ctx(tmp_path, llm=False, max_waves=1)
    _measured_wave(ctx, 1, ["fork-a"])
    verify(ctx)
    assert review(ctx) is None
    loop = ctx.artifact("loop")
    assert loop["stop"] == "max_waves" and loop["best_wave"] == 1
    assert "research.max_waves (1) reached" in loop["reason"] and "no LLM is configured" in loop["reason"]


def test_stop_reasons_name_everything_that_applies() -> None:
    code, reason = waves.stop_reasons(
        wave=1, kept=True, choice_reason="", max_waves=3, has_llm=True, budget_problem=None
    )
    assert code is None and "wave 2 builds on it" in reason
    code, reason = waves.stop_reasons(
        wave=2,
        kept=True,
        choice_reason="",
        max_waves=3,
        has_llm=True,
        budget_problem="the budget: $4.90 of $5.00 spent",
    )
    assert (code, reason) == ("budget", "the budget: $4.90 of $5.00 spent")
    code, reason = waves.stop_reasons(
        wave=1, kept=False, choice_reason="x", max_waves=3, has_llm=False, budget_problem=None
    )
    assert code == "no_improvement" and "no LLM is configured" in reason
