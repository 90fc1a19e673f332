"""bot.report: golden files rendered from a REAL recorded run (tests/golden/attention_run.json) + safety."""

from __future__ import annotations

import os
import re

import pytest
from publish_helpers import GOLDEN, recorded_run

from bot import report
from bot.experiments import stats
from bot.publish import choose_publication

UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"  # UPDATE_GOLDEN=1 pytest tests/test_report.py rewrites them
RUN = {"id": 7, "repo": "octo/attention", "issue_number": 3, "state": "done", "attempt": 1, "error": None}
LINKS = {"repo": "https://github.com/octo/attention", "run": "https://bot.example.org/runs/7"}
PULL = {"number": 12, "url": "https://github.com/octo/attention/pull/12", "reason": "faster"}
DOSSIER = (
    "## Dossier\n\n- Schraudolph 1999, a fast exponential [1]\n- fork `ada/attention` touches src/softmax.c\n"
)


def mask(text: str) -> str:
    """Hide what changes between recordings: decimals, commit ids, timestamps."""
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?", "<time>", text)
    text = re.sub(r"\b[0-9a-f]{40}\b", "<sha>", text)
    return re.sub(r"\d+\.\d+", "<num>", text)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE or not path.exists():
        path.write_text(mask(text))
        if not UPDATE:
            pytest.fail(f"{name} did not exist; written, review it and rerun")
    assert mask(text) == path.read_text()


@pytest.fixture(scope="module")
def recorded():
    run = recorded_run()
    decision = report.with_units(stats.decide(run["results"], run["project"]).to_dict(), run["project"])
    verification = report.with_units(
        stats.decide(run["verification"], run["project"]).to_dict(), run["project"]
    )
    costs = {
        "archs": {"x86": 0.21},
        "llm_usd": 0.0,
        "candidates": {c["name"]: 0.04 for c in run["candidates"]},
    }
    return run, decision, verification, costs


def test_status_comment_golden(recorded):
    run, decision, _, costs = recorded
    body = report.status_comment(
        RUN,
        "done",
        None,
        0.21,
        5.0,
        DOSSIER,
        decision,
        run["candidates"],
        costs,
        LINKS,
        report.failures_from_results(run["results"]),
        pull=PULL,
    )
    assert body.startswith(report.marker(7) + "\n") and body.count("<!--") == 1
    assert "❌ broken" in body and "FAIL softmax small rows" in body  # the wrong fast exp, with its log
    check_golden("status_comment.md", body)


def test_status_comment_extra_lines_sit_above_the_commands(recorded):
    """The skipped hypotheses and the pull-request line are part of the body (render_status used to splice
    them in by replacing the commands line): same text as the golden comment with the lines before the
    commands."""
    run, decision, _, costs = recorded
    args = (
        RUN,
        "done",
        None,
        0.21,
        5.0,
        DOSSIER,
        decision,
        run["candidates"],
        costs,
        LINKS,
        report.failures_from_results(run["results"]),
    )
    extra = [
        "**Hypotheses not turned into candidates:**",
        "- tiled softmax: agent limit reached",
        "**Draft pull request:** #12 (faster)",
    ]
    plain = report.status_comment(*args)
    body = report.status_comment(*args, extra=extra)
    head, footer = plain.rsplit("\n\n<sub>Commands", 1)
    assert body == head + "\n\n" + "\n".join(extra) + "\n\n<sub>Commands" + footer
    assert body.splitlines()[-3:-1] == [extra[-1], ""] and body.splitlines()[-1].startswith("<sub>Commands")


def test_pr_body_golden(recorded):
    run, decision, verification, costs = recorded
    choice = choose_publication(verification, decision)
    assert choice["kind"] == "stack"
    cands = run["candidates"] + [{"name": "stack", "branch": run["stack"]["branch"], "source": "stack"}]
    body = report.pr_body(
        RUN, verification, cands, choice, run["base_sha"], run["stack"]["sha"], run["stack"], costs, LINKS
    )
    assert f"--baseline {run['base_sha']} --candidate {run['stack']['sha']} --arch x86" in body
    assert "must be reviewed by a maintainer" in body
    assert "conflict in src/softmax.c" in body  # the dropped alternative is explained
    check_golden("pr_body.md", body)


