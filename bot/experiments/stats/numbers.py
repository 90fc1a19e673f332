"""Statistical primitives of the decision: medians and robust spread, the normal distribution, the
Mann-Whitney test, Holm's correction, the interference screen, trimming and the block bootstrap CI.

Pure functions of numbers: no verdicts (policy.py) and no prose (words.py).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

MAD_TO_SIGMA = 1.4826
MW_EFFICIENCY = 3 / math.pi  # asymptotic relative efficiency of Mann-Whitney vs t under normality (0.955)
SCREEN_MIN_REL = 0.005  # the screen's fence is never closer to the median than 0.5% of it
FENCE_ITERATIONS = 50  # the screen iterates until its kept set is stable (rarely > 5 passes)


def median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    n = len(s)
    if n == 0:
        raise ValueError("median of an empty sample")
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2.0


def robust_cv(xs: Sequence[float]) -> float:
    """MAD * 1.4826 / |median|: a coefficient of variation that ignores a few outliers."""
    if len(xs) < 2:
        return 0.0
    m = median(xs)
    if m == 0:
        return math.inf
    mad = median([abs(x - m) for x in xs])
    return MAD_TO_SIGMA * mad / abs(m)


def norm_sf(z: float) -> float:
    return float(sps.norm.sf(z))


def norm_ppf(p: float) -> float:
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    return float(sps.norm.ppf(p))


# --------------------------------------------------------------------------- tests (scipy / statsmodels)


def mann_whitney(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test (scipy.stats.mannwhitneyu: exact without ties for small samples,
    else the normal approximation with tie and continuity correction); returns (U of x, p-value)."""
    if len(x) == 0 or len(y) == 0:
        raise ValueError("Mann-Whitney needs two non-empty samples")
    if len(set(x) | set(y)) == 1:
        return len(x) * len(y) / 2.0, 1.0
    exact = len(set(x) | set(y)) == len(x) + len(y) and len(x) + len(y) <= 60  # no ties, small: exact
    res = sps.mannwhitneyu(
        list(x),
        list(y),
        alternative="two-sided",
        method="exact" if exact else "asymptotic",
        use_continuity=True,
    )
    return float(res.statistic), min(1.0, float(res.pvalue))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values in the input order (statsmodels' multipletests)."""
    if not pvalues:
        return []
    return [float(p) for p in multipletests(list(pvalues), method="holm")[1]]


# --------------------------------------------------------------------------- screen, trimming, bootstrap


def oriented_ratio(base_med: float, cand_med: float, higher_is_better: bool) -> float:
    num, den = (cand_med, base_med) if higher_is_better else (base_med, cand_med)
    if den == 0:
        return math.inf if num > 0 else 1.0
    return num / den


def visit_blocks(xs: Sequence[float], n_blocks: int) -> list[list[float]]:
    """Consecutive equal chunks (one per round visit) when the sample splits evenly, else singletons."""
    if n_blocks > 1 and len(xs) % n_blocks == 0 and len(xs) > n_blocks:
        size = len(xs) // n_blocks
        return [list(xs[i : i + size]) for i in range(0, len(xs), size)]
    return [[x] for x in xs]


def _worse(x: float, fence: float, higher_is_better: bool) -> bool:
    return x < fence if higher_is_better else x > fence


def interference_fence(xs: Sequence[float], *, higher_is_better: bool, sigmas: float) -> float | None:
    """The worse-side limit of the screen (None: screening off or no spread to judge by).

    Iterated one-sided clipping: median and MAD of the samples kept so far give the next fence, until
    nothing changes. One pass is not enough when a third or more of the samples are disturbed: they
    inflate both median and MAD, and the fence sits far out. The fence never keeps fewer than half of
    the samples: a tight minority cluster is not "the clean runs" (that picked a minority state of a
    busy machine and made an A/A pair "slower" on the real driver).
    """
    if sigmas <= 0 or len(xs) < 4:
        return None
    kept = sorted(xs)
    fence = None
    for _ in range(FENCE_ITERATIONS):
        m = median(kept)
        width = max(sigmas * MAD_TO_SIGMA * median([abs(x - m) for x in kept]), SCREEN_MIN_REL * abs(m))
        if width <= 0:
            return fence
        nxt_fence = m - width if higher_is_better else m + width
        nxt = [x for x in kept if not _worse(x, nxt_fence, higher_is_better)]
        if 2 * len(nxt) < len(xs):  # never let the screen pick a minority cluster
            break
        fence = nxt_fence
        if len(nxt) == len(kept):
            break
        kept = nxt
    return fence


def flagged(xs: Sequence[float], fence: float | None, *, higher_is_better: bool) -> int:
    """How many samples lie beyond the fence (worse than it)."""
    if fence is None:
        return 0
    return sum(1 for x in xs if _worse(x, fence, higher_is_better))


def best_of(xs: Sequence[float], keep: int, *, higher_is_better: bool) -> list[float]:
    """The ``keep`` best samples (sorted, best first)."""
    return sorted(xs, reverse=higher_is_better)[:keep]


def trim_blocks(blocks: list[list[float]], keep: int, *, higher_is_better: bool) -> list[list[float]]:
    """The ``keep`` best samples, still grouped by their round visit; visits left empty are dropped."""
    tagged = sorted(
        ((x, i) for i, b in enumerate(blocks) for x in b), key=lambda t: t[0], reverse=higher_is_better
    )[:keep]
    out: list[list[float]] = [[] for _ in blocks]
    for x, i in tagged:
        out[i].append(x)
    return [b for b in out if b]


def best_runs(xs: Sequence[float], higher_is_better: bool) -> float:
    """The median of the best fifth of the samples (at least 2): what the machine does undisturbed."""
    return median(best_of(xs, min(len(xs), max(2, len(xs) // 5)), higher_is_better=higher_is_better))


def flat(blocks: list[list[float]]) -> list[float]:
    return [x for b in blocks for x in b]


def _resample(rng: random.Random, blocks: list[list[float]]) -> list[float]:
    if len(blocks[0]) == 1:
        return rng.choices([b[0] for b in blocks], k=len(blocks))
    return [x for b in rng.choices(blocks, k=len(blocks)) for x in b]


def kept_count(n: int, keep_frac: float) -> int:
    return n if keep_frac >= 1.0 else min(n, max(2, round(keep_frac * n)))


def bootstrap_ci(
    base: Sequence[float],
    cand: Sequence[float],
    *,
    higher_is_better: bool,
    alpha: float,
    n_boot: int,
    seed: int,
    rounds: int = 0,
    keep_frac: float = 1.0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of the oriented ratio of medians (of each variant's best ``keep_frac``).

    With ``rounds`` > 1 and samples that split evenly into that many consecutive visits, whole visits
    are resampled (block bootstrap): repetitions of one visit share the machine's state at that moment,
    so resampling them one by one would understate the uncertainty. Each resample is trimmed to its
    best ``keep_frac`` exactly as the observed samples were.
    """
    rng = random.Random(seed)
    b, c = visit_blocks(base, rounds), visit_blocks(cand, rounds)
    kb, kc = kept_count(len(base), keep_frac), kept_count(len(cand), keep_frac)
    ratios = []
    for _ in range(n_boot):
        rb = median(best_of(_resample(rng, b), kb, higher_is_better=higher_is_better))
        rc = median(best_of(_resample(rng, c), kc, higher_is_better=higher_is_better))
        ratios.append(oriented_ratio(rb, rc, higher_is_better))
    ratios.sort()
    lo_i = max(0, int(math.floor(alpha / 2 * n_boot)))
    hi_i = min(n_boot - 1, int(math.ceil((1 - alpha / 2) * n_boot)) - 1)
    return ratios[lo_i], ratios[hi_i]


def samples_needed(cv: float, effect: float, *, alpha: float = 0.05, power: float = 0.8) -> int:
    """Rough per-group sample size for a Mann-Whitney test to detect a relative ``effect``."""
    if effect <= 0:
        return 10**6
    z = norm_ppf(1 - alpha / 2) + norm_ppf(power)
    return max(2, math.ceil(2 * (z * cv / effect) ** 2 / MW_EFFICIENCY))
