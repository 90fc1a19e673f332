"""scripts/screenshots.py's unit rule (what counts as a number without its unit), on report cells."""

from __future__ import annotations

import pytest
from screenshots import check, numbers_without_units


@pytest.mark.parametrize(
    "text",
    [
        "86.86 ms → 74.6 ms",
        "1.16× [1.03–1.26×]",
        "1.16× [1.03–1.26×], p = 0.064",
        "10.4% fewer cycles",
        "1.66G cycles",
        "$0.04",
        "✅ 1/1 checks",
        "—",
        "x86",
    ],
)
def test_cells_with_units_pass(text):
    assert numbers_without_units(text) == []


@pytest.mark.parametrize("text", ["69.33 -> 38.9", "1.18x [1.05, 1.31]", "1,145,891,366", "0.064"])
def test_bare_numbers_fail(text):
    assert numbers_without_units(text)


def test_a_unit_in_the_header_counts_but_not_a_metric_name():
    assert numbers_without_units("1,145,891,366", "estimated cycles") == []
    assert numbers_without_units("69.33", "`attn_ms`")  # a name ending in _ms is not a unit


def test_check_reports_scroll_and_wide_tables():
    m = {
        "viewport": 914,
        "scrollWidth": 950,
        "wide": [{"tag": "TABLE"}],
        "cells": [{"head": "x", "text": "3"}],
    }
    assert len(check("page", m)) == 3
    ok = {"viewport": 914, "scrollWidth": 914, "wide": [], "cells": [{"head": "candidate", "text": "fork-3"}]}
    assert check("page", ok) == []


def test_name_columns_by_their_first_word():
    cell = {"head": "hypothesis (kind, risk)", "text": "Port fiona/attention@83ce10d: multiply by 1/sum"}
    assert check("page", {"viewport": 914, "scrollWidth": 914, "wide": [], "cells": [cell]}) == []
