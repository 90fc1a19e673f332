"""Untrusted fork commit titles render as inert text wherever titles are shown (one helper: text.inert).

Rendered with a real CommonMark parser (markdown-it-py, tables on): no link or image comes out of a title, and
the reader sees the title's characters unchanged.
"""

from __future__ import annotations

import html
import re

import pytest
from markdown_it import MarkdownIt

from bot import report
from bot.research.dossier import Dossier, fork_hypothesis, fork_source
from bot.research.forks import ForkCommit
from bot.text import inert, md_cell

EVIL = [
    "Faster softmax ![t](https://evil.example/pixel.png?u=1)",
    "[Security fix: log in here](https://phish.example/login)",
    "see [docs][1]\n\n[1]: https://phish.example",
    "<img src=https://evil.example/p.png> fused <a href='https://phish.example'>x</a>",
    "plain https://phish.example/x and www.phish.example",
    "pipe | in `code` and \\[escaped\\] \\![x](y)",
    "<https://phish.example/autolink>",
]
MD = MarkdownIt("commonmark").enable("table")


def rendered(markdown: str) -> str:
    return MD.render(markdown)


def visible(out: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", out)).replace("\u200b", "")


@pytest.mark.parametrize("title", EVIL)
def test_inert_renders_the_same_characters_and_nothing_live(title):
    line = " ".join(title.split())
    out = rendered(inert(line))
    assert "<img" not in out and "<a " not in out
    assert visible(out).strip() == line
    # GitHub's autolinker needs "http://", "https://" or "www." right before the host: never left intact
    assert not re.search(r"(?i)(https?|ftp)://|www\.", inert(line))


def fork_commit(subject: str) -> ForkCommit:
    return ForkCommit(
        repo="mallory/attention",
        sha="a" * 40,
        subject=" ".join(subject.split()),
        message=subject,
        author="mallory",
        url="https://github.com/mallory/attention/commit/" + "a" * 40,
        files=["src/softmax.c"],
        hot_files=["src/softmax.c"],
        additions=3,
        deletions=1,
        applies=True,
    )


@pytest.mark.parametrize("title", EVIL)
def test_dossier_tables_and_pr_body_show_fork_titles_as_text(title):
    c = fork_commit(title)
    dossier = Dossier(
        goal=title,
        repo="maria/attention",
        baseline="b" * 40,
        sources=[fork_source(c)],
        hypotheses=[fork_hypothesis(c, ["x86"])],
    )
    cand = {
        "name": "mallory-aaaaaaa",
        "branch": "autoresearch/5/mallory-aaaaaaa",
        "sha": "c" * 40,
        "source": "fork",
        "title": dossier.hypotheses[0].title,
        "hypothesis": dossier.hypotheses[0].rationale,
        "citations": [{"id": "fork:x", "title": title, "url": c.url}],
    }
    pieces = {
        "dossier": dossier.markdown(),
        "candidates": report.candidates_section([cand], {"repo": "https://github.com/maria/attention"}),
        "hypotheses": report.hypotheses_section([cand], [cand["name"]]),
        "cell": report.cell(title),
        "md_cell": md_cell(title),
    }
    for where, text in pieces.items():
        out = rendered(text)
        links = re.findall(r'href="([^"]*)"', out)
        # the only links are the ones the bot builds itself (commit and branch URLs), never the title's
        assert all(u.startswith("https://github.com/") for u in links), (where, links)
        assert "<img" not in out, where
    subject = " ".join(title.split())
    assert visible(rendered(pieces["cell"])).strip() == subject  # the reader sees the title as written