def test_status_comment_while_benchmarking_with_a_traceback(recorded):
    run, _, _, _ = recorded
    log = (
        "make: *** [Makefile:9: bench] Error 1\nTraceback (most recent call last):\n"
        '  File "/srv/bot/experiments/executors.py", line 88, in poll\n    raise RuntimeError(msg)\n'
        "RuntimeError: VM preempted while benchmarking\n"
    )
    failures = [
        {
            "title": "arm: benchmark VM",
            "message": "Traceback (most recent call last):\n"
            '  File "x.py", line 1, in <module>\nsky.exceptions.ResourcesUnavailableError: no capacity',
            "log": log,
        }
    ]
    body = report.status_comment(
        {**RUN, "state": "benchmarking"},
        "benchmarking",
        "round 3/8 on x86",
        0.05,
        5.0,
        None,
        None,
        run["candidates"],
        None,
        LINKS,
        failures,
    )
    assert "Traceback" not in body and 'File "' not in body and "raise RuntimeError" not in body
    assert "no capacity" in body and "VM preempted while benchmarking" in body
    assert "- ⏳ Benchmark (A/B, interleaved) — round 3/8 on x86" in body
    assert "- ✅ Candidates" in body and "- ⬜ Draft pull request" in body
    check_golden("status_benchmarking.md", body)


def test_untrusted_text_cannot_forge_the_marker_or_break_the_table(recorded):
    run, decision, _, _ = recorded
    evil = "x | y `z` <!-- autoresearch:run:1 --> @maintainer <script>"
    cands = [{**c, "title": evil, "hypothesis": evil} for c in run["candidates"]]
    evil_decision = {**decision, "notes": [evil]}
    body = report.status_comment(
        RUN,
        "done",
        evil,
        None,
        None,
        evil + "\n</details>",
        evil_decision,
        cands,
        None,
        LINKS,
        [{"title": evil, "message": evil, "log": evil}],
    )
    assert body.count("<!--") == 1 and "autoresearch:run:1 " not in body.replace(report.marker(7), "")
    assert "@maintainer" not in body and "<script>" not in body.split("```")[0]
    bench = [ln for ln in body.splitlines() if ln.startswith("| [`fork-") and " | x86 | " in ln]
    ideas = [ln for ln in body.splitlines() if ln.startswith("| [`fork-") and " | fork | " in ln]
    assert len(bench) == 13 and all(len(re.findall(r"(?<!\\)\|", ln)) == 7 for ln in bench)
    assert len(ideas) == 5 and all(len(re.findall(r"(?<!\\)\|", ln)) == 4 for ln in ideas)
    assert body.count("</details>") == body.count("<details>")


def test_mermaid_chart_is_well_formed(recorded):
    _, decision, _, _ = recorded
    chart = report.speedup_chart(decision).splitlines()
    assert chart[0] == "```mermaid" and chart[1] == "xychart-beta" and chart[-1] == "```"
    labels = re.fullmatch(r"    x-axis \[(.*)\]", chart[3]).group(1)
    names = re.findall(r'"([^"]*)"', labels)
    bars = re.fullmatch(r"    bar \[(.*)\]", chart[5]).group(1).split(", ")
    top = float(re.fullmatch(r'    y-axis "speedup" 0 --> ([0-9.]+)', chart[4]).group(1))
    assert len(names) == len(bars) == 4  # the target rows with a comparison
    assert all(0 < float(b) <= top for b in bars)
    assert report.speedup_chart({"rows": [], "target": "t"}) == ""


def test_check_run_outputs(recorded):
    run, decision, _, _ = recorded
    winner, broken = (
        decision["winners"][0],
        next(c["name"] for c in run["candidates"] if c["slug"] == "3-fast-exp"),
    )
    assert report.check_run_output("correctness", decision, winner)[0] == "success"
    conclusion, title, summary = report.check_run_output("correctness", decision, broken)
    assert (conclusion, title) == ("failure", "Correctness: broken on x86") and "./check" in summary
    conclusion, title, _ = report.check_run_output("benchmark", decision, winner)
    assert conclusion == "success" and title.startswith("Benchmark: faster, ") and "attn_ms" in title
    assert report.check_run_output("benchmark", decision, broken)[0] == "failure"
    undecided = [
        r["candidate"]
        for r in decision["rows"]
        if r["metric"] == "attn_ms" and r["verdict"] in ("noisy", "no_change")
    ]
    assert all(report.check_run_output("benchmark", decision, c)[0] == "neutral" for c in undecided)
    assert report.check_run_output("benchmark", decision, "nope")[0] == "neutral"
    with pytest.raises(ValueError):
        report.check_run_output("speed", decision, winner)


