"""A paper's claims as data, and their verdicts computed from the run records.

Each ``results/reported/<paper>.yaml`` may list ``claims``: the paper's wording, where it says
it, and a testable form::

    claims:
      - id: mclrec-over-sasrec
        wording: "MCLRec outperforms ... SASRec ..."
        where: "Table 3"
        test: {kind: greater, a: mclrec, b: sasrec, metrics: [HR@10, NDCG@10]}
      - id: gap-shrinks
        test: {kind: gap-shrinks, a: dcl, b: simclr, metrics: [linear top-1], along: batch_size}
      - id: as-good-as
        test: {kind: equivalent, a: pixpro, b: byol, metrics: [linear top-1], margin: 1.0}
      - id: untestable-here
        untestable: "why it cannot be tested with what is on hand"

The rule (α = 0.05, at least 3 seeds per trained arm, converged runs only), per claim, dataset,
scale and metric:

- ``greater`` (A > B): one-sided Welch's t-test (``scipy.stats.ttest_ind``, unequal variances).
  ``supported`` when p < α for A > B, ``contradicted`` when p < α for B > A, else
  ``inconclusive``. An arm that is not trained here (a scored artifact or a fixed baseline:
  one deterministic value) is a constant, and A is tested against it with a one-sample t-test.
  The difference is given with its 95 % (Welch) interval.
- ``gap-shrinks`` (A − B decreases as ``along`` grows): ordinary least squares of the metric on
  arm, log2(``along``) and their interaction over every run; the interaction is the change of
  the gap per doubling of ``along``, given with its 95 % interval and a one-sided t-test
  (``supported``: slope < 0 with p < α; ``contradicted``: slope > 0 with p < α).
- ``equivalent`` (|A − B| < ``margin``, the claim's own statement of "within noise", in the
  metric's units): two one-sided tests (TOST, Schuirmann 1987) with the Welch statistic of
  ``greater``, H0 A − B ≤ −margin and H0 A − B ≥ margin; p = the larger of the two.
  ``supported`` when p < α (the difference is inside the margin), ``contradicted`` when the
  difference is significantly outside it (one-sided p < α for A − B > margin or for
  A − B < −margin), else ``inconclusive`` (too few seeds or too much spread to tell).

A claim's verdict on a dataset and scale combines its metrics: ``supported`` when every metric
is, ``contradicted`` when any metric is, else ``inconclusive``. Truncated runs (training cut by
a budget) never enter a test: an arm with only truncated runs gives ``only truncated runs``,
fewer than 3 converged seeds ``not enough seeds``. Each seed counts once (see
:func:`common.records.unique_seeds`). No correction for testing several metrics or datasets.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import stats

from common.records import RunRecord

ALPHA = 0.05
MIN_SEEDS = 3
ClaimKind = Literal["greater", "gap-shrinks", "equivalent"]
MetricVerdict = Literal["supported", "contradicted", "inconclusive"]
Verdict = Literal[
    "supported",
    "contradicted",
    "inconclusive",
    "not enough seeds",
    "only truncated runs",
    "not run",
    "untestable here",
]


class ClaimTest(BaseModel):
    """The testable form: ``a`` > ``b``, or the gap a − b shrinking along a config field.

    An arm is a variant of the claim's paper, or ``<paper>:<variant>`` for another paper's
    runs (ESimCSE against the SimCSE folder's ``unsup-simcse``).
    """

    model_config = ConfigDict(extra="forbid")

    kind: ClaimKind
    a: str = Field(min_length=1)
    b: str = Field(min_length=1)
    metrics: list[str] = Field(min_length=1)
    datasets: list[str] | None = None  # default: every dataset with records of either arm
    at: dict[str, int | float | str] = Field(default_factory=dict)  # config filter
    along: str | None = None  # the config field a gap-shrinks claim is about
    margin: float | None = Field(None, gt=0)  # equivalent: |a − b| < margin, metric units

    @model_validator(mode="after")
    def _along_iff_trend(self) -> ClaimTest:
        if (self.kind == "gap-shrinks") != (self.along is not None):
            raise ValueError("'along' is required for kind gap-shrinks and only there")
        if (self.kind == "equivalent") != (self.margin is not None):
            raise ValueError("'margin' is required for kind equivalent and only there")
        return self

    def describe(self) -> str:
        metrics = " and ".join(self.metrics)
        at = "".join(f", {k}={v}" for k, v in self.at.items())
        if self.kind == "greater":
            return f"{self.a} > {self.b} on {metrics}{at}"
        if self.kind == "equivalent":
            return f"|{self.a} − {self.b}| < {self.margin:g} on {metrics}{at}"
        return f"{self.a} − {self.b} decreases as {self.along} grows ({metrics}{at})"


class Claim(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    wording: str = Field(min_length=3)
    where: str = Field(min_length=2)
    test: ClaimTest | None = None
    untestable: str | None = None

    @model_validator(mode="after")
    def _test_or_reason(self) -> Claim:
        if (self.test is None) == (self.untestable is None):
            raise ValueError(f"claim {self.id}: give exactly one of 'test' and 'untestable'")
        return self


@dataclass(frozen=True)
class Arm:
    """The converged values of one arm (a constant arm is one value, not trained here)."""

    name: str
    values: tuple[float, ...]
    constant: bool = False
    truncated: int = 0  # runs left out because a budget cut their training

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values) if self.values else math.nan

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if self.n > 1 else 0.0


@dataclass(frozen=True)
class Evidence:
    """One metric's test: the two arms, the estimate with its 95 % interval, the p-value."""

    metric: str
    a: Arm
    b: Arm
    estimate: float
    low: float
    high: float
    p: float
    verdict: MetricVerdict
    levels: tuple[tuple[float, float, float], ...] = ()  # gap-shrinks: (level, gap, gap se)


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    dataset: str
    scale: str
    verdict: Verdict
    evidence: tuple[Evidence, ...] = ()
    note: str = ""
    arms: tuple[Arm, ...] = field(default=())


def _arm_matches(record: RunRecord, arm: str) -> bool:
    paper, sep, variant = arm.rpartition(":")
    return record.variant == variant and (not sep or record.paper == paper)


def _qualified(arm: str, paper: str) -> str:
    return arm if ":" in arm else f"{paper}:{arm}"


def _records_for(
    records: Sequence[RunRecord], arm: str, test: ClaimTest, paper: str
) -> list[RunRecord]:
    full = _qualified(arm, paper)
    return [
        r
        for r in records
        if _arm_matches(r, full) and all(r.config.get(k) == v for k, v in test.at.items())
    ]


def arm_values(records: Sequence[RunRecord], name: str, metric: str) -> Arm:
    """An arm from records already narrowed to one variant, dataset and scale."""
    kept = [r for r in records if metric in r.metrics.test]
    trained = [r for r in kept if r.origin == "trained"]
    if kept and not trained:  # a scored artifact or fixed baseline: deterministic
        return Arm(name, (statistics.fmean(r.metrics.test[metric] for r in kept),), True)
    converged = tuple(r.metrics.test[metric] for r in trained if not r.truncated)
    return Arm(name, converged, False, sum(r.truncated for r in trained))


def _metric_verdict(p_greater: float, p_less: float) -> MetricVerdict:
    if p_greater < ALPHA:
        return "supported"
    if p_less < ALPHA:
        return "contradicted"
    return "inconclusive"


def _standard_error(a: Arm, b: Arm) -> tuple[float, float]:
    """(standard error of mean(a) − mean(b), Welch's degrees of freedom); one-sample when an
    arm is a constant."""
    if a.constant or b.constant:
        sample = b if a.constant else a
        return sample.std / math.sqrt(sample.n), float(sample.n - 1)
    va, vb = a.std**2 / a.n, b.std**2 / b.n
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1)) if se > 0 else 1.0
    return se, df


