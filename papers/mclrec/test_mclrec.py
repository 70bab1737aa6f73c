"""MCLRec's parts against references: augmentations, the regulariser, the encoder, and the
authors' Beauty checkpoint against the paper's Table 3."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

from common.data import shared_artifacts, shared_datasets
from common.losses import nt_xent

from .augment import crop, mask, reorder, two_views
from .data import Samples, kept_users, load_dataset, subset_users
from .losses import margin_regulariser
from .model import Dropout, SASRec
from .train import TEST_METRICS, Config, ModelConfig, Trainer, evaluate

ITEMS = torch.tensor(
    [[5, 6, 7, 8, 9, 10, 0, 0], [3, 4, 0, 0, 0, 0, 0, 0], [7, 0, 0, 0, 0, 0, 0, 0]]
)
LENGTHS = torch.tensor([6, 2, 1])


def test_crop_keeps_a_contiguous_window_of_half() -> None:
    for seed in range(20):
        out, n = crop(ITEMS, LENGTHS, 0.5, torch.Generator().manual_seed(seed))
        assert n.tolist() == [3, 1, 0]
        first = out[0, :3].tolist()
        assert first in ([5, 6, 7], [6, 7, 8], [7, 8, 9], [8, 9, 10]) and out[0, 3:].sum() == 0


def test_mask_zeroes_exactly_half_of_the_real_positions() -> None:
    for seed in range(20):
        out, n = mask(ITEMS, LENGTHS, 0.5, torch.Generator().manual_seed(seed))
        assert torch.equal(n, LENGTHS)
        assert int((out[0, :6] == 0).sum()) == 3 and torch.equal(out[0, 6:], ITEMS[0, 6:])
        kept = out[0, :6][out[0, :6] > 0]
        assert set(kept.tolist()) <= set(ITEMS[0, :6].tolist())


def test_reorder_permutes_one_window_only() -> None:
    for seed in range(20):
        out, _ = reorder(ITEMS, LENGTHS, 0.8, torch.Generator().manual_seed(seed))
        assert sorted(out[0].tolist()) == sorted(ITEMS[0].tolist())
        changed = (out[0] != ITEMS[0]).nonzero().flatten().tolist()
        if changed:  # floor(6 * 0.8) = 4 consecutive positions at most
            assert max(changed) - min(changed) < 4


def _operator(view: torch.Tensor, length: int) -> str:
    """Which operator made a view of ITEMS[0] (length 6, ratios 0.5/0.5/0.8): crop alone
    shortens it (to 3), mask alone puts padding ids inside it, reorder keeps 6 real items."""
    if length == 3:
        return "crop"
    return "mask" if bool((view[:6] == 0).any()) else "reorder"


def test_two_views_use_distinct_operators_and_keep_singletons() -> None:
    rows = 300
    items, lengths = ITEMS.repeat(rows, 1), LENGTHS.repeat(rows)
    v1, n1, v2, n2 = two_views(items, lengths, (0.5, 0.5, 0.8), torch.Generator().manual_seed(0))
    pairs = [
        (_operator(v1[r], int(n1[r])), _operator(v2[r], int(n2[r]))) for r in range(0, 3 * rows, 3)
    ]
    assert all(a != b for a, b in pairs)  # never the same operator on both views
    assert len(set(pairs)) == 6  # every ordered pair of distinct operators occurs
    singles = torch.arange(2, 3 * rows, 3)
    assert torch.equal(v1[singles], items[singles]) and torch.equal(v2[singles], items[singles])
    assert bool((n1[singles] == 1).all()) and bool((n2[singles] == 1).all())  # length 1 kept


def _naive_regulariser(a: torch.Tensor, b: torch.Tensor) -> float:
    z = torch.cat([a, b]).tolist()
    batch, total_pos, total_neg, n_neg = len(a), 0.0, 0.0, 0
    for i in range(2 * batch):
        j = (i + batch) % (2 * batch)
        dot = [sum(x * y for x, y in zip(z[i], z[k], strict=True)) for k in range(2 * batch)]
        negatives = [dot[k] for k in range(2 * batch) if k not in (i, j)]
        pos, hard = dot[j], max(negatives)
        total_pos += max(pos - min(pos, hard), 0.0)
        total_neg += sum(max(max(pos, hard) - neg, 0.0) for neg in negatives)
        n_neg += len(negatives)
    return total_pos / (2 * batch) + total_neg / n_neg


def test_user_subset_keeps_whole_users_seeded() -> None:
    users = [[u, *range(1, 2 + u % 7)] for u in range(4_000)]
    part = subset_users(users, 0.005, 0)
    assert len(part) == kept_users(4_000, 0.005) == 20
    assert part == subset_users(users, 0.005, 0) and part != subset_users(users, 0.005, 1)
    assert all(user in users for user in part)  # each with all of their items
    assert subset_users(users, 1.0, 0) is users and kept_users(10, 0.01) == 1


def test_margin_regulariser_matches_a_loop() -> None:
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 4, generator=gen), torch.randn(5, 4, generator=gen)
    assert float(margin_regulariser(a, b)) == pytest.approx(_naive_regulariser(a, b), rel=1e-5)


def test_padding_columns_do_not_change_the_representation() -> None:
    model = SASRec(20, max_len=8, hidden=8, layers=2, heads=2, inner=16).eval()
    short = torch.tensor([[1, 2, 3], [4, 5, 0]])
    padded = torch.cat([short, torch.zeros(2, 5, dtype=torch.long)], dim=1)
    lengths = torch.tensor([3, 2])
    with torch.no_grad():
        assert torch.allclose(model(short, lengths), model(padded, lengths), atol=1e-6)
        # causal: appending an item does not change the state at an earlier position
        longer = torch.tensor([[1, 2, 3, 9], [4, 5, 0, 0]])
        assert torch.allclose(model(longer, lengths), model(short, lengths), atol=1e-6)


def test_length_groups_give_the_padded_batch_outputs_and_gradients() -> None:
    torch.manual_seed(0)
    model = SASRec(30, max_len=40, hidden=8, layers=2, heads=2, inner=16).eval()
    lengths = torch.tensor([1, 3, 8, 9, 15, 17, 31, 40, 2, 33])
    items = torch.randint(1, 31, (len(lengths), 40))
    items[torch.arange(40)[None] >= lengths[:, None]] = 0
    items[4, [0, 3]] = 0  # masked positions (an augmented view): padding inside the length
    weights = torch.randn(len(lengths), 8)

    def output_and_grad(buckets: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        model.length_buckets = buckets
        model.zero_grad()
        out = model(items, lengths)
        (out * weights).sum().backward()
        return out.detach(), model.item_embedding.weight.grad.clone()  # type: ignore[union-attr]

    grouped, grouped_grad = output_and_grad((2, 8, 16, 32))
    padded, padded_grad = output_and_grad(())
    assert torch.allclose(grouped, padded, atol=1e-5)
    assert torch.allclose(grouped_grad, padded_grad, atol=1e-5)


N_ITEMS = 20


def _tiny_mclrec(dropout: float) -> tuple[Trainer, Samples, tuple[torch.Tensor, ...]]:
    """A two-layer MCLRec trainer in float64, a batch of 8 sequences and their two views."""
    config = Config(
        variant="mclrec", lam=0.3, beta=0.5, lr=0.01,
        model=ModelConfig(max_len=8, hidden=8, layers=2, heads=2, inner=16, dropout=dropout,
                          attn_dropout=dropout),
    )  # fmt: skip
    torch.manual_seed(0)
    trainer = Trainer(config, N_ITEMS, torch.device("cpu"))
    trainer.model.double()
    trainer.augmenters.double()
    gen = torch.Generator().manual_seed(0)
    lengths = torch.tensor([1, 2, 3, 4, 5, 6, 7, 8])
    history = torch.randint(1, N_ITEMS + 1, (8, 8), generator=gen)
    history[torch.arange(8)[None] >= lengths[:, None]] = 0
    target = torch.randint(1, N_ITEMS + 1, (8,), generator=gen)
    views = two_views(history, lengths, (0.5, 0.5, 0.8), gen)
    return trainer, Samples(history, lengths, target), views


def _reference_train_batch(
    model: SASRec, augmenters: torch.nn.ModuleList, config: Config, batch: Samples,
    views: tuple[torch.Tensor, ...],
) -> float:  # fmt: skip
    """MCLRec's update written out stage by stage, as the official trainer does it."""
    a1, a2 = augmenters
    v1, n1, v2, n2 = views
    encoder_params, augmenter_params = list(model.parameters()), list(augmenters.parameters())
    encoder_adam = torch.optim.Adam(encoder_params, lr=config.lr)
    augmenter_adam = torch.optim.Adam(augmenter_params, lr=config.lr)

    def infonce(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return nt_xent(a, b, temperature=1.0, similarity="dot")

    def l_cl2(h1: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
        z1, z2 = a1(h1), a2(h2)
        terms = [infonce(a, b) + 0.1 * margin_regulariser(a, b) for a, b in
                 ((h1, z2), (h2, z1), (z1, z2))]  # fmt: skip
        return terms[0] + terms[1] + terms[2]

    def encoder_loss() -> torch.Tensor:
        scores = model(batch.history, batch.length) @ model.item_embedding.weight[: N_ITEMS + 1].T
        h1, h2 = model(v1, n1), model(v2, n2)
        rec = F.cross_entropy(scores, batch.target)
        return rec + config.lam * infonce(h1, h2) + config.beta * l_cl2(h1, h2)

    def step(adam: torch.optim.Adam, params: list[torch.nn.Parameter], loss: torch.Tensor) -> None:
        grads = torch.autograd.grad(loss, params, allow_unused=True)  # these parameters only
        for param, grad in zip(params, grads, strict=True):
            param.grad = grad
        adam.step()

    model.train()
    first = encoder_loss()  # 1: the encoder, augmenters fixed
    step(encoder_adam, encoder_params, first)
    with torch.no_grad():  # 2: the augmenters, encoder fixed
        h1, h2 = model(v1, n1), model(v2, n2)
    step(augmenter_adam, augmenter_params, l_cl2(h1, h2))
    third = encoder_loss()  # 3: the encoder again, with the updated augmenters
    step(encoder_adam, encoder_params, third)
    return float(first.detach()) + float(third.detach())


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_mclrec_train_batch_is_the_three_stage_update(dropout: float) -> None:
    """One train_batch = encoder step, augmenter step, encoder step (same weights, batch, RNG)."""
    trainer, batch, views = _tiny_mclrec(dropout)
    model, augmenters = copy.deepcopy(trainer.model), copy.deepcopy(trainer.augmenters)
    initial = [param.detach().clone() for param in augmenters.parameters()]
    torch.manual_seed(1)
    loss = trainer.train_batch(batch, views)
    torch.manual_seed(1)
    expected = _reference_train_batch(model, augmenters, trainer.config, batch, views)
    assert loss == pytest.approx(expected, rel=1e-9)
    for ours, reference in ((trainer.model, model), (trainer.augmenters, augmenters)):
        for (name, got), want in zip(ours.named_parameters(), reference.parameters(), strict=True):
            torch.testing.assert_close(got, want, rtol=0, atol=1e-9, msg=name)
    assert not any(map(torch.equal, initial, augmenters.parameters()))  # they did take a step


def test_mclrec_augmenters_get_gradients_only_from_their_own_stage() -> None:
    """Frozen in the encoder stages (1 and 3), as the official trainer: one gradient each."""
    trainer, batch, views = _tiny_mclrec(0.0)
    calls: list[str] = []

    def record(name: str) -> Callable[[torch.Tensor], None]:
        return lambda grad: calls.append(name)

    for name, param in trainer.augmenters.named_parameters():
        param.register_hook(record(name))
    trainer.train_batch(batch, views)
    assert sorted(calls) == sorted(name for name, _ in trainer.augmenters.named_parameters())


PAPER_BEAUTY_MCLREC = {"HR@5": 0.0581, "HR@10": 0.0871, "HR@20": 0.1243,
                       "NDCG@5": 0.0352, "NDCG@10": 0.0446, "NDCG@20": 0.0539}  # fmt: skip


def test_official_beauty_checkpoint_gives_table_3() -> None:
    """The authors' encoder, scored by our data split and evaluation, gives Table 3's row."""
    data_root, artifacts = shared_datasets(), shared_artifacts()
    if data_root is None or artifacts is None:
        pytest.skip("../shared (Beauty.txt and the authors' checkpoint) is not on this machine")
    path = artifacts / "mclrec" / "beauty_model.pth"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    torch.set_num_threads(1)
    data = load_dataset("beauty", data_root, 50)
    model = SASRec(data.n_items)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=False)["state_dict"])
    test = evaluate(model, data.test, 4096, torch.device("cpu"))
    assert {k: round(test[k], 4) for k in TEST_METRICS} == PAPER_BEAUTY_MCLREC