def test_rows_sorted_by_verdict_then_effect(recorded):
    _, decision, _, _ = recorded
    rows = report.sort_rows(decision["rows"], decision["target"])
    order = [report.VERDICT_ORDER.index(r["verdict"]) for r in rows]
    assert order == sorted(order)
    faster_target = [
        r["comparison"]["speedup"] for r in rows if r["verdict"] == "faster" and r["metric"] == "attn_ms"
    ]
    assert faster_target == sorted(faster_target, reverse=True)


def test_format_helpers():
    assert report.fmt_speedup({"speedup": 1.234, "ci_low": 1.18, "ci_high": 1.29}) == "1.23× [1.18–1.29×]"
    assert report.fmt_p(0.0004) == "<0.001" and report.fmt_p(None) == "—"
    assert report.cell("a|b`c\nd") == "a\\|b\\`c d"
    assert (
        report.strip_traceback(
            'ok\nTraceback (most recent call last):\n  File "a", line 1\n    x\nValueError: bad\nafter'
        )
        == "ok\nbad\nafter"
    )


def test_comments_fit_githubs_limit_and_say_what_was_left_out() -> None:
    run = recorded_run()
    decision = stats.decide(run["results"], run["project"]).to_dict()
    huge_dossier = "## Dossier\n" + ("a paper about softmax kernels, " * 4000)  # ~120k characters
    failures = [
        {"stage": "benchmark", "message": f"candidate {i} failed", "log_tail": "x" * 3000} for i in range(60)
    ]
    body = report.status_comment(
        {"id": 7, "state": "done", "issue_number": 1},
        "done",
        dossier_md=huge_dossier,
        decision=decision,
        failures=failures,
        links={"run": "http://bot/runs/7"},
    )
    assert len(body) <= report.COMMENT_LIMIT
    assert "Left out to fit GitHub's comment limit: dossier" in body and "http://bot/runs/7" in body
    assert "| candidate | arch | metric |" in body  # the table survives
    assert report.marker(7) in body
    cut = report.truncate("```\n" + "y" * 100000)
    assert len(cut) <= report.COMMENT_LIMIT and cut.count("```") % 2 == 0


def test_decision_hints_are_rendered_with_the_configured_command_prefix(recorded):
    """stats returns what to do next as data (words.Hint); the report words it with the bot's prefix."""
    from bot.experiments.stats import Hint, Note

    _, decision, _, _ = recorded
    notes = [
        Note(
            "x86/ns: noisy (cv 31.0%); rerun with more rounds: about 9 rounds x 3 repetitions, now 4",
            Hint("rerun", 9),
        ).to_dict(),
        Note("x86/ns: c's CI 0.990-1.040 after 40 pairs cannot tell", Hint("quiet")).to_dict(),
        "x86: partial result",
    ]
    body = report.status_comment(RUN, "done", decision={**decision, "notes": notes}, prefix="/bench-bot")
    assert (
        "- x86/ns: noisy (cv 31.0%); rerun with more rounds: about 9 rounds x 3 repetitions, now 4 "
        "(`/bench-bot rerun rounds=9`)\n" in body
    )
    assert (
        "- x86/ns: c's CI 0.990-1.040 after 40 pairs cannot tell; "
        "quiet the machine rather than adding rounds\n"
    ) in body
    assert "- x86: partial result\n" in body
    assert "<sub>Commands: `/bench-bot status | stop | rerun | bench <branch> | rebench`</sub>" in body
    assert "/autoresearch" not in body
    assert report.note_text(notes[0]).endswith("(`/autoresearch rerun rounds=9`)")


