"""Wall-time tier, paired design: the bot's side of sky/paired.py (the driver stops on the same interval).

Per pair d = log(baseline / candidate) (lower is better) or log(candidate / baseline) (higher is better);
speedup = exp(median d). Interval: the order-statistic (sign-test) interval for the median at level
1 - alpha / (L * m), L = the number of planned looks, m = the candidates measured together (Bonferroni over
both: the driver stops on this interval, so a stop is a verdict the test below keeps; it may have stopped at
any of them). Test: the exact sign test (scipy.stats.binomtest), Holm-adjusted across candidates per
arch + metric (statsmodels), judged at the same alpha / L.

Verdict: faster/slower when the adjusted p < alpha / L, the interval excludes 1 and |speedup - 1| >=
min_effect; "no change" when the interval lies inside 1 +- min_effect (equivalence); otherwise "noisy",
with a note saying how many pairs would resolve it.

Why no interference screen here: the screen of the unpaired design trims each variant's slowest runs. In a
pair, interference that lasts seconds hits both members and cancels in d; a pair that straddles a level
shift gives one outlying d, and the median of the d's ignores up to half of them without trimming anything.
scripts/calibrate_stats.py --real --hog measures the design under a CPU hog.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from scipy import stats as sps


def order_index(n: int, a: float) -> int:
    """Largest k with P(Binomial(n, 1/2) <= k - 1) <= a / 2 (0: even [min, max] has less coverage)."""
    if n <= 0:
        return 0
    j = int(sps.binom.ppf(a / 2, n, 0.5))  # smallest j with cdf(j) >= a / 2
    k = j if sps.binom.cdf(j, n, 0.5) > a / 2 else j + 1
    return max(0, min(k, (n + 1) // 2))


def median_ci(d: Sequence[float], a: float) -> tuple[float, float, float]:
    s = sorted(float(x) for x in d)
    n = len(s)
    if n == 0:
        raise ValueError("no pairs")
    mid = statistics.median(s)
    k = order_index(n, a)
    if k == 0:
        return mid, -math.inf, math.inf
    return mid, s[k - 1], s[n - k]


def sign_test(d: Sequence[float]) -> float:
    pos = sum(1 for x in d if x > 0)
    nonzero = sum(1 for x in d if x != 0)
    if nonzero == 0:
        return 1.0
    return float(sps.binomtest(pos, nonzero, 0.5).pvalue)


def log_ratios(pairs: Sequence[Mapping[str, Any]], metric: str, higher_is_better: bool) -> list[float]:
    out = []
    for p in pairs:
        b, c = (p.get("base") or {}).get(metric), (p.get("cand") or {}).get(metric)
        if isinstance(b, (int, float)) and isinstance(c, (int, float)) and b > 0 and c > 0:
            out.append(math.log(c / b) if higher_is_better else math.log(b / c))
    return out


def robust_sd(xs: Sequence[float]) -> float:
    if len(xs) < 2:
        return 0.0
    s = sorted(xs)
    m = s[len(s) // 2]
    dev = sorted(abs(x - m) for x in xs)
    return 1.4826 * dev[len(dev) // 2]


def pairs_needed(d: Sequence[float], min_effect: float, a: float) -> int:
    """Rough number of pairs for the interval's half-width to shrink to ~0.7 x min_effect (80% power)."""
    sd = robust_sd(d)
    if sd <= 0 or min_effect <= 0:
        return len(d)
    z = sps.norm.ppf(1 - a / 2)
    # the sample median's standard error is ~1.2533 sd / sqrt(n) for a normal centre
    return max(len(d), math.ceil((z * 1.2533 * sd / (0.7 * math.log(1 + min_effect))) ** 2))
