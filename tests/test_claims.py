"""Claim verdicts on constructed records: win, loss, tie, too few seeds, truncated only, trends."""

from __future__ import annotations

import math
from typing import Any

import pytest
from scipy import stats

from common.claims import Arm as ClaimArm
from common.claims import Claim, evaluate_claim, welch
from common.records import RunRecord, unique_seeds

HARDWARE = {"device": "cpu", "device_name": "x", "cpu": "x", "cpu_count": 2, "platform": "p",
            "python": "3.11", "torch_threads": 1}  # fmt: skip


def record(variant: str, value: float, seed: int, *, paper: str = "toy", dataset: str = "d",
           scale: str = "reduced", stopped_by: str = "early-stopping", origin: str = "trained",
           config: dict[str, Any] | None = None,
           started: str = "2026-01-01T00:00:00") -> RunRecord:  # fmt: skip
    return RunRecord.model_validate({
        "paper": paper, "variant": variant, "dataset": dataset, "scale": scale, "origin": origin,
        "dataset_files": {}, "config": {"variant": variant, **(config or {})}, "seed": seed,
        "metrics": {"test": {"m": value}}, "selection_rule": "best valid",
        "training": {"stopped_by": stopped_by}, "git": {"commit": "abc", "dirty": False},
        "packages": {}, "hardware": HARDWARE, "wall_time_s": 1.0, "started_at": started,
        "ended_at": started,
    })  # fmt: skip


def claim(kind: str = "greater", **test: Any) -> Claim:
    body = {"kind": kind, "a": "new", "b": "old", "metrics": ["m"], **test}
    return Claim(id="c", wording="new beats old", where="Table 1", test=body)  # type: ignore[arg-type]


def arms(a: list[float], b: list[float], **kw: Any) -> list[RunRecord]:
    return [record("new", v, i, **kw) for i, v in enumerate(a)] + [
        record("old", v, i, **kw) for i, v in enumerate(b)
    ]


def verdict_of(records: list[RunRecord], c: Claim | None = None) -> str:
    (result,) = evaluate_claim(c or claim(), records, "toy")
    return result.verdict


def test_clear_win_is_supported_with_welch_numbers() -> None:
    a, b = [0.80, 0.82, 0.81, 0.83], [0.70, 0.71, 0.69]
    (result,) = evaluate_claim(claim(), arms(a, b), "toy")
    assert result.verdict == "supported"
    (ev,) = result.evidence
    expected = stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue
    assert ev.p == pytest.approx(expected) and ev.p < 0.05
    assert ev.estimate == pytest.approx(sum(a) / 4 - sum(b) / 3)
    assert ev.low < ev.estimate < ev.high and ev.low > 0
    assert (ev.a.n, ev.b.n) == (4, 3)


def test_clear_loss_is_contradicted() -> None:
    assert verdict_of(arms([0.60, 0.61, 0.62], [0.70, 0.71, 0.72])) == "contradicted"


def test_tie_is_inconclusive_and_its_interval_covers_zero() -> None:
    (result,) = evaluate_claim(claim(), arms([0.70, 0.72, 0.71], [0.71, 0.70, 0.72]), "toy")
    assert result.verdict == "inconclusive"
    assert result.evidence[0].low < 0 < result.evidence[0].high


def test_too_few_seeds() -> None:
    assert verdict_of(arms([0.9, 0.91], [0.1, 0.11, 0.12])) == "not enough seeds"


def test_truncated_runs_never_count() -> None:
    records = arms([0.9, 0.91, 0.92], [0.1, 0.11, 0.12], stopped_by="budget")
    assert verdict_of(records) == "only truncated runs"
    # converged runs of one arm and truncated runs of the other: still nothing to test
    mixed = arms([0.9, 0.91, 0.92], []) + arms([], [0.1, 0.11, 0.12], stopped_by="budget")
    assert verdict_of(mixed) == "only truncated runs"
    # a truncated outlier beside converged seeds changes nothing
    base = arms([0.80, 0.82, 0.81], [0.70, 0.71, 0.69])
    outlier = record("old", 0.99, 7, stopped_by="budget")
    (r1,), (r2,) = (evaluate_claim(claim(), x, "toy") for x in (base, [*base, outlier]))
    assert r1.evidence[0].p == r2.evidence[0].p and r2.evidence[0].b.truncated == 1