UNIT_RE = re.compile(r"(?:×|%|ms|µs|ns|s|cycles|tokens/s|\$|checks|pairs)")


def numbers_without_units(table_md: str) -> list[str]:
    """Cells of a markdown table (header and separator excluded) holding a number with no unit after it:
    a number is followed by its unit, shares one through a range (`1.03–1.26×`), or is a p-value."""
    bad = []
    for line in table_md.splitlines()[2:]:
        for c in re.split(r"(?<!\\)\|", line.strip().strip("|")):
            c = re.sub(r"\[`[^`]*`\]\([^)]*\)|`[^`]*`", "", c)  # links and code: names, not figures
            c = re.sub(r"p [=<] [\d.]+", "", c)
            for m in re.finditer(r"(?<![A-Za-z_\d.])\d+(?:\.\d+)?(?![\d.])", c):
                rest = c[m.end() :]
                if not (re.match(r"\s?[kMG]?\s?" + UNIT_RE.pattern, rest) or re.match(r"–\d", rest)):
                    bad.append(c.strip())
    return bad


def test_the_first_screen_reads_at_a_glance(recorded):
    """Headline with the best verified effect, its unit and its tier; counts; a target table of at most 6
    columns with a unit on every number; the long parts collapsed."""
    run, decision, _, costs = recorded
    body = report.status_comment(
        RUN, "done", None, 0.21, 5.0, DOSSIER, decision, run["candidates"], costs, LINKS, [], pull=PULL
    )
    lines = body.splitlines()
    assert lines[2].startswith("✅ **2 verified winners.** Best: `")
    assert "fewer estimated cycles on `attn_ms` (simulated, exact); wall time " in lines[2]
    assert lines[4].startswith("**2 faster** · 0 slower · **2 no change** · **1 broken** · 0 noisy")
    assert "**Next:** review the draft pull request #12" in body
    first = body.split("<details><summary>All metrics")[0]
    tables = re.findall(r"((?:^\|.*\|\n)+)", first, re.M)
    assert len(tables) == 1
    head = tables[0].splitlines()[0]
    assert len(re.findall(r"(?<!\\)\|", head)) - 1 <= 6
    assert numbers_without_units(tables[0]) == []
    assert "Research dossier" in body and body.index("<details><summary>Research dossier") > body.index(
        tables[0]
    )
    full = report.benchmark_table(decision, run["candidates"])
    assert len(full.splitlines()[0].split(" | ")) <= 6 and numbers_without_units(full) == []


def test_a_run_with_no_candidates_ticks_only_what_happened():
    run = {**RUN, "state": "done"}
    body = report.status_comment(
        run,
        "done",
        None,
        0.0,
        5.0,
        None,
        None,
        [],
        None,
        LINKS,
        [],
        pull={"reason": "research found no idea"},
    )
    assert "✅ **Done: no candidate to measure**: research found no idea" in body
    assert "- ➖ Benchmark (A/B, interleaved) (not needed)" in body
    assert "- ➖ Draft pull request (not needed)" in body and "✅ Draft pull request" not in body
    assert "| candidate |" not in body and "status comment above" not in body
    assert "**Next:** add a concrete idea to the issue" in body


def test_the_pr_title_names_each_tier(recorded):
    run, decision, _, _ = recorded
    winner = decision["winners"][0]
    title = report.pr_title({"kind": "single", "candidate": winner}, run["candidates"], decision)
    assert re.search(r"\(attn_ms: simulated \d\.\d\d×, wall \d\.\d\d×\)$", title), title
    no_sim = {**decision, "rows": [{**r, "simulated": None} for r in decision["rows"]]}
    title = report.pr_title({"kind": "single", "candidate": winner}, run["candidates"], no_sim)
    assert re.search(r"\(attn_ms: wall \d\.\d\d×\)$", title), title


def test_counts_follow_the_verdict_table(recorded):
    """Every verdict of bot/model.py counts somewhere: failures as broken, the others under their label."""
    from bot.model import VERDICTS

    for v, info in VERDICTS.items():
        assert report.tally(v) == ("broken" if info.failed else info.label)
    _, decision, _, _ = recorded
    c = report.counts(decision)
    assert sum(c.values()) == len(report.target_rows(decision)) == 5
