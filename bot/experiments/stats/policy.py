"""The decision policy: per-metric comparisons, Holm correction, both tiers combined, and the winners.

The statistics it rests on are in numbers.py, the prose it writes in words.py (what to do next comes as
`words.Hint` data, rendered by bot/report.py with the configured command prefix).

Two tiers (docs/ARCHITECTURE.md, "Decision rule"):

* simulated cost (bot/experiments/simulated.py): exact estimated cycles from one cachegrind run per
  variant; faster/slower when the ratio reaches ``min_effect``, else no change;
* wall time, paired (bot/experiments/paired.py, ``compare_paired``): the median of per-pair log ratios, an
  order-statistic interval at level 1 - alpha/looks, the sign test, Holm across candidates;
* one verdict per target row (``_combine``, ``decision.primary: both | simulated | wall``): with ``both``,
  "faster" needs the simulated cost faster on every arch that simulated and wall time not significantly
  slower; tiers that contradict each other give "disagree", never a winner.

Results of the earlier unpaired design (no ``pairs`` in a variant) are still decided by ``compare`` below,
from raw per-repetition samples:

* interference screen: on a shared machine, interference (another process, an interrupt storm, a
  throttled core) only ever makes a sample *worse*: by 1-70%, in 20-50% of the samples of a batch on
  the 2-core calibration box, while undisturbed samples agree within 0.3-0.5%. Each variant gets a
  fence at median + ``interference_sigmas`` robust sigmas (MAD * 1.4826, never closer than 0.5% of the
  median) on its worse side, iterated on the kept samples until stable but never keeping fewer than
  half (see ``interference_fence``). Then BOTH variants of a comparison keep the same fraction of
  their best samples, that of the more disturbed one: symmetric by rank, so an A/A pair with unequal
  interference is trimmed alike (per-variant fences alone made A/A pairs differ by 2-3% in
  simulation and on the real driver). Counts are reported (``screened_*``, ``flagged_*``);
  ``interference_sigmas: 0`` turns the screen off;
* effect = ratio of the kept samples' medians, oriented so that ``speedup > 1`` always means
  "better"; the ratio of all samples' medians is kept too (``raw_speedup``) and must not point the
  other way (when half or more of one variant's runs are outliers the screen cannot be trusted);
* a seeded percentile bootstrap CI of that ratio: whole round visits are resampled (block bootstrap,
  when the samples split evenly into rounds; repetitions of one visit share the machine's state), and
  every resample keeps the same fraction of its best samples as the observed ones (as the bootstrap of
  a trimmed mean does; re-running the fences on every resample widened the CIs 2.5x for no gain in
  coverage: in simulation at most 5.7% of A/A 95% CIs exclude 1 either way, even with 20% of the
  visits and 15% of the samples disturbed). Percentile, not BCa: with 10-30
  samples the bootstrap distribution of a median is discrete and the jackknife estimate of BCa's
  acceleration is inconsistent for the median, so BCa adds no accuracy here;
* a two-sided Mann-Whitney U test on the kept samples (exact null distribution without ties and small
  n, otherwise the normal approximation with tie and continuity correction), Holm-adjusted per
  arch+metric family; and, with a round structure, the same test on the per-visit medians (the
  visit is the independent unit) must agree;
* verdict: significant AND CI excludes 1 AND |speedup-1| >= min_effect -> faster/slower. When a
  variant's kept samples still spread more than ``min_effect``, the best runs (median of each
  variant's best fifth, ``best_speedup``) must show at least ``min_effect`` in the same direction
  too; when they spread more than ``max_noise_cv`` (most runs disturbed), an effect smaller than that
  spread is not called. An undecided result is "noisy" (with a rounds hint) instead of "no change" when that
  spread exceeds ``max_noise_cv`` or the CI reaches beyond 1 +- ``min_effect``: "no change" is only
  said when the CI rules out a ``min_effect`` change either way (an equivalence test).

Medians describe the typical run, so a change that slows a minority of runs is not seen here (tail
latency is not what these verdicts are about). Calibration: scripts/calibrate_stats.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ...config import GENERIC_DEFAULTS
from ...model import (  # MAX_ROUNDS: the most rounds `rerun rounds=N` accepts (and hints say)
    MAX_ROUNDS,
    Basis,
    Verdict,
)
from ...resources import sky_module
from .. import paired, simulated
from . import words
from .numbers import (
    best_runs,
    bootstrap_ci,
    flagged,
    flat,
    holm,
    interference_fence,
    kept_count,
    mann_whitney,
    median,
    oriented_ratio,
    robust_cv,
    samples_needed,
    trim_blocks,
    visit_blocks,
)
from .words import Hint, Note

VERDICTS = tuple(Verdict)
DECISION_DEFAULTS: Mapping[str, Any] = GENERIC_DEFAULTS["decision"]  # one set of defaults: bot/config.py's
FAILED_VERDICT = {
    "build_failed": Verdict.BUILD_FAILED,
    "validation_failed": Verdict.BROKEN,
    "bench_failed": Verdict.BENCH_FAILED,
    "pending": Verdict.MISSING,
}
INTERFERENCE_SIGMAS = 3.0  # default screen: robust sigmas beyond the median on the worse side


# --------------------------------------------------------------------------- comparison


@dataclass
class Comparison:
    baseline_median: float
    candidate_median: float
    speedup: float  # > 1 means the candidate is better
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    n_base: int
    n_cand: int
    baseline_cv: float  # robust CV of the kept baseline samples
    verdict: str
    note: str = ""
    higher_is_better: bool = False
    p_visits: float | None = None  # Mann-Whitney on per-visit medians (None: no round structure)
    screened_base: int = 0  # samples set aside (n_base/n_cand count the kept ones)
    screened_cand: int = 0
    flagged_base: int = 0  # samples beyond the variant's own interference fence
    flagged_cand: int = 0
    raw_speedup: float | None = None  # ratio of the medians of all samples (before the screen)
    best_speedup: float | None = None  # ratio of the best runs (median of each variant's best fifth)
    candidate_cv: float = 0.0  # robust CV of the kept candidate samples
    design: str = "unpaired"  # "paired": adjacent (baseline, candidate) pairs, see bot/experiments/paired.py
    pairs: int | None = None  # paired: pairs measured ...
    max_pairs: int | None = None  # ... of at most this many
    looks: int = 1  # paired: planned looks (the interval's level is 1 - alpha / (looks x family))
    stop_reason: str | None = None  # paired: effect | equivalent | max_pairs (the driver's stopping rule)
    pairs_needed: int | None = None  # paired, undecided: about how many pairs would resolve min_effect
    family: int = 1  # paired: candidates measured together (the interval's Bonferroni factor)

    def to_dict(self) -> dict[str, Any]:
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Comparison:
        vals = dict(d)
        for k in ("baseline_cv", "speedup", "ci_low", "ci_high"):
            if vals.get(k) is None:
                vals[k] = math.inf
        return cls(**{k: vals[k] for k in cls.__dataclass_fields__ if k in vals})

    def rejudge(self, p_adjusted: float, *, alpha: float, min_effect: float, max_noise_cv: float) -> None:
        """Set p_adjusted and recompute verdict/note with it."""
        self.p_adjusted = p_adjusted
        if self.design == "paired":
            self.verdict, self.note = _judge_paired(self, alpha, min_effect)
        else:
            self.verdict, self.note = _judge(self, alpha, min_effect, max_noise_cv)


def ci_halfwidth(c: Comparison) -> float:
    """Half the CI's width on the log scale (0.02 ~ "+-2%"); inf when the CI is not finite/positive."""
    if not (c.ci_low > 0 and math.isfinite(c.ci_low) and math.isfinite(c.ci_high)):
        return math.inf
    return (math.log(c.ci_high) - math.log(c.ci_low)) / 2.0


