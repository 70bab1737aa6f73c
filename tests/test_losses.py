"""Tests of common.losses against loop-based references, closed forms and gradcheck."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from common.losses import alignment, dcl, dclw, info_nce, nt_xent, supcon, uniformity
from common.losses.decoupled import _decoupled_loss, vmf_weights

Vec = list[float]

# --------------------------------------------------------------------------------------
# Naive references: python loops over anchors, exp / log by hand with math.
# --------------------------------------------------------------------------------------


def _rows(t: Tensor) -> list[Vec]:
    return [[float(v) for v in row] for row in t.detach().double().tolist()]


def _dot(a: Vec, b: Vec) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _sim(a: Vec, b: Vec, similarity: str) -> float:
    if similarity == "dot":
        return _dot(a, b)
    return _dot(a, b) / math.sqrt(_dot(a, a) * _dot(b, b))


def _log_sum_exp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def ref_info_nce(
    q: Tensor,
    k: Tensor,
    t: float,
    similarity: str,
    extra: Tensor | None = None,
    symmetric: bool = False,
) -> list[float]:
    """Per-row loss: -log exp(s_ii/t) / (sum_j exp(s_ij/t) + sum_m exp(s(q_i, n_m)/t))."""
    qs, ks = _rows(q), _rows(k)
    ns = _rows(extra) if extra is not None else []

    def one_way(anchors: list[Vec], cands: list[Vec]) -> list[float]:
        out = []
        for i, a in enumerate(anchors):
            logits = [_sim(a, c, similarity) / t for c in cands + ns]
            out.append(-logits[i] + _log_sum_exp(logits))
        return out

    forward = one_way(qs, ks)
    if not symmetric:
        return forward
    backward = one_way(ks, qs)
    return [0.5 * (x + y) for x, y in zip(forward, backward, strict=True)]


def _views(z1: Tensor, z2: Tensor) -> tuple[list[Vec], int]:
    return _rows(z1) + _rows(z2), z1.shape[0]


def ref_nt_xent(z1: Tensor, z2: Tensor, t: float, similarity: str) -> float:
    views, n = _views(z1, z2)
    total = 0.0
    for a in range(2 * n):
        p = (a + n) % (2 * n)
        logits = {b: _sim(views[a], views[b], similarity) / t for b in range(2 * n) if b != a}
        total += -logits[p] + _log_sum_exp(list(logits.values()))
    return total / (2 * n)


def ref_vmf_weights(z1: Tensor, z2: Tensor, sigma: float) -> list[float]:
    r1, r2 = _rows(z1), _rows(z2)
    n = len(r1)
    e = [math.exp(_sim(a, b, "cosine") / sigma) for a, b in zip(r1, r2, strict=True)]
    mean_e = sum(e) / n
    return [2.0 - ei / mean_e for ei in e]


def ref_dcl(
    z1: Tensor, z2: Tensor, t: float, similarity: str, weights: list[float] | None = None
) -> float:
    views, n = _views(z1, z2)
    total = 0.0
    for a in range(2 * n):
        p = (a + n) % (2 * n)
        w = 1.0 if weights is None else weights[a % n]
        negs = [_sim(views[a], views[b], similarity) / t for b in range(2 * n) if b not in (a, p)]
        total += -w * _sim(views[a], views[p], similarity) / t + _log_sum_exp(negs)
    return total / (2 * n)


def ref_supcon(
    features: Tensor, labels: list[int] | None, t: float, base_t: float, mode: str
) -> float:
    n, v, _ = features.shape
    labs = list(range(n)) if labels is None else labels
    # flat index = view * n + sample (view-major), as in the reference implementation
    items = [(vi, si, _rows(features[:, vi])[si]) for vi in range(v) for si in range(n)]
    anchors = [it for it in items if mode == "all" or it[0] == 0]
    total = 0.0
    for va, sa, fa in anchors:
        others = [(vb, sb, fb) for vb, sb, fb in items if (vb, sb) != (va, sa)]
        log_den = _log_sum_exp([_sim(fa, fb, "cosine") / t for _, _, fb in others])
        positives = [fb for _, sb, fb in others if labs[sb] == labs[sa]]
        if positives:
            mean_lp = sum(_sim(fa, fp, "cosine") / t - log_den for fp in positives)
            total += -(t / base_t) * mean_lp / len(positives)
    return total / len(anchors)


def ref_alignment(x: Tensor, y: Tensor, alpha: float) -> float:
    rx, ry = _rows(x), _rows(y)
    d = [
        math.sqrt(sum((a - b) ** 2 for a, b in zip(u, w, strict=True))) ** alpha
        for u, w in zip(rx, ry, strict=True)
    ]
    return float(sum(d)) / len(d)


def ref_uniformity(x: Tensor, t: float) -> float:
    r = _rows(x)
    vals = [
        math.exp(-t * sum((a - b) ** 2 for a, b in zip(r[i], r[j], strict=True)))
        for i in range(len(r))
        for j in range(i + 1, len(r))
    ]
    return math.log(sum(vals) / len(vals))


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def _randn(*shape: int, seed: int, scale: float = 1.0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64) * scale


def _pair(n: int, d: int, seed: int, similarity: str) -> tuple[Tensor, Tensor]:
    # dot products of moderate size so that small temperatures stay well conditioned
    scale = 0.5 if similarity == "dot" else 1.0
    return _randn(n, d, seed=seed, scale=scale), _randn(n, d, seed=seed + 1, scale=scale)


def _orthonormal(n: int, d: int) -> Tensor:
    return torch.eye(d, dtype=torch.float64)[:n]


SIMS = ["cosine", "dot"]
BATCHES = [2, 3, 7]
TEMPS = [0.1, 0.5, 1.0]

# --------------------------------------------------------------------------------------
# Against the loop references
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("similarity", SIMS)
@pytest.mark.parametrize("n", [1, *BATCHES])
@pytest.mark.parametrize("t", TEMPS)
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("n_extra", [0, 4])
def test_info_nce_matches_reference(
    similarity: str, n: int, t: float, symmetric: bool, n_extra: int
) -> None:
    q, k = _pair(n, 5, seed=n, similarity=similarity)
    extra = _randn(n_extra, 5, seed=99) if n_extra else None
    expected = ref_info_nce(q, k, t, similarity, extra, symmetric)
    kwargs = dict(temperature=t, similarity=similarity, extra_negatives=extra, symmetric=symmetric)
    per_row = info_nce(q, k, reduction="none", **kwargs)  # type: ignore[arg-type]
    assert per_row.shape == (n,)
    torch.testing.assert_close(per_row, torch.tensor(expected, dtype=torch.float64))
    mean = info_nce(q, k, **kwargs)  # type: ignore[arg-type]
    total = info_nce(q, k, reduction="sum", **kwargs)  # type: ignore[arg-type]
    assert mean.item() == pytest.approx(sum(expected) / n, rel=1e-10)
    assert total.item() == pytest.approx(sum(expected), rel=1e-10)


def test_info_nce_default_temperature_matches_reference() -> None:
    q, k = _pair(6, 8, seed=3, similarity="cosine")
    expected = sum(ref_info_nce(q, k, 0.07, "cosine")) / 6
    assert info_nce(q, k).item() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("similarity", SIMS)
@pytest.mark.parametrize("n", [1, *BATCHES])
@pytest.mark.parametrize("t", TEMPS)
def test_nt_xent_matches_reference(similarity: str, n: int, t: float) -> None:
    z1, z2 = _pair(n, 5, seed=10 + n, similarity=similarity)
    got = nt_xent(z1, z2, temperature=t, similarity=similarity)  # type: ignore[arg-type]
    assert got.item() == pytest.approx(ref_nt_xent(z1, z2, t, similarity), rel=1e-10)


@pytest.mark.parametrize("similarity", SIMS)
@pytest.mark.parametrize("n", BATCHES)
@pytest.mark.parametrize("t", TEMPS)
def test_dcl_matches_reference(similarity: str, n: int, t: float) -> None:
    z1, z2 = _pair(n, 5, seed=20 + n, similarity=similarity)
    got = dcl(z1, z2, temperature=t, similarity=similarity)  # type: ignore[arg-type]
    assert got.item() == pytest.approx(ref_dcl(z1, z2, t, similarity), rel=1e-10)


@pytest.mark.parametrize("n", BATCHES)
@pytest.mark.parametrize("t", TEMPS)
@pytest.mark.parametrize("sigma", [0.2, 0.5, 2.0])
def test_dclw_matches_reference(n: int, t: float, sigma: float) -> None:
    z1, z2 = _pair(n, 5, seed=30 + n, similarity="cosine")
    weights = ref_vmf_weights(z1, z2, sigma)
    expected = ref_dcl(z1, z2, t, "cosine", weights)
    assert dclw(z1, z2, temperature=t, sigma=sigma).item() == pytest.approx(expected, rel=1e-10)
    got_w = vmf_weights(F.normalize(z1, dim=1), F.normalize(z2, dim=1), sigma)
    torch.testing.assert_close(got_w, torch.tensor(weights, dtype=torch.float64))
    # w = 2 - exp(s_i)/mean_j exp(s_j) averages to exactly 1
    assert got_w.mean().item() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("n", [2, 5])
@pytest.mark.parametrize("t", [0.1, 0.5])
@pytest.mark.parametrize("mode", ["all", "one"])
@pytest.mark.parametrize(("views", "labelled"), [(2, False), (3, False), (1, True), (2, True)])
def test_supcon_matches_reference(n: int, views: int, t: float, mode: str, labelled: bool) -> None:
    feats = _randn(n, views, 4, seed=40 + n * views)
    labels = [i % 2 for i in range(n)] if labelled else None
    lab_t = torch.tensor(labels) if labels is not None else None
    base = 0.07
    got = supcon(feats, lab_t, temperature=t, base_temperature=base, contrast_mode=mode)  # type: ignore[arg-type]
    assert got.item() == pytest.approx(ref_supcon(feats, labels, t, base, mode), rel=1e-10)


def test_supcon_anchor_without_positive_counts_as_zero() -> None:
    # labels [0, 1, 1, 2] with one view: samples 0 and 3 have no positive.
    feats = _randn(4, 1, 3, seed=7)
    labels = [0, 1, 1, 2]
    got = supcon(feats, torch.tensor(labels), temperature=0.5)
    assert torch.isfinite(got)
    assert got.item() == pytest.approx(ref_supcon(feats, labels, 0.5, 0.07, "all"), rel=1e-10)


@pytest.mark.parametrize("n", [1, 4, 9])
@pytest.mark.parametrize("alpha", [1.0, 2.0, 3.0])
def test_alignment_matches_reference(n: int, alpha: float) -> None:
    x = F.normalize(_randn(n, 3, seed=50 + n), dim=1)
    y = F.normalize(_randn(n, 3, seed=60 + n), dim=1)
    assert alignment(x, y, alpha).item() == pytest.approx(ref_alignment(x, y, alpha), rel=1e-10)


@pytest.mark.parametrize("n", [2, 4, 9])
@pytest.mark.parametrize("t", [0.5, 2.0, 5.0])
def test_uniformity_matches_reference(n: int, t: float) -> None:
    x = F.normalize(_randn(n, 3, seed=70 + n), dim=1)
    assert uniformity(x, t).item() == pytest.approx(ref_uniformity(x, t), rel=1e-10)


# --------------------------------------------------------------------------------------
# Closed forms on embeddings of known geometry
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 5])
@pytest.mark.parametrize("t", [0.1, 0.5, 1.0])
def test_closed_forms_orthonormal_identical_views(n: int, t: float) -> None:
    # z1 = z2 = e_1..e_n: positive cosine 1, every other pair cosine 0.
    z = _orthonormal(n, 6)
    # info_nce: -1/t + log(e^{1/t} + (n-1) e^0) = log(1 + (n-1) e^{-1/t})
    assert info_nce(z, z, temperature=t).item() == pytest.approx(
        math.log(1 + (n - 1) * math.exp(-1 / t)), rel=1e-12
    )
    # nt_xent: 2n-2 negatives of logit 0 -> log(1 + (2n-2) e^{-1/t})
    assert nt_xent(z, z, temperature=t).item() == pytest.approx(
        math.log(1 + (2 * n - 2) * math.exp(-1 / t)), rel=1e-12
    )
    # dcl: -1/t + log((2n-2) e^0) = log(2n-2) - 1/t
    assert dcl(z, z, temperature=t).item() == pytest.approx(math.log(2 * n - 2) - 1 / t, rel=1e-12)
    # dclw: all positive cosines equal -> w_i = 2 - 1 = 1, same as dcl
    assert dclw(z, z, temperature=t).item() == pytest.approx(math.log(2 * n - 2) - 1 / t, rel=1e-12)
    # supcon, no labels, two views, t = base: same anchors and sets as nt_xent
    feats = torch.stack([z, z], dim=1)
    assert supcon(feats, temperature=t, base_temperature=t).item() == pytest.approx(
        math.log(1 + (2 * n - 2) * math.exp(-1 / t)), rel=1e-12
    )
    # alignment 0; uniformity: every pair at squared distance 2 -> log e^{-2t} = -2t
    assert alignment(z, z).item() == 0.0
    assert uniformity(z, t).item() == pytest.approx(-2 * t, rel=1e-12)


@pytest.mark.parametrize("n", [2, 4])
@pytest.mark.parametrize("t", [0.2, 1.0])
def test_closed_forms_antipodal_views(n: int, t: float) -> None:
    # z2 = -z1 with orthonormal z1: positive cosine -1, all other pairs cosine 0.
    z1 = _orthonormal(n, 5)
    z2 = -z1
    # info_nce: 1/t + log(e^{-1/t} + (n-1)) = log(1 + (n-1) e^{1/t})
    assert info_nce(z1, z2, temperature=t).item() == pytest.approx(
        math.log(1 + (n - 1) * math.exp(1 / t)), rel=1e-12
    )
    # nt_xent: log(1 + (2n-2) e^{1/t})
    assert nt_xent(z1, z2, temperature=t).item() == pytest.approx(
        math.log(1 + (2 * n - 2) * math.exp(1 / t)), rel=1e-12
    )
    # dcl: 1/t + log(2n-2)
    assert dcl(z1, z2, temperature=t).item() == pytest.approx(math.log(2 * n - 2) + 1 / t)
    # alignment: ||x - (-x)||^alpha = 2^alpha; uniformity of {e1, -e1}: log e^{-4t} = -4t
    assert alignment(z1, z2, alpha=3.0).item() == pytest.approx(8.0)
    pair = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)
    assert uniformity(pair, t).item() == pytest.approx(-4 * t)


@pytest.mark.parametrize("n", [2, 3, 6])
@pytest.mark.parametrize("t", [0.1, 1.0])
def test_closed_forms_collapsed_embeddings(n: int, t: float) -> None:
    # all 2n views equal: every logit is 1/t, so each softmax is uniform.
    z = torch.ones(n, 4, dtype=torch.float64)
    # info_nce: uniform over n keys -> log n
    assert info_nce(z, z, temperature=t).item() == pytest.approx(math.log(n))
    # nt_xent: uniform over 2n-1 candidates -> log(2n-1)
    assert nt_xent(z, z, temperature=t).item() == pytest.approx(math.log(2 * n - 1))
    # dcl: -1/t + log((2n-2) e^{1/t}) = log(2n-2)
    assert dcl(z, z, temperature=t).item() == pytest.approx(math.log(2 * n - 2))
    # supcon, one class, V views: each anchor has nV-1 positives of equal logit among
    # nV-1 candidates -> -(t/b) log(1/(nV-1)) = (t/b) log(nV-1)
    feats = torch.ones(n, 3, 4, dtype=torch.float64)
    labels = torch.zeros(n, dtype=torch.long)
    assert supcon(feats, labels, temperature=t, base_temperature=0.07).item() == pytest.approx(
        t / 0.07 * math.log(n * 3 - 1)
    )
    # uniformity of identical points: log e^0 = 0
    assert uniformity(z, t).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("t", [0.1, 0.5])
def test_supcon_closed_form_two_collapsed_classes(t: float) -> None:
    # class 0: 3 samples all equal e1; class 1: 2 samples all equal e2; V = 2 views.
    # Anchor of class c: P = 2*count_c - 1 positives with cosine 1, M = 2*count_other
    # negatives with cosine 0: l = -(t/b)(1/t - log(P e^{1/t} + M)) = (t/b) log(P + M e^{-1/t})
    e = torch.eye(3, dtype=torch.float64)
    feats = torch.stack([e[0], e[0], e[0], e[1], e[1]])[:, None, :].repeat(1, 2, 1)
    labels = torch.tensor([0, 0, 0, 1, 1])
    b = 0.07
    l0 = t / b * math.log(5 + 4 * math.exp(-1 / t))
    l1 = t / b * math.log(3 + 6 * math.exp(-1 / t))
    expected = (6 * l0 + 4 * l1) / 10
    got = supcon(feats, labels, temperature=t, base_temperature=b)
    assert got.item() == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------------------
# Relationships
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("similarity", SIMS)
@pytest.mark.parametrize("n", BATCHES)
@pytest.mark.parametrize("t", TEMPS)
def test_nt_xent_is_mean_of_symmetric_single_pair_info_nce(
    similarity: str, n: int, t: float
) -> None:
    # For pair i the 2n-2 negatives of anchor z1_i and of anchor z2_i are the same set
    # {z1_j, z2_j : j != i}. So NT-Xent is the mean over i of the symmetric InfoNCE of
    # the single pair (z1_i, z2_i) with those views as extra negatives.
    z1, z2 = _pair(n, 5, seed=80 + n, similarity=similarity)
    parts = []
    for i in range(n):
        others = torch.cat([z1[torch.arange(n) != i], z2[torch.arange(n) != i]])
        parts.append(
            info_nce(
                z1[i : i + 1],
                z2[i : i + 1],
                temperature=t,
                similarity=similarity,  # type: ignore[arg-type]
                extra_negatives=others,
                symmetric=True,
            )
        )
    expected = torch.stack(parts).mean()
    got = nt_xent(z1, z2, temperature=t, similarity=similarity)  # type: ignore[arg-type]
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("n", [2, 3, 8])
@pytest.mark.parametrize("t", TEMPS)
def test_supcon_without_labels_equals_nt_xent(n: int, t: float) -> None:
    z1, z2 = _pair(n, 5, seed=90 + n, similarity="cosine")
    feats = torch.stack([z1, z2], dim=1)
    torch.testing.assert_close(
        supcon(feats, temperature=t, base_temperature=t), nt_xent(z1, z2, temperature=t)
    )
    # labels that are all distinct are the same as no labels
    torch.testing.assert_close(
        supcon(feats, torch.arange(n) * 3, temperature=t, base_temperature=t),
        nt_xent(z1, z2, temperature=t),
    )


@pytest.mark.parametrize("similarity", SIMS)
@pytest.mark.parametrize("n", BATCHES)
@pytest.mark.parametrize("t", TEMPS)
def test_dcl_below_nt_xent_by_exact_gap(similarity: str, n: int, t: float) -> None:
    # per anchor: nt = -s_p + log(e^{s_p} + S_neg) = dcl + log(1 + e^{s_p} / S_neg) > dcl
    z1, z2 = _pair(n, 5, seed=100 + n, similarity=similarity)
    nt = nt_xent(z1, z2, temperature=t, similarity=similarity)  # type: ignore[arg-type]
    dc = dcl(z1, z2, temperature=t, similarity=similarity)  # type: ignore[arg-type]
    assert dc.item() < nt.item()
    views, _ = _views(z1, z2)
    gap = 0.0
    for a in range(2 * n):
        p = (a + n) % (2 * n)
        s_p = _sim(views[a], views[p], similarity) / t
        negs = [_sim(views[a], views[b], similarity) / t for b in range(2 * n) if b not in (a, p)]
        gap += math.log1p(math.exp(s_p - _log_sum_exp(negs)))
    assert nt.item() - dc.item() == pytest.approx(gap / (2 * n), rel=1e-9)


@pytest.mark.parametrize("similarity", SIMS)
@pytest.mark.parametrize("symmetric", [False, True])
def test_extra_negatives_increase_every_row(similarity: str, symmetric: bool) -> None:
    q, k = _pair(5, 4, seed=110, similarity=similarity)
    kw = dict(similarity=similarity, symmetric=symmetric, reduction="none", temperature=0.2)
    base = info_nce(q, k, **kw)  # type: ignore[arg-type]
    one = info_nce(q, k, extra_negatives=_randn(1, 4, seed=111), **kw)  # type: ignore[arg-type]
    more = info_nce(q, k, extra_negatives=_randn(16, 4, seed=111), **kw)  # type: ignore[arg-type]
    assert torch.all(one > base)
    assert torch.all(more > one)  # the first row of the 16 is the same single negative


def test_extra_negatives_are_normalised_for_cosine() -> None:
    q, k = _pair(4, 3, seed=120, similarity="cosine")
    neg = _randn(6, 3, seed=121)
    a = info_nce(q, k, extra_negatives=neg)
    b = info_nce(q, k, extra_negatives=neg * 7.5)
    torch.testing.assert_close(a, b)


def test_temperature_scaling_dot_similarity() -> None:
    # logits are s / t: scaling the query by c and the temperature by c leaves them unchanged
    q, k = _pair(6, 4, seed=130, similarity="dot")
    for c in (0.25, 3.0):
        torch.testing.assert_close(
            info_nce(c * q, k, temperature=0.3 * c, similarity="dot"),
            info_nce(q, k, temperature=0.3, similarity="dot"),
        )
        torch.testing.assert_close(
            nt_xent(c * q, c * k, temperature=0.3 * c * c, similarity="dot"),
            nt_xent(q, k, temperature=0.3, similarity="dot"),
        )
    # cosine similarity does not see the scale at all
    torch.testing.assert_close(info_nce(4 * q, 0.5 * k), info_nce(q, k))


def test_temperature_limits() -> None:
    q, k = _pair(5, 4, seed=140, similarity="cosine")
    # t -> infinity: all logits -> 0, uniform softmax
    assert info_nce(q, k, temperature=1e8).item() == pytest.approx(math.log(5), rel=1e-6)
    assert nt_xent(q, k, temperature=1e8).item() == pytest.approx(math.log(9), rel=1e-6)
    assert dcl(q, k, temperature=1e8).item() == pytest.approx(math.log(8), rel=1e-6)
    # t -> 0 with well separated identical views: loss -> 0
    z = _orthonormal(4, 4)
    assert info_nce(z, z, temperature=1e-3).item() == pytest.approx(0.0, abs=1e-12)
    assert nt_xent(z, z, temperature=1e-3).item() == pytest.approx(0.0, abs=1e-12)


def test_supcon_base_temperature_scales_linearly() -> None:
    feats = _randn(4, 2, 3, seed=150)
    labels = torch.tensor([0, 0, 1, 1])
    a = supcon(feats, labels, temperature=0.2, base_temperature=0.2)
    b = supcon(feats, labels, temperature=0.2, base_temperature=0.1)
    torch.testing.assert_close(b, 2 * a)


def test_dclw_weights_have_no_gradient() -> None:
    # The analytic gradient of dclw equals that of DCL with the weights frozen at w(z).
    z1 = _randn(5, 4, seed=160).requires_grad_()
    z2 = _randn(5, 4, seed=161).requires_grad_()
    w = vmf_weights(F.normalize(z1, dim=1), F.normalize(z2, dim=1), 0.5).detach()
    frozen = _decoupled_loss(
        z1, z2, temperature=0.1, similarity="cosine", gather=False, weight_fn=lambda a, b: w
    )
    g_frozen = torch.autograd.grad(frozen, (z1, z2))
    g = torch.autograd.grad(dclw(z1, z2, temperature=0.1, sigma=0.5), (z1, z2))
    for x, y in zip(g, g_frozen, strict=True):
        torch.testing.assert_close(x, y)


# --------------------------------------------------------------------------------------
# gradcheck (float64, small inputs)
# --------------------------------------------------------------------------------------


def _leaf(*shape: int, seed: int) -> Tensor:
    return _randn(*shape, seed=seed).requires_grad_()


@pytest.mark.parametrize("similarity", SIMS)
@pytest.mark.parametrize("symmetric", [False, True])
def test_gradcheck_info_nce(similarity: str, symmetric: bool) -> None:
    q, k, neg = _leaf(3, 4, seed=1), _leaf(3, 4, seed=2), _leaf(2, 4, seed=3)

    def f(q: Tensor, k: Tensor, neg: Tensor) -> Tensor:
        return info_nce(
            q,
            k,
            temperature=0.3,
            similarity=similarity,  # type: ignore[arg-type]
            extra_negatives=neg,
            symmetric=symmetric,
        )

    assert torch.autograd.gradcheck(f, (q, k, neg))
    assert torch.autograd.gradcheck(
        lambda q, k: info_nce(q, k, reduction="none", symmetric=symmetric), (q, k)
    )


@pytest.mark.parametrize("similarity", SIMS)
def test_gradcheck_nt_xent_and_dcl(similarity: str) -> None:
    z1, z2 = _leaf(3, 4, seed=4), _leaf(3, 4, seed=5)
    sim = similarity
    assert torch.autograd.gradcheck(
        lambda a, b: nt_xent(a, b, temperature=0.4, similarity=sim),  # type: ignore[arg-type]
        (z1, z2),
    )
    assert torch.autograd.gradcheck(
        lambda a, b: dcl(a, b, temperature=0.4, similarity=sim),  # type: ignore[arg-type]
        (z1, z2),
    )


def test_gradcheck_dclw() -> None:
    # dclw's weights carry no gradient, so gradcheck the shared decoupled loss with the
    # weights frozen at their value; test_dclw_weights_have_no_gradient ties it to dclw.
    z1, z2 = _leaf(4, 3, seed=6), _leaf(4, 3, seed=7)
    w = vmf_weights(F.normalize(z1, dim=1), F.normalize(z2, dim=1), 0.5).detach()

    def frozen(a: Tensor, b: Tensor) -> Tensor:
        return _decoupled_loss(
            a, b, temperature=0.3, similarity="cosine", gather=False, weight_fn=lambda x, y: w
        )

    assert torch.autograd.gradcheck(frozen, (z1, z2))


@pytest.mark.parametrize("mode", ["all", "one"])
def test_gradcheck_supcon(mode: str) -> None:
    feats = _leaf(4, 2, 3, seed=8)
    labels = torch.tensor([0, 1, 0, 1])
    assert torch.autograd.gradcheck(
        lambda f: supcon(f, labels, temperature=0.3, contrast_mode=mode),  # type: ignore[arg-type]
        (feats,),
    )
    assert torch.autograd.gradcheck(lambda f: supcon(f, temperature=0.3), (feats,))


def test_gradcheck_alignment_uniformity() -> None:
    x, y = _leaf(4, 3, seed=9), _leaf(4, 3, seed=10)
    assert torch.autograd.gradcheck(lambda a, b: alignment(a, b, alpha=2.0), (x, y))
    assert torch.autograd.gradcheck(lambda a, b: alignment(a, b, alpha=3.0), (x, y))
    assert torch.autograd.gradcheck(lambda a: uniformity(a, t=2.0), (x,))


# --------------------------------------------------------------------------------------
# Argument checking
# --------------------------------------------------------------------------------------


def test_bad_arguments_raise_value_error() -> None:
    z = _randn(3, 4, seed=0)
    with pytest.raises(ValueError, match="temperature"):
        info_nce(z, z, temperature=0.0)
    with pytest.raises(ValueError, match="similarity"):
        nt_xent(z, z, similarity="l2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same shape"):
        info_nce(z, z[:2])
    with pytest.raises(ValueError, match="extra_negatives"):
        info_nce(z, z, extra_negatives=_randn(2, 5, seed=1))
    with pytest.raises(ValueError, match="reduction"):
        info_nce(z, z, reduction="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 2"):
        dcl(z[:1], z[:1])
    with pytest.raises(ValueError, match="sigma"):
        dclw(z, z, sigma=-1.0)
    with pytest.raises(ValueError, match=r"\[N, V, D\]"):
        supcon(z)
    with pytest.raises(ValueError, match="labels"):
        supcon(z[:, None], torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="contrast_mode"):
        supcon(z[:, None].repeat(1, 2, 1), contrast_mode="some")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="N >= 2"):
        uniformity(z[:1])
