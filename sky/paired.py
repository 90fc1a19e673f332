"""Paired wall-time design with planned looks (stdlib only; the driver stops on it, the bot decides on it).

One *pair* = one baseline invocation and one candidate invocation, adjacent in time, in random order. Its
effect is d = log(baseline / candidate) for a lower-is-better metric (log(candidate / baseline) when higher
is better), so d > 0 always means "candidate better" and the speedup is exp(d). Interference that lasts
seconds (a busy SMT sibling, a neighbour VM) hits both members of a pair alike and cancels in d; a pair that
straddles a level shift gives one outlying d, which the median ignores.

Estimate: the median of the d's. Interval: the distribution-free confidence interval for a median from order
statistics (the one that inverts the sign test): [d_(k), d_(n+1-k)] with the largest k such that
P(Binomial(n, 1/2) <= k - 1) <= a / 2. No symmetry or normality assumed.

Looks: at min_pairs, 2 * min_pairs, ... up to max_pairs (L looks). Each look's interval uses a = alpha / (L *
m) (Bonferroni over the planned looks and the m candidates measured together), so the chance that ANY look of
ANY candidate shows a false effect stays <= alpha, and a stop is a verdict the bot's Holm-adjusted test keeps.
A candidate stops at the first look where the interval is decisive:
    "effect":     the interval excludes 0 and |median| >= log(1 + min_effect)
    "equivalent": the interval lies inside (log(1 - min_effect), log(1 + min_effect))
and otherwise runs to max_pairs. The bot (bot/experiments/paired.py) computes the same interval with
scipy's binomial distribution; tests/test_paired.py checks that both agree.
"""

from __future__ import annotations

import math
import statistics


def look_schedule(min_pairs: int, max_pairs: int) -> list[int]:
    """Pair counts at which the interval is looked at: min, 2*min, ... and max_pairs last."""
    min_pairs = max(2, int(min_pairs))
    max_pairs = max(min_pairs, int(max_pairs))
    looks = list(range(min_pairs, max_pairs + 1, min_pairs))
    if looks[-1] != max_pairs:
        looks.append(max_pairs)
    return looks


def binom_cdf_half(k: int, n: int) -> float:
    """P(Binomial(n, 1/2) <= k)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n


def order_index(n: int, a: float) -> int:
    """The largest k (1-based) with P(Bin(n, 1/2) <= k - 1) <= a / 2; 0 when even [min, max] is too short."""
    k = 0
    while k + 1 <= n // 2 + 1 and binom_cdf_half(k, n) <= a / 2:
        k += 1
    return k


def median_ci(d: list, a: float) -> tuple:
    """(median, low, high) of the d's; low/high are -inf/+inf when n is too small for level 1 - a."""
    s = sorted(float(x) for x in d)
    n = len(s)
    if n == 0:
        raise ValueError("no pairs")
    mid = statistics.median(s)
    k = order_index(n, a)
    if k == 0:
        return mid, -math.inf, math.inf
    return mid, s[k - 1], s[n - k]


def log_ratio(base: float, cand: float, higher_is_better: bool) -> float:
    """d for one pair: > 0 means the candidate is better."""
    if base <= 0 or cand <= 0:
        raise ValueError("metric values must be positive")
    return math.log(cand / base) if higher_is_better else math.log(base / cand)


def verdict(mid: float, lo: float, hi: float, min_effect: float) -> str | None:
    """ "effect" / "equivalent" when the interval is decisive, else None."""
    band = math.log(1.0 + min_effect) if min_effect > 0 else 0.0
    if (lo > 0 or hi < 0) and abs(mid) >= band:
        return "effect"
    if min_effect > 0 and lo > math.log(1.0 - min_effect) and hi < band:
        return "equivalent"
    return None