def ci_rounds_factor(c: Comparison, min_effect: float) -> int:
    """How many times the rounds a CI this wide needs to resolve ``min_effect`` (CI width ~ 1/sqrt(n))."""
    hw = ci_halfwidth(c)  # a half-width of ~0.7 x the effect gives ~80% power
    return max(2, math.ceil((hw / (0.7 * min_effect)) ** 2)) if math.isfinite(hw) else 4


def _judge(c: Comparison, alpha: float, min_effect: float, max_noise_cv: float) -> tuple[str, str]:
    significant = c.p_adjusted < alpha
    if c.p_visits is not None:  # the round visits, the independent unit, must agree too
        significant = significant and c.p_visits < alpha
    big_enough = abs(c.speedup - 1.0) >= min_effect
    spread = max(c.baseline_cv, c.candidate_cv)
    if spread > max_noise_cv:
        # a variant still noisy after the screen (most of its runs disturbed): an effect smaller than that
        # spread is not called (A/A variants with 70-80% of their runs disturbed measured "28% slower")
        big_enough = big_enough and abs(math.log(c.speedup)) > spread
    if spread > min_effect and c.best_speedup is not None:
        # kept runs spread wider than the effect looked for: the best runs must show the effect too (an
        # A/A variant whose kept runs were mildly slowed measured "3.6% slower", its best runs 1.2%)
        big_enough = (
            big_enough
            and (c.best_speedup - 1.0) * (c.speedup - 1.0) > 0
            and abs(c.best_speedup - 1.0) >= min_effect
        )
    ci_excludes_one = c.ci_low > 1.0 or c.ci_high < 1.0
    decided = significant and ci_excludes_one and big_enough
    if decided and c.raw_speedup is not None and (c.raw_speedup - 1.0) * (c.speedup - 1.0) < 0:
        return "noisy", words.outliers(c.speedup, c.raw_speedup)
    if decided:
        return ("faster" if c.speedup > 1 else "slower"), ""
    if spread > max_noise_cv:
        who = "baseline" if c.baseline_cv >= c.candidate_cv else "candidate"
        effect = max(abs(c.speedup - 1.0), min_effect)
        need = samples_needed(spread, effect, alpha=alpha)
        factor = max(2, math.ceil(need / max(1, c.n_base)))
        return "noisy", words.too_noisy(who, spread, max_noise_cv, need, effect, c.n_base, factor)
    if min_effect > 0 and not (c.ci_low > 1.0 - min_effect and c.ci_high < 1.0 + min_effect):
        # "no change" only when the CI rules out a min_effect change either way (an equivalence test)
        factor = ci_rounds_factor(c, min_effect)
        return "noisy", words.ci_undecided(c.ci_low, c.ci_high, min_effect, factor)
    return "no_change", ""