def p_difference_above(a: Arm, b: Arm, shift: float) -> float:
    """One-sided p for H1: mean(a) − mean(b) > ``shift`` (Welch's t-test, or a one-sample test
    when an arm is a constant); with no spread in either arm the sign decides (p 0 or 1)."""
    diff = a.mean - b.mean
    se, _ = _standard_error(a, b)
    if se == 0:
        return float(diff <= shift)
    if a.constant:  # mean(b) < a − shift
        return float(stats.ttest_1samp(b.values, a.mean - shift, alternative="less").pvalue)
    if b.constant:
        return float(stats.ttest_1samp(a.values, b.mean + shift, alternative="greater").pvalue)
    shifted = [v - shift for v in a.values]
    return float(stats.ttest_ind(shifted, b.values, equal_var=False, alternative="greater").pvalue)


def _interval(a: Arm, b: Arm) -> tuple[float, float, float]:
    """(mean(a) − mean(b), its 95 % interval)."""
    diff = a.mean - b.mean
    se, df = _standard_error(a, b)
    half = float(stats.t.ppf(0.975, df)) * se if se > 0 else 0.0
    return diff, diff - half, diff + half


def welch(a: Arm, b: Arm, metric: str) -> Evidence:
    """One-sided Welch's t-test of a > b (one-sample when an arm is a constant), 95 % CI."""
    p_greater = p_difference_above(a, b, 0.0)
    diff, low, high = _interval(a, b)
    p_less = 1.0 - p_greater if _standard_error(a, b)[0] > 0 else float(diff >= 0)
    return Evidence(metric, a, b, diff, low, high, p_greater, _metric_verdict(p_greater, p_less))


