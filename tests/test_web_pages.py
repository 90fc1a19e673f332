"""The status pages (bot/web.py, bot/templates): the runs list and a run page worth opening, from a REAL
recorded run (tests/golden/attention_run.json) stored as the pipeline stores it; empty states; escaping."""

from __future__ import annotations

import re

import pytest
from publish_helpers import recorded_run

from bot.experiments import stats
from bot.web import create_app

EVIL = 'x <script>alert(1)</script> <img src=x onerror="alert(2)"> @maintainer'
WEB = "https://forge.example.org"


@pytest.fixture()
def site(bot_store):
    settings, store = bot_store(webhook_secret="s", status_token="tok")
    client = create_app(settings, store, web_base=WEB).test_client()

    def get(path: str):
        return client.get(path, headers={"Authorization": "Bearer tok"})

    get.client = client  # without the token
    return store, get


def seed_finished_run(store) -> int:
    run = recorded_run()
    r = store.create_run("octo/attention", 3, "issue", "maria")
    cands = [dict(c) for c in run["candidates"]]
    cands[2]["title"] = EVIL  # untrusted: a fork's commit subject
    decision = stats.decide(run["results"], run["project"]).to_dict()
    store.put_artifact(r.id, "project", run["project"])
    store.put_artifact(r.id, "candidates", cands)
    store.put_artifact(r.id, "results:main", run["results"])
    store.put_artifact(r.id, "decision", decision)
    store.put_artifact(r.id, "dossier", {"markdown": "## Dossier\n\n- a paper " + EVIL})
    store.put_artifact(
        r.id,
        "publication",
        {"kind": "single", "pr_number": 9, "pr_url": f"{WEB}/octo/attention/pull/9", "reason": "faster"},
    )
    store.add_event(r.id, "progress", "benchmark round 3/4 on x86 " + "y" * 400)
    store.set_state(r.id, "done")
    return r.id


def test_empty_list_says_how_a_run_starts(site):
    _, get = site
    page = get("/").get_data(as_text=True)
    assert "No runs yet" in page and "bench &lt;branch&gt;" in page


def test_run_page_shows_samples_diff_dossier_links_and_escapes(site):
    store, get = site
    run_id = seed_finished_run(store)
    resp = get(f"/runs/{run_id}")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    page = resp.get_data(as_text=True)
    # links: the issue from the forge's web root, the PR by the html_url the store holds
    assert f'href="{WEB}/octo/attention/issues/3"' in page
    assert f'href="{WEB}/octo/attention/pull/9"' in page
    # the summary rendered like GitHub: headline, counts, the target table
    assert "verified winners" in page and "<table>" in page and "ms → " in page
    # per benchmarked candidate a server-side SVG of its paired samples (no JavaScript anywhere)
    svgs = re.findall(r'<svg [^>]*class="pairs"', page)
    benchmarked = [
        n
        for n, v in recorded_run()["results"]["x86"]["variants"].items()
        if v.get("pairs") and n != "baseline"
    ]
    assert len(svgs) == len(benchmarked) == 4
    assert "baseline median" in page and " ms</text>" in page
    assert "<script" not in page.lower() and not re.search(r"<[^>]*\son\w+=", page)
    assert "javascript:" not in page
    assert "&lt;script&gt;" in page  # the evil title shown as text
    assert "Per-function diff" in page and "__expf_fma" in page
    assert "Dossier" in page and "a paper" in page
    assert "FAIL softmax small rows" in page  # the broken candidate's ./check log
    # one link per artifact, each to its own JSON
    links = re.findall(rf'href="(/api/runs/{run_id}/artifacts/[^"]+)"', page)
    assert len(links) == len(set(links)) == len(store.artifact_keys(run_id))
    for link in links:
        body = get(link.replace("%3A", ":")).json
        assert body["run"] == run_id and body["key"] in store.artifact_keys(run_id)
    assert get(f"/api/runs/{run_id}/artifacts/nope").status_code == 404
    assert get.client.get(links[0].replace("%3A", ":")).status_code == 401  # behind the token like the rest
    assert get("/runs/999").status_code == 404


def test_list_links_the_issue_and_pr_and_wraps_long_text(site):
    store, get = site
    run_id = seed_finished_run(store)
    page = get("/").get_data(as_text=True)
    assert f'href="/runs/{run_id}"' in page and f'href="{WEB}/octo/attention/issues/3"' in page
    assert f'href="{WEB}/octo/attention/pull/9"' in page and "2 verified winners" in page
    assert "table-layout:fixed" in page and "overflow-wrap:anywhere" in page  # no column overflows


def test_run_page_empty_states(site):
    store, get = site
    running = store.create_run("octo/attention", 4, "issue", "maria")
    store.set_state(running.id, "benchmarking", stage="benchmark")
    page = get(f"/runs/{running.id}").get_data(as_text=True)
    assert "Still running" in page and 'http-equiv="refresh"' in page and "No candidates" in page
    assert "No dossier yet" in page

    empty = store.create_run("octo/attention", 5, "issue", "maria")
    store.put_artifact(empty.id, "publication", {"kind": "none", "reason": "research found no idea to try"})
    store.set_state(empty.id, "done")
    page = get(f"/runs/{empty.id}").get_data(as_text=True)
    assert "No candidates: research found no idea to try" in page and 'http-equiv="refresh"' not in page
    assert "no candidate to measure" in page and "<svg" not in page