def compare(
    base: Sequence[float],
    cand: Sequence[float],
    *,
    higher_is_better: bool,
    alpha: float = 0.05,
    min_effect: float = DECISION_DEFAULTS["min_effect"],
    max_noise_cv: float = 0.10,
    n_boot: int = 10000,
    seed: int = 0,
    rounds: int = 0,
    interference_sigmas: float = INTERFERENCE_SIGMAS,
) -> Comparison:
    """Compare candidate samples with baseline samples of one metric (see the module docstring)."""
    base = [float(v) for v in base]
    cand = [float(v) for v in cand]
    if len(base) < 2 or len(cand) < 2:
        raise ValueError(f"need >= 2 samples per group (baseline {len(base)}, candidate {len(cand)})")
    hib = higher_is_better
    fb = flagged(
        base, interference_fence(base, higher_is_better=hib, sigmas=interference_sigmas), higher_is_better=hib
    )
    fc = flagged(
        cand, interference_fence(cand, higher_is_better=hib, sigmas=interference_sigmas), higher_is_better=hib
    )
    # both variants keep the same fraction, that of the more disturbed one: symmetric by rank, so an A/A
    # pair with unequal interference is trimmed alike (per-variant fences alone made A/A pairs differ)
    keep_frac = min(1.0 - fb / len(base), 1.0 - fc / len(cand))
    visits = visit_blocks(base, rounds)
    bb = trim_blocks(visits, kept_count(len(base), keep_frac), higher_is_better=hib)
    cb = trim_blocks(visit_blocks(cand, rounds), kept_count(len(cand), keep_frac), higher_is_better=hib)
    kb, kc = flat(bb), flat(cb)
    bm, cm = median(kb), median(kc)
    _, p = mann_whitney(kc, kb)
    p_visits = None
    if len(bb) > 1 and len(cb) > 1 and len(visits[0]) > 1:  # unit = one round visit
        _, p_visits = mann_whitney([median(b) for b in cb], [median(b) for b in bb])
    lo, hi = bootstrap_ci(
        base,
        cand,
        higher_is_better=hib,
        alpha=alpha,
        n_boot=n_boot,
        seed=seed,
        rounds=rounds,
        keep_frac=keep_frac,
    )
    c = Comparison(
        baseline_median=bm,
        candidate_median=cm,
        speedup=oriented_ratio(bm, cm, hib),
        ci_low=lo,
        ci_high=hi,
        p_value=p,
        p_adjusted=p,
        n_base=len(kb),
        n_cand=len(kc),
        baseline_cv=robust_cv(kb),
        verdict="no_change",
        higher_is_better=hib,
        p_visits=p_visits,
        screened_base=len(base) - len(kb),
        screened_cand=len(cand) - len(kc),
        flagged_base=fb,
        flagged_cand=fc,
        candidate_cv=robust_cv(kc),
        raw_speedup=oriented_ratio(median(base), median(cand), hib),
        best_speedup=oriented_ratio(best_runs(base, hib), best_runs(cand, hib), hib),
    )
    c.verdict, c.note = _judge(c, alpha, min_effect, max_noise_cv)
    return c