def test_every_metric_must_agree() -> None:
    c = claim(metrics=["m", "k"])
    recs = arms([0.80, 0.82, 0.81], [0.70, 0.71, 0.69])
    for r, k in zip(recs, [0.1, 0.1, 0.1, 0.5, 0.5, 0.5], strict=True):
        r.metrics.test["k"] = k  # new loses on k
    assert verdict_of(recs, c) == "contradicted"
    for r, k in zip(recs, [0.50, 0.52, 0.51, 0.51, 0.50, 0.52], strict=True):
        r.metrics.test["k"] = k  # a tie on k: one supported metric is not enough
    assert verdict_of(recs, c) == "inconclusive"


def test_constant_arm_uses_a_one_sample_test() -> None:
    runs = [record("new", v, i) for i, v in enumerate([0.80, 0.82, 0.81])]
    floor = record("old", 0.70, 0, origin="pretrained-baseline", stopped_by="not-trained")
    (result,) = evaluate_claim(claim(), [*runs, floor], "toy")
    ev = result.evidence[0]
    assert ev.b.constant and result.verdict == "supported"
    assert ev.p == pytest.approx(
        stats.ttest_1samp([0.80, 0.82, 0.81], 0.70, alternative="greater").pvalue
    )
    # the constant on the other side: a > b means the runs are below it
    reverse = claim(a="old", b="new")
    (flipped,) = evaluate_claim(reverse, [*runs, floor], "toy")
    assert flipped.verdict == "contradicted" and flipped.evidence[0].estimate < 0


def test_arm_of_another_paper() -> None:
    ours = [record("new", v, i) for i, v in enumerate([0.80, 0.82, 0.81])]
    theirs = [record("base", v, i, paper="other") for i, v in enumerate([0.7, 0.71, 0.69])]
    c = claim(b="other:base")
    assert verdict_of([*ours, *theirs], c) == "supported"
    assert verdict_of(ours, c) == "not run"


def test_each_seed_counts_once() -> None:
    first = record("new", 0.5, 0, started="2026-01-01T00:00:00")
    repeat = record("new", 0.9, 0, started="2026-02-01T00:00:00")
    other_config = record("new", 0.7, 0, config={"lr": 0.1})
    kept = unique_seeds([repeat, first, other_config])
    assert {r.metrics.test["m"] for r in kept} == {0.5, 0.7}


def test_welch_interval_matches_the_textbook_formula() -> None:
    a, b = ClaimArm("a", (1.0, 2.0, 4.0)), ClaimArm("b", (0.0, 0.5, 0.2, 0.1))
    ev = welch(a, b, "m")
    va, vb = a.std**2 / a.n, b.std**2 / b.n
    df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert (ev.low, ev.high) == pytest.approx((ev.estimate - half, ev.estimate + half))


def _trend_records(gaps: dict[int, float]) -> list[RunRecord]:
    out = []
    for batch, gap in gaps.items():
        for seed, noise in enumerate([-0.005, 0.0, 0.005]):
            cfg = {"batch_size": batch}
            out.append(record("old", 0.70 + noise, seed, config=cfg))
            out.append(record("new", 0.70 + gap - noise, seed, config=cfg))
    return out


def test_shrinking_gap_is_supported_growing_gap_contradicted() -> None:
    c = claim("gap-shrinks", along="batch_size")
    shrinking = _trend_records({32: 0.08, 64: 0.06, 128: 0.04, 256: 0.02})
    (result,) = evaluate_claim(c, shrinking, "toy")
    assert result.verdict == "supported"
    ev = result.evidence[0]
    assert ev.estimate == pytest.approx(-0.02, abs=1e-9)  # per doubling of the batch
    assert [round(g, 6) for _, g, _ in ev.levels] == [0.08, 0.06, 0.04, 0.02]
    growing = _trend_records({32: 0.02, 64: 0.04, 128: 0.06, 256: 0.08})
    assert verdict_of(growing, c) == "contradicted"
    flat = _trend_records({32: 0.03, 64: 0.03, 128: 0.03})
    assert verdict_of(flat, c) == "inconclusive"