def test_valid_metric_choices_are_what_evaluate_computes() -> None:
    from typing import get_args

    from .train import RANK_KS, RANK_METRICS, ValidMetric

    computed = {f"{metric}@{k}" for metric in RANK_METRICS for k in RANK_KS}
    assert set(get_args(ValidMetric)) == computed


@pytest.mark.parametrize("p", [0.3, 0.5])
def test_dropout_keeps_1_minus_p_and_scales_the_survivors(p: float) -> None:
    torch.manual_seed(0)
    drop = Dropout(p).train()
    out = drop(torch.ones(1_000_000))
    kept = out != 0
    assert float(kept.double().mean()) == pytest.approx(1 - p, abs=0.002)
    assert torch.all(out[kept] == torch.tensor(1 / (1 - p)))
    assert float(out.double().mean()) == pytest.approx(1.0, abs=0.005)  # unbiased
    again = drop(torch.ones(1_000_000))
    assert not torch.equal(kept, again != 0)  # a fresh mask per call


def test_dropout_is_the_identity_in_eval_and_at_zero_and_zeros_at_one() -> None:
    x = torch.randn(4, 5)
    assert torch.equal(Dropout(0.5).eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)
    assert torch.equal(Dropout(1.0).train()(x), torch.zeros_like(x))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Dropout(1.5)