def compare_paired(
    pairs: Sequence[Mapping[str, Any]],
    metric: str,
    *,
    higher_is_better: bool,
    alpha: float = 0.05,
    min_effect: float = DECISION_DEFAULTS["min_effect"],
    looks: int = 1,
    max_pairs: int | None = None,
    stop_reason: str | None = None,
    family: int = 1,
) -> Comparison:
    """Compare a candidate with the baseline from adjacent pairs (bot/experiments/paired.py). The interval's
    level is 1 - alpha / (looks x family), the driver's stopping level (Bonferroni over the planned looks and
    the candidates measured together), so a candidate the driver stopped as decisive is decided here too."""
    d = paired.log_ratios(pairs, metric, higher_is_better)
    if len(d) < 2:
        raise ValueError(f"need >= 2 pairs with {metric!r} (have {len(d)})")
    looks = max(1, int(looks))
    a = alpha / (looks * max(1, int(family)))
    mid, lo, hi = paired.median_ci(d, a)
    base = [float(p["base"][metric]) for p in pairs if metric in (p.get("base") or {})]
    cand = [float(p["cand"][metric]) for p in pairs if metric in (p.get("cand") or {})]
    p = paired.sign_test(d)
    c = Comparison(
        baseline_median=median(base),
        candidate_median=median(cand),
        speedup=math.exp(mid),
        ci_low=math.exp(lo) if math.isfinite(lo) else 0.0,
        ci_high=math.exp(hi) if math.isfinite(hi) else math.inf,
        p_value=p,
        p_adjusted=p,
        n_base=len(d),
        n_cand=len(d),
        baseline_cv=robust_cv(base),
        verdict="no_change",
        higher_is_better=higher_is_better,
        raw_speedup=oriented_ratio(median(base), median(cand), higher_is_better),
        candidate_cv=robust_cv(cand),
        design="paired",
        pairs=len(d),
        max_pairs=max_pairs,
        looks=looks,
        stop_reason=stop_reason,
        pairs_needed=paired.pairs_needed(d, min_effect, a),
        family=max(1, int(family)),
    )
    c.verdict, c.note = _judge_paired(c, alpha, min_effect)
    return c


def _judge_paired(c: Comparison, alpha: float, min_effect: float) -> tuple[str, str]:
    a = alpha / max(1, c.looks)
    band = math.log(1.0 + min_effect) if min_effect > 0 else 0.0
    excludes_one = c.ci_low > 1.0 or c.ci_high < 1.0
    if c.p_adjusted < a and excludes_one and abs(math.log(c.speedup)) >= band and c.speedup != 1.0:
        return ("faster" if c.speedup > 1 else "slower"), ""
    if min_effect > 0 and c.ci_low > 1.0 - min_effect and c.ci_high < 1.0 + min_effect:
        return "no_change", ""
    return "noisy", words.paired_undecided(
        c.ci_low, c.ci_high, c.pairs, min_effect, c.pairs_needed or c.pairs or 0
    )


# --------------------------------------------------------------------------- decision


@dataclass
class Row:
    candidate: str
    arch: str
    metric: str
    status: str
    comparison: Comparison | None
    correctness: dict[str, Any]
    verdict: str  # target rows: the decision of both tiers (see _combine)
    simulated: dict[str, Any] | None = None  # target rows: SimComparison.to_dict(), or {"error": ...}
    wall_verdict: str | None = None  # target rows: the wall tier's own verdict
    note: str = ""  # why the tiers gave this verdict
    basis: str | None = None  # target rows: what decided the verdict (model.Basis), so what it could not see
    blind: list[dict[str, Any]] = field(default_factory=list)  # target rows: sky/blindspots.py findings

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["comparison"] = self.comparison.to_dict() if self.comparison else None
        if self.basis is None:  # rows of other metrics: stored as before
            del d["basis"], d["blind"]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Row:
        comp = Comparison.from_dict(d["comparison"]) if d.get("comparison") else None
        return cls(
            candidate=d["candidate"],
            arch=d["arch"],
            metric=d["metric"],
            status=d["status"],
            comparison=comp,
            correctness=dict(d.get("correctness") or {}),
            verdict=d["verdict"],
            simulated=d.get("simulated"),
            wall_verdict=d.get("wall_verdict"),
            note=d.get("note") or "",
            basis=d.get("basis"),
            blind=list(d.get("blind") or []),
        )

    def sim(self) -> simulated.SimComparison | None:
        return (
            simulated.SimComparison.from_dict(self.simulated)
            if self.simulated and "baseline_cycles" in self.simulated
            else None
        )


@dataclass
class Decision:
    rows: list[Row]
    winners: list[str]
    notes: list[Note] = field(default_factory=list)  # text, and what to do next as data (words.Hint)
    target: str = ""
    archs: list[str] = field(default_factory=list)

    def rows_for(self, candidate: str) -> list[Row]:
        return [r for r in self.rows if r.candidate == candidate]

    def target_speedup(self, candidate: str) -> float:
        """Geometric mean of the target's speedup over the archs where it was measured: the simulated
        figure where there is one (exact, so winners are ordered the same on every run), else wall time."""
        vals = []
        for r in self.rows:
            if r.candidate != candidate or r.metric != self.target:
                continue
            sim = r.sim()
            v = (
                sim.speedup
                if sim and r.basis != Basis.HARDWARE_ONLY
                else (r.comparison.speedup if r.comparison else None)
            )
            if v is not None and math.isfinite(v) and v > 0:
                vals.append(v)
        return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": [r.to_dict() for r in self.rows],
            "winners": list(self.winners),
            "notes": [n.to_dict() for n in self.notes],
            "target": self.target,
            "archs": list(self.archs),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Decision:
        return cls(
            rows=[Row.from_dict(r) for r in d.get("rows", [])],
            winners=list(d.get("winners", [])),
            notes=[Note.from_dict(n) for n in d.get("notes", [])],
            target=d.get("target", ""),
            archs=list(d.get("archs", [])),
        )