def tost(a: Arm, b: Arm, metric: str, margin: float) -> Evidence:
    """Two one-sided tests of |mean(a) − mean(b)| < ``margin``; ``p`` is the larger of the two
    (equivalence is shown when it is below α), the interval is the usual 95 % one."""
    p_above_lower = p_difference_above(a, b, -margin)  # H1: a − b > −margin
    p_below_upper = p_difference_above(b, a, -margin)  # H1: b − a > −margin, i.e. a − b < margin
    p_equivalent = max(p_above_lower, p_below_upper)
    p_outside = min(p_difference_above(a, b, margin), p_difference_above(b, a, margin))
    diff, low, high = _interval(a, b)
    return Evidence(metric, a, b, diff, low, high, p_equivalent,
                    _metric_verdict(p_equivalent, p_outside))  # fmt: skip


def gap_trend(points: Sequence[tuple[float, int, float]], metric: str, a: Arm, b: Arm,
              levels: tuple[tuple[float, float, float], ...]) -> Evidence:  # fmt: skip
    """OLS of y on [1, arm, log2 x, arm·log2 x]; the last coefficient is the gap's slope.

    ``points`` are (x, arm (1 = a, 0 = b), y) for every run. One-sided p for slope < 0.
    """
    x = np.log2(np.array([p[0] for p in points], dtype=float))
    arm = np.array([p[1] for p in points], dtype=float)
    y = np.array([p[2] for p in points], dtype=float)
    design = np.column_stack([np.ones_like(x), arm, x, arm * x])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    dof = len(y) - design.shape[1]
    resid = y - design @ coef
    sigma2 = float(resid @ resid) / dof
    cov = sigma2 * np.linalg.inv(design.T @ design)
    slope, se = float(coef[3]), math.sqrt(float(cov[3, 3]))
    if se > 0:
        p_less_zero = float(stats.t.cdf(slope / se, dof))
        p_more_zero = 1.0 - p_less_zero
    else:  # an exact fit: the sign decides
        p_less_zero, p_more_zero = float(slope >= 0), float(slope <= 0)
    half = float(stats.t.ppf(0.975, dof)) * se
    verdict = _metric_verdict(p_less_zero, p_more_zero)
    return Evidence(metric, a, b, slope, slope - half, slope + half, p_less_zero, verdict,
                    levels)  # fmt: skip


def _combine(evidence: Sequence[Evidence]) -> Verdict:
    verdicts = {e.verdict for e in evidence}
    if "contradicted" in verdicts:
        return "contradicted"
    return "supported" if verdicts == {"supported"} else "inconclusive"


def _shortfall(arms: Sequence[Arm]) -> Verdict | None:
    """Why the arms cannot be tested, if they cannot."""
    if any(not arm.values and arm.truncated for arm in arms):
        return "only truncated runs"
    if any(not arm.values for arm in arms):
        return "not run"
    if any(not arm.constant and arm.n < MIN_SEEDS for arm in arms):
        return "not enough seeds"
    return None


def _shortfall_note(arms: Sequence[Arm]) -> str:
    parts = []
    for arm in arms:
        kind = "constant" if arm.constant else f"{arm.n} converged"
        extra = f", {arm.truncated} truncated" if arm.truncated else ""
        parts.append(f"{arm.name}: {kind}{extra}")
    return "; ".join(parts)


