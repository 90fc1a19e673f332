"""bot/artifacts.py: the artifact keys are the ones runs have always stored (docs/ARCHITECTURE.md), and the
typed accessors read and write them through a real Store."""

from __future__ import annotations

from bot import artifacts as a
from bot import waves
from bot.store import Store


def test_keys_are_the_stored_ones():
    assert [
        x.key()
        for x in (a.PROJECT, a.BASELINE, a.FAILURE, a.PROFILE, a.COSTS, a.LOOP, a.FINAL, a.PUBLICATION)
    ] == ["project", "baseline", "failure", "profile", "costs", "loop", "final", "publication"]
    assert [
        x.key(1)
        for x in (
            a.DOSSIER,
            a.CANDIDATES,
            a.CANDIDATES_DONE,
            a.SKIPPED,
            a.RESULTS_MAIN,
            a.DECISION,
            a.STACK,
            a.VERIFICATION,
            a.CHOICE,
        )
    ] == [
        "dossier",
        "candidates",
        "candidates_done",
        "skipped",
        "results:main",
        "decision",
        "stack",
        "verification",
        "choice",
    ]
    assert a.CANDIDATES_DONE.key(3) == "candidates_done@3" and a.RESULTS_MAIN.key(2) == "results:main@2"
    assert a.LOOP.key(4) == "loop"  # not per wave
    # results of experiment main@n are the per-wave results:main
    assert a.results_key(waves.key("main", 2)) == a.RESULTS_MAIN.key(2) == "results:main@2"
    assert a.wave_review_key(2) == "wave:2" and a.refusals_key("h3") == "refusals:h3"
    assert waves.key("verify", 1) == "verify" and waves.key("verify", 2) == "verify@2"


def test_typed_get_and_put_over_the_store(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    run = store.create_run("o/r", 1, "issue", "maria")
    arts = a.RunArtifacts(store, run.id)
    assert arts.get(a.CANDIDATES, 2) == [] and arts.get(a.COSTS) == {} and arts.get(a.DECISION) is None
    arts.put(a.CANDIDATES, [{"name": "c1", "sha": "1" * 40}], 2)
    arts.put(a.DECISION, {"winners": ["c1"]})
    arts.put_results("verify@2", {"x86": {"status": "ok"}})
    arts.put_review(1, {"wave": 1, "next": "continue"})
    arts.put_refusals("h1", [{"path": ".github/x", "reason": "protected"}])
    assert store.get_artifact(run.id, "candidates@2") == [{"name": "c1", "sha": "1" * 40}]
    assert store.get_artifact(run.id, "candidates") is None
    assert arts.get(a.DECISION) == {"winners": ["c1"]} and arts.get(a.DECISION, 2) is None
    assert (
        arts.results("verify@2")
        == {"x86": {"status": "ok"}}
        == store.get_artifact(run.id, "results:verify@2")
    )
    assert arts.review(1) == store.get_artifact(run.id, "wave:1") and arts.review(2) is None
    assert waves.current(arts.raw) == 2 and [r["wave"] for r in waves.records(arts.raw)] == [1]
    assert store.get_artifact(run.id, "refusals:h1") == [{"path": ".github/x", "reason": "protected"}]
    assert sorted(store.artifact_keys(run.id)) == [
        "candidates@2",
        "decision",
        "refusals:h1",
        "results:verify@2",
        "wave:1",
    ]