def correctness_summary(variant: Mapping[str, Any] | None) -> dict[str, Any]:
    """Build + validation summary of one variant of a result."""
    if not variant:
        return {"build_ok": False, "validation_ok": False, "passed": 0, "total": 0, "failed": []}
    checks = (variant.get("validation") or {}).get("checks") or []
    failed = [str(c.get("name", "?")) for c in checks if not c.get("ok")]
    build = variant.get("build") or {}
    return {
        "build_ok": bool(build.get("ok", variant.get("status") != "build_failed")),
        "validation_ok": bool((variant.get("validation") or {}).get("ok", False)) and not failed,
        "passed": len(checks) - len(failed),
        "total": len(checks),
        "failed": failed,
    }


def _candidate_names(results: Mapping[str, Mapping[str, Any]], baseline: str) -> list[str]:
    names: list[str] = []
    for res in results.values():
        for name in res.get("variants") or {}:
            if name != baseline and name not in names:
                names.append(name)
    return names


def _metric_specs(project: Mapping[str, Any]) -> list[tuple[str, bool]]:
    bench = project.get("benchmark") or {}
    return [(m["name"], bool(m.get("higher_is_better", False))) for m in bench.get("metrics", [])]


def _row(
    cand: str,
    arch: str,
    metric: str,
    hib: bool,
    result: Mapping[str, Any] | None,
    baseline: str,
    dec: Mapping[str, Any],
    seed: int,
) -> Row:
    if result is None or not result.get("variants"):
        return Row(cand, arch, metric, "missing", None, correctness_summary(None), "missing")
    variants = result.get("variants") or {}
    base_v, cand_v = variants.get(baseline), variants.get(cand)
    corr = correctness_summary(cand_v)
    status = (cand_v or {}).get("status", "missing")
    if result.get("emulated") and (not base_v or base_v.get("status") != "ok"):
        return Row(cand, arch, metric, status, None, corr, "missing")  # the emulated check did not run
    if not base_v or base_v.get("status") != "ok":
        return Row(cand, arch, metric, status, None, corr, "baseline_failed")
    if cand_v is None:
        return Row(cand, arch, metric, "missing", None, corr, "missing")
    if status != "ok":
        return Row(cand, arch, metric, status, None, corr, FAILED_VERDICT.get(status, "bench_failed"))
    if result.get("emulated"):  # built for the arch, checked under qemu-user: correct, nothing timed
        return Row(cand, arch, metric, status, None, corr, "not_timed")
    if "pairs" in cand_v:  # the paired design (sky/paired.py)
        design = result.get("paired") or {}
        try:
            comp = compare_paired(
                cand_v["pairs"],
                metric,
                higher_is_better=hib,
                alpha=dec["alpha"],
                min_effect=dec["min_effect"],
                looks=len(design.get("looks") or [1]),
                max_pairs=design.get("max_pairs"),
                family=int(design.get("family") or 1),
                stop_reason=(cand_v.get("stop") or {}).get("reason"),
            )
        except ValueError:
            return Row(cand, arch, metric, status, None, corr, "bench_failed")
        return Row(cand, arch, metric, status, comp, corr, comp.verdict)
    bs = (base_v.get("samples") or {}).get(metric) or []
    cs = (cand_v.get("samples") or {}).get(metric) or []
    if len(bs) < 2 or len(cs) < 2:
        return Row(cand, arch, metric, status, None, corr, "bench_failed")
    comp = compare(
        bs,
        cs,
        higher_is_better=hib,
        alpha=dec["alpha"],
        min_effect=dec["min_effect"],
        max_noise_cv=dec["max_noise_cv"],
        n_boot=dec["bootstrap"],
        seed=seed,
        rounds=dec["rounds"],
        interference_sigmas=dec["interference_sigmas"],
    )
    return Row(cand, arch, metric, status, comp, corr, comp.verdict)


def _decision_params(project: Mapping[str, Any]) -> dict[str, Any]:
    d = {**DECISION_DEFAULTS, **(project.get("decision") or {})}
    return {
        "alpha": float(d["alpha"]),
        "min_effect": float(d["min_effect"]),
        "slowdown_tolerance": float(d["slowdown_tolerance"]),
        "max_noise_cv": float(d["max_noise_cv"]),
        "bootstrap": int(d["bootstrap"]),
        "interference_sigmas": float(d["interference_sigmas"]),
        "primary": str(d["primary"]),
        "rounds": int((project.get("benchmark") or {}).get("rounds", 0)),
        "threads": int((project.get("benchmark") or {}).get("threads") or 0),
    }


