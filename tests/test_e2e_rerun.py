"""A rerun updates the draft PR it opened before, end to end: sandbox GitHub -> signed webhooks -> the bot's
real stages -> sandbox, with the attention project built and measured for real (the simulated tier decides:
exact, so both runs publish the same fork commits).

Issue #20: reruns opened a draft PR each (4 PRs, 2 from reruns on one issue). Here the base moves on between
the runs, so the rerun's head is another commit carrying the same fork commits: the first PR's branch is
force-pushed to it, re-titled and re-described, and no second PR exists.
"""

from __future__ import annotations

import pytest
import yaml
from test_e2e_push import advance, sh, url

from bot.demo import World
from bot.report import pr_marker

pytestmark = pytest.mark.timeout(900)


def test_a_rerun_updates_the_draft_pr_of_the_same_fork_commits(tmp_path):
    world = World(tmp_path / "world")
    try:
        world.add_attention_project()
        clone = tmp_path / "maria"
        sh(tmp_path, "clone", "-q", url(world, world.repo, "maria"), str(clone))
        cfg = yaml.safe_load((clone / ".autoresearch.yml").read_text())
        cfg["benchmark"].update(repetitions=1, rounds=2, min_pairs=2, warmup=0)
        cfg["decision"]["primary"] = "simulated"
        cfg["research"].update(arxiv=False, profile=False, max_waves=1)
        (clone / ".autoresearch.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        sh(clone, "commit", "-qam", "quick measurement")
        sh(clone, "push", "-q", "origin", "HEAD:main")

        world.start_bot()
        store = world.bot.store
        number = world.open_issue("Speed up attention on CPU", "softmax and matmul are hot")
        world.label(number)
        world.wait_deliveries()
        world.bot.worker.tick_commands()
        [first] = store.list_runs()
        assert advance(world, first.id).state == "done"
        repo = world.gh("maria").get_repo(world.repo)
        [pr] = list(repo.get_pulls(state="open"))
        pub1 = store.get_artifact(first.id, "publication")
        assert pub1["pr_number"] == pr.number and pr.head.sha == pub1["head_sha"]

        # the base moves on, then a maintainer asks for a rerun
        (clone / "NOTES.md").write_text("base moves on\n")
        sh(clone, "add", "NOTES.md")
        sh(clone, "commit", "-qm", "notes")
        sh(clone, "push", "-q", "origin", "HEAD:main")
        world.comment(number, "/autoresearch rerun")
        world.wait_deliveries()
        world.bot.worker.tick_commands()
        second = next(r for r in store.list_runs() if r.id != first.id)
        assert second.attempt == 2
        assert advance(world, second.id).state == "done"

        pub2 = store.get_artifact(second.id, "publication")
        assert pub2["kind"] == pub1["kind"] and pub2["head_sha"] != pub1["head_sha"]
        pulls = list(repo.get_pulls(state="all"))
        assert [p.number for p in pulls] == [pr.number]  # no second PR, open or closed
        again = repo.get_pull(pr.number)
        assert pub2["pr_number"] == pr.number and pub2["head_branch"] == pr.head.ref
        assert again.head.sha == pub2["head_sha"] and again.state == "open" and again.draft
        assert pr_marker(second.id) in again.body  # re-described by the rerun
        checks = {c.name for c in repo.get_commit(pub2["head_sha"]).get_check_runs()}
        assert {"autoresearch / correctness", "autoresearch / benchmark"} <= checks
        assert any("updated" in e["message"] for e in store.events(second.id))
    finally:
        world.stop()