def _test_pairwise(claim: Claim, test: ClaimTest, dataset: str, scale: str,
                  records: Sequence[RunRecord], paper: str) -> ClaimResult:  # fmt: skip
    evidence: list[Evidence] = []
    arms: tuple[Arm, ...] = ()
    for metric in test.metrics:
        a = arm_values(_records_for(records, test.a, test, paper), test.a, metric)
        b = arm_values(_records_for(records, test.b, test, paper), test.b, metric)
        arms = (a, b)
        if a.constant and b.constant:
            return ClaimResult(claim, dataset, scale, "not enough seeds",
                               note="both arms are single fixed values", arms=arms)  # fmt: skip
        short = _shortfall(arms)
        if short is not None:
            return ClaimResult(claim, dataset, scale, short, note=_shortfall_note(arms),
                               arms=arms)  # fmt: skip
        if test.kind == "equivalent":
            assert test.margin is not None
            evidence.append(tost(a, b, metric, test.margin))
        else:
            evidence.append(welch(a, b, metric))
    return ClaimResult(claim, dataset, scale, _combine(evidence), tuple(evidence), arms=arms)


def _level_arms(records: Sequence[RunRecord], test: ClaimTest, metric: str, level: object,
                paper: str) -> tuple[Arm, Arm]:  # fmt: skip
    at_level = [r for r in records if r.config.get(test.along or "") == level]
    return (
        arm_values(_records_for(at_level, test.a, test, paper), test.a, metric),
        arm_values(_records_for(at_level, test.b, test, paper), test.b, metric),
    )


def _test_trend(claim: Claim, test: ClaimTest, dataset: str, scale: str,
                records: Sequence[RunRecord], paper: str) -> ClaimResult:  # fmt: skip
    along = test.along or ""
    level_values = sorted({r.config[along] for r in records if along in r.config})
    evidence = []
    for metric in test.metrics:
        per_level = {lv: _level_arms(records, test, metric, lv, paper) for lv in level_values}
        arms = tuple(arm for pair in per_level.values() for arm in pair)
        short = _shortfall(arms) if per_level else "not run"
        if short is None and len(per_level) < 2:
            short = "not enough seeds"
        if short is not None:
            note = "; ".join(f"{along}={lv}: {_shortfall_note(p)}" for lv, p in per_level.items())
            return ClaimResult(claim, dataset, scale, short, note=note)
        points = [(float(lv), 1 if i == 0 else 0, v) for lv, pair in per_level.items()
                  for i, arm in enumerate(pair) for v in arm.values]  # fmt: skip
        levels = tuple(
            (float(lv), a.mean - b.mean, math.sqrt(a.std**2 / a.n + b.std**2 / b.n))
            for lv, (a, b) in per_level.items()
        )
        pooled_a = Arm(test.a, tuple(v for a, _ in per_level.values() for v in a.values))
        pooled_b = Arm(test.b, tuple(v for _, b in per_level.values() for v in b.values))
        evidence.append(gap_trend(points, metric, pooled_a, pooled_b, levels))
    return ClaimResult(claim, dataset, scale, _combine(evidence), tuple(evidence))


def evaluate_claim(claim: Claim, records: Sequence[RunRecord], paper: str) -> list[ClaimResult]:
    """One result per (dataset, scale) on which either arm has non-smoke records.

    ``records`` may hold every paper's runs; a bare arm name means a variant of ``paper``.
    """
    if claim.test is None:
        return [ClaimResult(claim, "—", "—", "untestable here", note=claim.untestable or "")]
    test = claim.test
    arms = [_qualified(arm, paper) for arm in (test.a, test.b)]
    relevant = [r for r in records if r.scale != "smoke" and any(_arm_matches(r, a) for a in arms)]
    if test.datasets is not None:
        relevant = [r for r in relevant if r.dataset in test.datasets]
    cells = sorted({(r.dataset, r.scale) for r in relevant})
    if not cells:
        return [ClaimResult(claim, ", ".join(test.datasets or ["—"]), "—", "not run")]
    results = []
    for dataset, scale in cells:
        cell = [r for r in relevant if r.dataset == dataset and r.scale == scale]
        tester = _test_trend if test.kind == "gap-shrinks" else _test_pairwise
        results.append(tester(claim, test, dataset, scale, cell, paper))
    return results


def evaluate_claims(
    claims: Sequence[Claim], records: Sequence[RunRecord], paper: str
) -> list[ClaimResult]:
    return [result for claim in claims for result in evaluate_claim(claim, records, paper)]


def verdict_counts(results: Sequence[ClaimResult]) -> str:
    """``2 supported · 1 inconclusive`` (the README's claims column)."""
    counts: dict[str, int] = {}
    for result in results:
        counts[result.verdict] = counts.get(result.verdict, 0) + 1
    return " · ".join(f"{n} {verdict}" for verdict, n in counts.items()) or "no claims"