def _significantly_slower(c: Comparison | None, dec: Mapping[str, Any]) -> bool:
    """Wall time: significantly slower BEYOND slowdown_tolerance, at the comparison's own level: the whole
    interval lies below 1 - slowdown_tolerance (and the Holm-adjusted test agrees). A point estimate beyond
    the tolerance with an interval reaching into it is not a verdict: on a 2-core box a secondary metric
    (llama.cpp's pp beside the target tg) at 0.97x [0.93, 1.00] vetoed a winner in one run of four."""
    if c is None:
        return False
    a = dec["alpha"] / max(1, c.looks) if c.design == "paired" else dec["alpha"]
    return c.p_adjusted < a and c.ci_high < 1.0 - dec["slowdown_tolerance"]


def _is_winner(cand: str, rows: list[Row], archs: Iterable[str], target: str, dec: Mapping[str, Any]) -> bool:
    mine = [r for r in rows if r.candidate == cand]
    for arch in archs:
        arch_rows = [r for r in mine if r.arch == arch]
        if not arch_rows or any(
            r.status != "ok" or r.verdict in ("baseline_failed", "missing", "bench_failed") for r in arch_rows
        ):
            return False
    targets = [r for r in mine if r.metric == target]
    if not any(r.verdict == "faster" for r in targets):
        return False
    if dec["primary"] != "wall" and any(r.sim() and r.verdict != "faster" for r in targets):
        return False  # simulated cost better by >= min_effect on EVERY arch that simulated
    return not any(_significantly_slower(r.comparison, dec) for r in mine)


def _sim_record(result: Mapping[str, Any] | None, baseline: str, cand: str) -> tuple[dict | None, str]:
    """(candidate vs baseline simulated records, or None; why not)."""
    variants = (result or {}).get("variants") or {}
    b, c = (variants.get(baseline) or {}).get("simulated"), (variants.get(cand) or {}).get("simulated")
    # fan-out whose shards' baselines failed the A/A check: the candidate's own shard's baseline
    b = (variants.get(cand) or {}).get("simulated_baseline") or b
    if not simulated.usable(b):
        info = (result or {}).get("simulation") or {}
        why = info.get("reason") or (b or {}).get("error") or "not run"
        return None, f"unavailable ({str(why).splitlines()[0][:160]})"
    if not simulated.usable(c):
        return None, f"failed: {str((c or {}).get('error') or 'not run').splitlines()[0][:200]}"
    return {"base": b, "cand": c}, ""


def blind_spots(
    result: Mapping[str, Any] | None, cand: str, sim: simulated.SimComparison | None
) -> list[dict]:
    """What of this candidate the simulated tier cannot see: the driver's scan of its diff (variant["blind"],
    sky/blindspots.py); for a result without one, the functions of the per-function diff (barrier, thread
    pool) that moved."""
    v = ((result or {}).get("variants") or {}).get(cand) or {}
    if "blind" in v:
        return [dict(s) for s in v.get("blind") or [] if isinstance(s, Mapping)]
    names = [str(f.get("name")) for f in (sim.functions if sim else []) if f.get("name")]
    return sky_module("blindspots").scan_functions(names)


# A hardware-only verdict rests on the wall tier alone (no exact tier agrees), so it is judged at a stricter
# level: alpha x this factor. At the paired tier's own level, 1 of 100 A/A trials of 10 pairs at 2 threads
# beside the CPU hog came out "faster" (scripts/threads_minibench.py --aa 1000): a false winner, no veto.
HARDWARE_ONLY_ALPHA = 0.1


def _hardware_only_comparison(
    c: Comparison | None, result: Mapping[str, Any] | None, cand: str, metric: str, dec: Mapping[str, Any]
) -> Comparison | None:
    """The paired comparison of a blind candidate again at alpha x HARDWARE_ONLY_ALPHA (interval and test),
    with the Holm-adjusted p of its family; None for the unpaired design (its own rule stands)."""
    if c is None or c.design != "paired":
        return None
    v = ((result or {}).get("variants") or {}).get(cand) or {}
    design = (result or {}).get("paired") or {}
    alpha = dec["alpha"] * HARDWARE_ONLY_ALPHA
    try:
        hw = compare_paired(
            v.get("pairs") or [],
            metric,
            higher_is_better=c.higher_is_better,
            alpha=alpha,
            min_effect=dec["min_effect"],
            looks=c.looks,
            max_pairs=design.get("max_pairs"),
            family=c.family,
            stop_reason=c.stop_reason,
        )
    except ValueError:
        return None
    hw.rejudge(c.p_adjusted, alpha=alpha, min_effect=dec["min_effect"], max_noise_cv=dec["max_noise_cv"])
    return hw


