"""The method's geometry against hand-derived cases and loop references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from .augment import crop_with_boxes
from .pixpro import (
    PixelPropagation,
    bin_centres,
    momentum_at,
    pixel_consistency,
    positive_mask,
    propagate,
)

FULL = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
FLIPPED = torch.tensor([[1.0, 0.0, 0.0, 1.0]])


def test_identical_unflipped_crops_give_the_identity_mask() -> None:
    # Square bins: the nearest other bin lies 1/sqrt(2) ≈ 0.707 diagonals away, beyond T = 0.7.
    for box in (FULL, torch.tensor([[0.2, 0.1, 0.6, 0.5]])):
        mask = positive_mask(box, box, 5, 5, 0.7)
        assert torch.equal(mask[0], torch.eye(25))


def test_flipped_crop_gives_the_mirrored_mask() -> None:
    h = w = 4
    mask = positive_mask(FULL, FLIPPED, h, w, 0.7)[0]
    mirror = torch.zeros(h * w, h * w)
    for r in range(h):
        for c in range(w):
            mirror[r * w + c, r * w + (w - 1 - c)] = 1.0
    assert torch.equal(mask, mirror)
    assert not torch.equal(mask, torch.eye(h * w))


def test_mask_matches_a_loop_over_pixel_pairs() -> None:
    gen = torch.Generator().manual_seed(3)
    a = torch.tensor([[0.1, 0.2, 0.7, 0.9], [0.9, 0.0, 0.3, 0.5]])
    b = torch.tensor([[0.3, 0.1, 0.8, 0.6], [0.2, 0.3, 1.0, 0.9]])
    h, w, t = 3, 4, float(torch.rand(1, generator=gen)) + 0.5
    mask = positive_mask(a, b, h, w, t)
    for n in range(2):
        wa, ha = (a[n, 2] - a[n, 0]) / w, (a[n, 3] - a[n, 1]) / h
        wb, hb = (b[n, 2] - b[n, 0]) / w, (b[n, 3] - b[n, 1]) / h
        diag = max(math.hypot(wa, ha), math.hypot(wb, hb))
        for i in range(h * w):
            for j in range(h * w):
                xa, ya = a[n, 0] + (i % w + 0.5) * wa, a[n, 1] + (i // w + 0.5) * ha
                xb, yb = b[n, 0] + (j % w + 0.5) * wb, b[n, 1] + (j // w + 0.5) * hb
                near = math.hypot(xa - xb, ya - yb) / diag < t
                assert mask[n, i, j] == float(near)
    assert 0 < mask.sum() < mask.numel()


def test_aligned_features_give_minus_two_per_direction() -> None:
    x = F.normalize(torch.randn(3, 8, 4, 4), dim=1)
    boxes = torch.tensor([[0.1, 0.1, 0.9, 0.9]]).repeat(3, 1)
    assert float(pixel_consistency(x, x, boxes, boxes, 0.7)) == pytest.approx(-2.0, abs=1e-5)
    # both directions: -4; the opposite features: +2 per direction
    two = pixel_consistency(x, x, boxes, boxes, 0.7) * 2
    assert float(two) == pytest.approx(-4.0, abs=1e-5)
    assert float(pixel_consistency(x, -x, boxes, boxes, 0.7)) == pytest.approx(2.0, abs=1e-5)


def test_flipped_view_aligned_only_when_mirrored() -> None:
    x = F.normalize(torch.randn(1, 8, 4, 4), dim=1)
    mirrored = x.flip(-1)
    assert float(pixel_consistency(x, mirrored, FULL, FLIPPED, 0.7)) == pytest.approx(
        -2.0, abs=1e-5
    )
    assert float(pixel_consistency(x, x, FULL, FLIPPED, 0.7)) > -1.9


def test_gamma_one_identity_g_is_the_sum_of_cos_positive_neighbours() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 5, 3, 3)
    out = propagate(x, x, gamma=1.0)
    flat = F.normalize(x, dim=1).flatten(2)  # [B, C, 9]
    for n in range(2):
        for i in range(9):
            expected = torch.zeros(5)
            for j in range(9):
                cos = float(flat[n, :, i] @ flat[n, :, j])
                if cos > 0:
                    expected += cos * flat[n, :, j]
            assert torch.allclose(out[n].flatten(1)[:, i], expected, atol=1e-5)
    # the module (g = identity) normalises that sum
    ppm = PixelPropagation(5, gamma=1.0, transform_layers=0)
    assert torch.allclose(ppm(x), F.normalize(out, dim=1), atol=1e-6)


def test_gamma_sharpens_the_weights() -> None:
    torch.manual_seed(1)
    x = torch.randn(1, 4, 2, 3)
    flat = F.normalize(x, dim=1).flatten(2)[0]
    weights = (flat.T @ flat).clamp(min=0) ** 2
    expected = flat @ weights.T
    assert torch.allclose(propagate(x, x, gamma=2.0)[0].flatten(1), expected, atol=1e-5)


def test_momentum_goes_from_base_to_one_by_a_cosine() -> None:
    assert momentum_at(0, 100, 0.99) == pytest.approx(0.99)
    assert momentum_at(50, 100, 0.99) == pytest.approx(0.995)
    assert momentum_at(100, 100, 0.99) == pytest.approx(1.0)


def test_crop_boxes_locate_the_sampled_pixels() -> None:
    # The image holds its own coordinates: the pixel at the centre of output bin k of a crop
    # must show the point bin_centres computes from the crop's box (flips included).
    size, n = 32, 16
    coords = (torch.arange(size) + 0.5) / size
    image = torch.stack(
        [coords.view(1, -1).expand(size, size), coords.view(-1, 1).expand(size, size)]
    )
    views, boxes = crop_with_boxes(
        image.expand(n, 2, size, size), 8, (0.3, 1.0), torch.Generator().manual_seed(0)
    )
    centres, _, _ = bin_centres(boxes, 8, 8)  # [n, 64, 2]
    sampled = views.flatten(2).transpose(1, 2)  # [n, 64, 2]: (x, y) seen at each output pixel
    inside = (centres > 0.5 / size) & (centres < 1 - 0.5 / size)
    assert torch.allclose(sampled[inside], centres[inside], atol=1e-4)
    assert bool((boxes[:, 0] > boxes[:, 2]).any()) and bool((boxes[:, 0] < boxes[:, 2]).any())
