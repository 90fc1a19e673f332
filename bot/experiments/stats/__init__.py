"""Benchmark statistics and the winner decision (docs/ARCHITECTURE.md, "Decision rule").

numbers.py: the statistical primitives (medians, robust spread, Mann-Whitney, Holm, the interference screen,
the block bootstrap CI); policy.py: comparisons, verdicts, both tiers combined, `decide`; words.py: the prose
readers see and `Hint` (what to do next, as data; bot/report.py renders it with the command prefix).
Every public name stays importable from `bot.experiments.stats`.
"""

from __future__ import annotations

from .numbers import (
    FENCE_ITERATIONS,
    MAD_TO_SIGMA,
    MW_EFFICIENCY,
    SCREEN_MIN_REL,
    best_of,
    best_runs,
    bootstrap_ci,
    flagged,
    flat,
    holm,
    interference_fence,
    kept_count,
    mann_whitney,
    median,
    norm_ppf,
    norm_sf,
    oriented_ratio,
    robust_cv,
    samples_needed,
    trim_blocks,
    visit_blocks,
)
from .policy import (
    DECISION_DEFAULTS,
    FAILED_VERDICT,
    INTERFERENCE_SIGMAS,
    VERDICTS,
    Comparison,
    Decision,
    Row,
    ci_halfwidth,
    ci_rounds_factor,
    compare,
    compare_paired,
    correctness_summary,
    decide,
)
from .words import Hint, Note

__all__ = [
    "DECISION_DEFAULTS",
    "FAILED_VERDICT",
    "FENCE_ITERATIONS",
    "INTERFERENCE_SIGMAS",
    "MAD_TO_SIGMA",
    "MW_EFFICIENCY",
    "SCREEN_MIN_REL",
    "VERDICTS",
    "Comparison",
    "Decision",
    "Hint",
    "Note",
    "Row",
    "best_of",
    "best_runs",
    "bootstrap_ci",
    "ci_halfwidth",
    "ci_rounds_factor",
    "compare",
    "compare_paired",
    "correctness_summary",
    "decide",
    "flagged",
    "flat",
    "holm",
    "interference_fence",
    "kept_count",
    "mann_whitney",
    "median",
    "norm_ppf",
    "norm_sf",
    "oriented_ratio",
    "robust_cv",
    "samples_needed",
    "trim_blocks",
    "visit_blocks",
]