def _combine(r: Row, result: Mapping[str, Any] | None, baseline: str, dec: Mapping[str, Any]) -> None:
    """The target row's verdict from both tiers (decision.primary: both | simulated | wall), with its basis:
    what decided it (model.Basis) and so what it could not see (r.blind)."""
    r.wall_verdict = r.verdict
    r.basis = Basis.WALL
    if r.status != "ok" or dec["primary"] == "wall":
        return
    recs, why = _sim_record(result, baseline, r.candidate)
    if recs is None:
        r.simulated = {"error": why}
        if why.startswith("failed"):
            r.verdict, r.note = "bench_failed", words.simulation_failed(why)
        else:
            r.note = words.simulation_unavailable(why)
        return
    sim = simulated.compare_simulated(recs["base"], recs["cand"], dec["min_effect"])
    r.simulated = sim.to_dict()
    r.blind = blind_spots(result, r.candidate, sim)
    c = r.comparison
    wall_faster = r.wall_verdict == "faster"
    wall_slower = _significantly_slower(c, dec)
    wall_txt = words.wall_figure(c.speedup, c.ci_low, c.ci_high) if c else words.NO_WALL_FIGURE
    r.basis = Basis.SIMULATED
    if dec["primary"] == "simulated":
        r.verdict = sim.verdict
        return
    if sim.verdict == "faster" and wall_slower or sim.verdict == "slower" and wall_faster:
        r.verdict = "disagree"
        r.note = words.tiers_disagree(sim.speedup, wall_txt)
    elif sim.verdict == "faster":
        r.verdict = "faster"
        r.basis = Basis.CONFIRMED if wall_faster else Basis.SIMULATED
        r.note = (
            words.CONFIRMED
            if wall_faster
            else (words.wall_agrees(wall_txt) if c and c.speedup > 1 else words.wall_not_slower(wall_txt))
        )
    elif sim.verdict == "slower":
        r.verdict = "slower"
        r.basis = Basis.CONFIRMED if r.wall_verdict == "slower" else Basis.SIMULATED
    elif r.blind:
        # the change acts where the simulator is blind (threads, ISA, bandwidth): its "no change" says
        # nothing; wall time at the configured thread count decides, or nobody can here
        what = sky_module("blindspots").summary(r.blind)
        threads = int(dec.get("threads") or 0)
        hw = _hardware_only_comparison(c, result, r.candidate, r.metric, dec)
        if hw is not None:  # one tier alone decides: at alpha x HARDWARE_ONLY_ALPHA (see there)
            wall_txt = words.wall_figure(hw.speedup, hw.ci_low, hw.ci_high)
            r.wall_verdict = hw.verdict
        if r.wall_verdict in ("faster", "slower"):
            r.verdict, r.basis = r.wall_verdict, Basis.HARDWARE_ONLY
            r.note = words.hardware_only(wall_txt, what, threads)
        elif r.wall_verdict == "no_change":
            r.verdict, r.basis = "no_change", Basis.CONFIRMED
            r.note = words.wall_equivalent(wall_txt, what, threads)
        else:
            r.verdict, r.basis = Verdict.NOT_MEASURABLE, Basis.NOT_MEASURABLE
            r.note = words.not_measurable(wall_txt, what, threads, c.note if c else "")
    else:
        r.verdict = "no_change"
        if r.wall_verdict in ("faster", "slower"):
            r.note = words.sim_not_moved(wall_txt, r.wall_verdict, dec["min_effect"])


def decide(
    results: Mapping[str, Mapping[str, Any]],
    project: Mapping[str, Any],
    *,
    baseline: str = "baseline",
    seed: int = 0,
) -> Decision:
    """Rows for every candidate x arch x metric, Holm per arch+metric, and the winners."""
    dec = _decision_params(project)
    metrics = _metric_specs(project)
    if not metrics:
        raise ValueError("project.benchmark.metrics is empty")
    target = (project.get("benchmark") or {}).get("target") or metrics[0][0]
    archs = list(project.get("architectures") or []) or list(results)
    archs += [a for a in results if a not in archs]
    candidates = _candidate_names(results, baseline)
    rows = [
        _row(c, a, m, hib, results.get(a), baseline, dec, seed)
        for c in candidates
        for a in archs
        for m, hib in metrics
    ]
    notes: list[Note] = []
    for a in archs:
        for m, _ in metrics:
            family = [r for r in rows if r.arch == a and r.metric == m and r.comparison]
            for r, p in zip(family, holm([r.comparison.p_value for r in family]), strict=True):
                r.comparison.rejudge(
                    p, alpha=dec["alpha"], min_effect=dec["min_effect"], max_noise_cv=dec["max_noise_cv"]
                )
                r.verdict = r.comparison.verdict
    for r in rows:
        if r.metric == target and not (results.get(r.arch) or {}).get("emulated"):
            _combine(r, results.get(r.arch), baseline, dec)
    notes += _notes(rows, archs, results, baseline, project, dec)
    # an emulated arch (correctness only) whose baseline did not get through says so in the notes and
    # neither makes nor blocks a winner; where it ran, a candidate broken there is no winner
    checked = [a for a in archs if not _emulation_down(results.get(a), baseline)]
    winners = [c for c in candidates if _is_winner(c, rows, checked, target, dec)]
    never = sky_module("exercised").never_run
    for c in winners:  # a winner whose changed functions never ran in the native build is flagged there
        for a in archs:
            fns = never((((results.get(a) or {}).get("variants") or {}).get(c) or {}).get("exercised"))
            if fns:
                notes.append(words.never_ran_natively(a, c, fns))
                for r in rows:
                    if r.candidate == c and r.arch == a and r.metric == target:
                        r.note = "; ".join(x for x in (r.note, words.NEVER_RAN) if x)
    decision = Decision(rows=rows, winners=[], notes=notes, target=target, archs=archs)
    decision.winners = sorted(winners, key=lambda c: -decision.target_speedup(c))
    return decision


