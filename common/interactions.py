"""User–item interactions for the collaborative-filtering papers (NCL, REARM): pairs, per-user
masks, RecBole-style negative sampling, shuffled BPR batches and full-ranking evaluation.

Full ranking scores every item for each user with a positive and masks the user's ``history``
items (training items, or training ∪ validation at test time), as RecBole and MMRec do.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from common.metrics.ranking import RankingAccumulator, ranking_metrics
from common.seeding import epoch_generator


@dataclass(frozen=True)
class Interactions:
    """Parallel 0-based user and item ids (int64)."""

    user: Tensor
    item: Tensor

    def __len__(self) -> int:
        return len(self.user)

    def subset(self, index: Tensor) -> Interactions:
        return Interactions(self.user[index], self.item[index])


def concat(*parts: Interactions) -> Interactions:
    return Interactions(torch.cat([p.user for p in parts]), torch.cat([p.item for p in parts]))


class UserItems:
    """Each user's items as CSR rows (crow, col), to build dense per-batch masks."""

    def __init__(self, pairs: Interactions, n_users: int) -> None:
        order = torch.argsort(pairs.user, stable=True)
        self.col = pairs.item[order]
        counts = torch.bincount(pairs.user, minlength=n_users)
        self.crow = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])

    def users(self) -> Tensor:
        """The users with at least one item, ascending."""
        return torch.nonzero(self.crow[1:] > self.crow[:-1]).flatten()

    def dense(self, users: Tensor, n_items: int) -> Tensor:
        """A (len(users), n_items) boolean mask of each user's items."""
        start, end = self.crow[users], self.crow[users + 1]
        lengths = end - start
        rows = torch.repeat_interleave(torch.arange(len(users)), lengths)
        offsets = torch.arange(int(lengths.sum())) - torch.repeat_interleave(
            lengths.cumsum(0) - lengths, lengths
        )
        out = torch.zeros(len(users), n_items, dtype=torch.bool)
        out[rows, self.col[torch.repeat_interleave(start, lengths) + offsets]] = True
        return out


class NegativeSampler:
    """Uniform items outside each user's ``seen`` items, redrawn until none is seen (RecBole's
    training sampler with ``seen`` = the training pairs; REARM's with train ∪ valid ∪ test)."""

    def __init__(self, seen: Interactions, n_items: int) -> None:
        self.n_items = n_items
        self.keys = torch.unique(seen.user * n_items + seen.item)  # sorted

    def _seen(self, user: Tensor, item: Tensor) -> Tensor:
        key = user * self.n_items + item
        pos = torch.searchsorted(self.keys, key).clamp(max=len(self.keys) - 1)
        seen: Tensor = self.keys[pos] == key
        return seen

    def sample(self, user: Tensor, gen: torch.Generator) -> Tensor:
        item = torch.randint(self.n_items, (len(user),), generator=gen)
        redo = self._seen(user, item)
        while redo.any():
            item[redo] = torch.randint(self.n_items, (int(redo.sum()),), generator=gen)
            redo[redo.clone()] = self._seen(user[redo], item[redo])
        return item


def bpr_batches(train: Interactions, sampler: NegativeSampler, batch_size: int, seed: int,
                epoch: int) -> Iterator[tuple[Tensor, Tensor, Tensor]]:  # fmt: skip
    """(user, positive, negative) batches over a seeded shuffle of ``train`` for one epoch."""
    gen = epoch_generator(seed, epoch)
    order = torch.randperm(len(train), generator=gen)
    for index in order.split(batch_size):
        user, pos = train.user[index], train.item[index]
        yield user, pos, sampler.sample(user, gen)


@torch.inference_mode()
def full_ranking(users_emb: Tensor, items_emb: Tensor, positives: UserItems,
                 history: UserItems, topk: Sequence[int], metrics: Sequence[str],
                 batch_size: int, device: torch.device) -> dict[str, float]:  # fmt: skip
    """Dot-product scores of every item for each user with a positive, ``history`` masked;
    ``metrics`` at each of ``topk`` (``common.metrics.ranking``), averaged over those users.

    ``batch_size`` users are scored by one product; their ranking runs in blocks of
    :data:`RANK_ROWS` rows (cache-sized) and their per-user values are summed once per batch, so
    the result is the same, bit for bit, as ranking the whole batch at once."""
    n_items = items_emb.shape[0]
    acc = RankingAccumulator(tuple(topk), metrics=tuple(metrics))
    for batch in positives.users().split(batch_size):
        scores = users_emb[batch.to(device)] @ items_emb.T
        parts = []
        for start in range(0, len(batch), RANK_ROWS):
            rows = batch[start : start + RANK_ROWS]
            block = scores[start : start + RANK_ROWS]
            block.masked_fill_(history.dense(rows, n_items).to(device), float("-inf"))
            parts.append(ranking_metrics(block, positives.dense(rows, n_items).to(device), topk))
        acc.add({key: torch.cat([p[key] for p in parts]) for key in parts[0]})
    return acc.compute()


# Users ranked at once: blocks of 512 x n_items scores stay in cache between the mask, top-k and
# the metrics (ml-100k, one thread: ~13 ms per full ranking against ~23 ms for 943 users at once).
RANK_ROWS = 512
