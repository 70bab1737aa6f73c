"""common.interactions: masks, negative sampling, BPR batches and full ranking (NCL, REARM)."""

from __future__ import annotations

import pytest
import torch

from common.interactions import (
    Interactions,
    NegativeSampler,
    UserItems,
    bpr_batches,
    concat,
    full_ranking,
)

CPU = torch.device("cpu")


def test_negatives_are_never_seen_items_of_the_user() -> None:
    train = Interactions(torch.tensor([0, 0, 0, 1]), torch.tensor([0, 1, 2, 3]))
    sampler = NegativeSampler(train, n_items=4)
    neg = sampler.sample(torch.zeros(500, dtype=torch.long), torch.Generator().manual_seed(0))
    assert set(neg.tolist()) == {3}
    neg1 = sampler.sample(torch.ones(500, dtype=torch.long), torch.Generator().manual_seed(0))
    assert set(neg1.tolist()) == {0, 1, 2}


def test_user_items_dense_rows() -> None:
    pairs = Interactions(torch.tensor([2, 0, 2, 2]), torch.tensor([1, 3, 0, 1]))
    index = UserItems(pairs, n_users=4)
    assert index.users().tolist() == [0, 2]
    dense = index.dense(torch.tensor([2, 1, 0]), n_items=4)
    assert dense.tolist() == [[True, True, False, False], [False] * 4, [False, False, False, True]]


def test_bpr_batches_cover_each_pair_once_seeded_by_epoch() -> None:
    train = Interactions(torch.arange(10) % 3, torch.arange(10) % 5)
    sampler = NegativeSampler(train, n_items=8)

    def epoch(seed: int, number: int) -> list[tuple[int, int, int]]:
        rows = []
        for user, pos, neg in bpr_batches(train, sampler, 4, seed, number):
            assert len(user) <= 4
            rows += list(zip(user.tolist(), pos.tolist(), neg.tolist(), strict=True))
        return rows

    first = epoch(0, 0)
    pairs = [(u, p) for u, p, _ in first]
    assert pairs != list(zip(train.user.tolist(), train.item.tolist(), strict=True))  # shuffled
    assert pairs != [(u, p) for u, p, _ in epoch(0, 1)]  # a new order each epoch
    assert sorted((u, p) for u, p, _ in first) == sorted(
        zip(train.user.tolist(), train.item.tolist(), strict=True)
    )
    assert epoch(0, 0) == first
    assert epoch(0, 1) != first


def test_full_ranking_masks_history_and_matches_a_loop() -> None:
    gen = torch.Generator().manual_seed(0)
    users_emb, items_emb = torch.randn(5, 3, generator=gen), torch.randn(7, 3, generator=gen)
    positives = Interactions(torch.tensor([0, 0, 2, 4]), torch.tensor([1, 5, 3, 6]))
    history = Interactions(torch.tensor([0, 2, 2, 4]), torch.tensor([2, 0, 1, 5]))
    for user, item in ((0, 2), (2, 0), (4, 5)):  # each user's history item would rank first
        items_emb[item] = 10 * users_emb[user]
    got = full_ranking(users_emb, items_emb, UserItems(positives, 5), UserItems(history, 5),
                       (2,), ("Recall",), batch_size=2, device=CPU)  # fmt: skip

    def loop(mask: bool) -> float:
        recalls = []
        for user in (0, 2, 4):  # the users with a positive
            scores = users_emb[user] @ items_emb.T
            if mask:
                scores[history.item[history.user == user]] = -torch.inf
            top = set(torch.topk(scores, 2).indices.tolist())
            gold = set(positives.item[positives.user == user].tolist())
            recalls.append(len(top & gold) / len(gold))
        return sum(recalls) / 3

    assert abs(got["Recall@2"] - loop(mask=True)) < 1e-6
    assert loop(mask=True) != loop(mask=False)


def test_full_ranking_in_row_blocks_equals_one_block_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ranking in cache-sized blocks must not change a recorded number, not even its last bit."""
    import common.interactions

    gen = torch.Generator().manual_seed(1)
    n_users, n_items = 700, 300
    users_emb, items_emb = (
        torch.randn(n_users, 8, generator=gen),
        torch.randn(n_items, 8, generator=gen),
    )

    def pairs(per_user: int) -> Interactions:
        user = torch.arange(n_users).repeat_interleave(per_user)
        return Interactions(user, torch.randint(0, n_items, (len(user),), generator=gen))

    positives, history = UserItems(pairs(3), n_users), UserItems(pairs(5), n_users)

    def rank() -> dict[str, float]:
        return full_ranking(users_emb, items_emb, positives, history, (5, 20),
                            ("Recall", "NDCG", "MRR"), batch_size=600, device=CPU)  # fmt: skip

    monkeypatch.setattr(common.interactions, "RANK_ROWS", 10_000)
    whole = rank()
    monkeypatch.setattr(common.interactions, "RANK_ROWS", 7)
    assert rank() == whole  # exact: the same per-user values, summed in the same order


def test_concat_keeps_order() -> None:
    a = Interactions(torch.tensor([0]), torch.tensor([1]))
    b = Interactions(torch.tensor([2, 3]), torch.tensor([4, 5]))
    both = concat(a, b)
    assert both.user.tolist() == [0, 2, 3] and both.item.tolist() == [1, 4, 5]
    assert len(both.subset(torch.tensor([2]))) == 1