def _emulation_down(result: Mapping[str, Any] | None, baseline: str) -> bool:
    base = ((result or {}).get("variants") or {}).get(baseline) or {}
    return bool((result or {}).get("emulated")) and base.get("status") != "ok"


def _notes(
    rows: list[Row],
    archs: list[str],
    results: Mapping[str, Mapping[str, Any]],
    baseline: str,
    project: Mapping[str, Any],
    dec: Mapping[str, Any],
) -> list[Note]:
    notes = []
    bench = project.get("benchmark") or {}
    per_round = max(1, int(bench.get("repetitions", 1)))
    rounds = int(bench.get("rounds", 1))
    for a in archs:
        res = results.get(a)
        if res is None or not res.get("variants"):
            notes.append(words.no_result(a))
            continue
        if res.get("complete") is False:
            notes.append(words.partial_result(a))
        base_v = (res.get("variants") or {}).get(baseline)
        if not base_v or base_v.get("status") != "ok":
            notes.append(words.baseline_not_ok(a, (base_v or {}).get("status", "missing")))
    for a in archs:
        screened = flagged_n = total = 0
        for m in {r.metric for r in rows}:
            mine = [r.comparison for r in rows if r.arch == a and r.metric == m and r.comparison]
            if (
                mine
            ):  # the baseline's samples once per metric (its most-trimmed comparison), each candidate's once
                screened += max(c.screened_base for c in mine) + sum(c.screened_cand for c in mine)
                flagged_n += mine[0].flagged_base + sum(c.flagged_cand for c in mine)
                total += (
                    mine[0].n_base + mine[0].screened_base + sum(c.n_cand + c.screened_cand for c in mine)
                )
        if screened:
            notes.append(words.screened(a, flagged_n, total, dec["interference_sigmas"], screened))
    if dec["primary"] != "wall":
        for a in archs:
            info = (results.get(a) or {}).get("simulation") or {}
            if not (results.get(a) or {}).get("variants") or (results.get(a) or {}).get("emulated"):
                continue
            if info.get("available"):
                secs = [
                    v["simulated"]["seconds"]
                    for v in results[a]["variants"].values()
                    if simulated.usable(v.get("simulated"))
                ]
                notes.append(words.simulated_tier(a, info, sum(secs) / max(1, len(secs))))
            else:
                notes.append(words.simulated_tier_unavailable(a, info.get("reason") or "not run"))
    for r in rows:
        if r.verdict == Verdict.NOT_MEASURABLE:
            c = r.comparison
            want = math.ceil(((c.pairs_needed if c else 0) or 0) / per_round) if c else 0
            notes.append(words.measure_on_vm(r.arch, r.candidate, want if want <= MAX_ROUNDS else None))
    noisy = [r for r in rows if r.verdict == "noisy" and r.comparison]
    for a in archs:
        for r in noisy:
            if r.arch != a:
                continue
            c = r.comparison
            spread = max(c.baseline_cv, c.candidate_cv)
            if c.design == "paired":
                want = math.ceil((c.pairs_needed or 0) / per_round)
                hint = (
                    Hint("rerun", want)
                    if rounds < want <= MAX_ROUNDS
                    else (Hint("quiet") if want > MAX_ROUNDS else None)
                )
                notes.append(words.undecided(a, r.metric, r.candidate, c.note, hint))
            elif spread > dec["max_noise_cv"]:
                need = samples_needed(spread, max(abs(c.speedup - 1), dec["min_effect"]), alpha=dec["alpha"])
                want = math.ceil(need / per_round)
                if want > 10 * max(1, rounds):
                    notes.append(words.too_noisy_for_rounds(a, r.metric, spread, want))
                else:
                    notes.append(
                        words.more_rounds(
                            a, r.metric, spread, want, per_round, rounds, Hint("rerun", min(MAX_ROUNDS, want))
                        )
                    )
            else:
                factor = ci_rounds_factor(c, dec["min_effect"])
                hint = Hint("rerun", min(MAX_ROUNDS, factor * rounds)) if factor <= 10 and rounds else None
                notes.append(words.undecided(a, r.metric, r.candidate, c.note, hint))
            break
    return notes