def test_trend_needs_seeds_at_every_level() -> None:
    c = claim("gap-shrinks", along="batch_size")
    records = _trend_records({32: 0.08, 64: 0.06})
    records = [r for r in records if not (r.config["batch_size"] == 64 and r.seed > 0)]
    assert verdict_of(records, c) == "not enough seeds"


def test_claim_needs_a_test_or_a_reason() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Claim(id="x", wording="words", where="Table 1")
    with pytest.raises(ValueError, match="along"):
        claim("gap-shrinks")
    (result,) = evaluate_claim(
        Claim(id="x", wording="words", where="Abstract", untestable="no data"), [], "toy"
    )
    assert result.verdict == "untestable here" and result.note == "no data"


def _textbook_tost(a: list[float], b: list[float], margin: float) -> float:
    """TOST p from the Welch statistic and degrees of freedom written out (Schuirmann 1987)."""
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    va = sum((x - ma) ** 2 for x in a) / (len(a) - 1) / len(a)
    vb = sum((x - mb) ** 2 for x in b) / (len(b) - 1) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    p_lower = stats.t.sf((ma - mb + margin) / se, df)  # H0: a − b ≤ −margin
    p_upper = stats.t.cdf((ma - mb - margin) / se, df)  # H0: a − b ≥ margin
    return float(max(p_lower, p_upper))


def test_equivalence_inside_the_margin_is_supported_with_the_textbook_p() -> None:
    a, b = [0.700, 0.705, 0.698, 0.702], [0.701, 0.699, 0.703]
    c = claim("equivalent", margin=0.02)
    (result,) = evaluate_claim(c, arms(a, b), "toy")
    (ev,) = result.evidence
    assert result.verdict == "supported"
    assert ev.p == pytest.approx(_textbook_tost(a, b, 0.02)) and ev.p < 0.05
    assert ev.low < 0.0 < ev.high  # the difference itself is not significant
    # the same runs against a margin smaller than their spread cannot show equivalence
    assert verdict_of(arms(a, b), claim("equivalent", margin=0.0005)) == "inconclusive"


def test_equivalence_is_contradicted_outside_the_margin_on_either_side() -> None:
    near, far = [0.70, 0.71, 0.70], [0.80, 0.81, 0.80]
    assert verdict_of(arms(near, far), claim("equivalent", margin=0.02)) == "contradicted"
    assert verdict_of(arms(far, near), claim("equivalent", margin=0.02)) == "contradicted"
    # the same gap with a margin wider than it: equivalent
    assert verdict_of(arms(near, far), claim("equivalent", margin=0.2)) == "supported"


def test_equivalence_is_not_shown_by_noisy_arms_whose_means_agree() -> None:
    a, b = [0.60, 0.80, 0.70], [0.75, 0.65, 0.70]
    (result,) = evaluate_claim(claim("equivalent", margin=0.02), arms(a, b), "toy")
    assert result.verdict == "inconclusive" and result.evidence[0].estimate == pytest.approx(0)
    assert result.evidence[0].p == pytest.approx(_textbook_tost(a, b, 0.02))


def test_equivalence_against_a_constant_arm() -> None:
    runs = [record("new", v, i) for i, v in enumerate([0.700, 0.702, 0.698])]
    floor = record("old", 0.701, 0, origin="pretrained-baseline", stopped_by="not-trained")
    (result,) = evaluate_claim(claim("equivalent", margin=0.01), [*runs, floor], "toy")
    p_lower = stats.ttest_1samp([0.700, 0.702, 0.698], 0.701 - 0.01, alternative="greater")
    p_upper = stats.ttest_1samp([0.700, 0.702, 0.698], 0.701 + 0.01, alternative="less")
    assert result.verdict == "supported"
    assert result.evidence[0].p == pytest.approx(max(p_lower.pvalue, p_upper.pvalue))


def test_equivalence_needs_a_margin_and_only_it_has_one() -> None:
    with pytest.raises(ValueError, match="margin"):
        claim("equivalent")
    with pytest.raises(ValueError, match="margin"):
        claim("greater", margin=0.1)
    assert claim("equivalent", margin=0.5).test.describe() == "|new − old| < 0.5 on m"  # type: ignore[union-attr]
