"""CoCoSoDa's model, soft data augmentation and losses (official ``model.py``
``Multi_Loss_CoCoSoDa`` and ``run.py``, read after commit 2f2bf8e).

* One query encoder shared by code and queries; mean pooling over non-pad tokens, L2-normalised.
* Two momentum key encoders (code, query), copies of it updated θ_k ← m θ_k + (1 − m) θ_q
  (m = 0.999) before the keys are computed. Both follow the same θ_q with the same m, so they
  stay equal; kept as two modules as upstream.
* Four queues of K normalised vectors, initialised from N(0, 1) (generator seed 3047) and
  normalised: code and query (filled with the *query* encoder's vectors of the original inputs)
  and masked code and masked query (the key encoders' vectors of the augmented inputs).
* The multimodal loss: four blocks of logits, each [B, B + K]:
  code→query ``[c·q | c·Q_q]``, code→augmented query ``[c·q' | c·Q_q']``,
  query→code ``[q·c | q·Q_c]``, query→augmented code ``[q·c' | q·Q_c']``; every logit divided by
  τ = 0.07, then the cross-entropy of 20 × logits with the diagonal as target (effective
  temperature 0.07 / 20 = 0.0035). Without queues, each block is its [B, B] part.
* ``base`` fine-tuning: cross-entropy of 20 × (query · code) over the batch, queries as rows.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SCALE = 20.0  # run.py multiplies the logits by 20 before the cross-entropy

# run.py's type names: the replacement vocabulary of the soft data augmentation (Ruby's list)
RUBY_TYPE_TOKENS = (
    "keyword", "identifier", "separators", "simple_symbol", "constant", "instance_variable",
    "operator", "string_content", "integer", "escape_sequence", "comment", "hash_key_symbol",
    "global_variable", "heredoc_beginning", "heredoc_content", "heredoc_end", "class_variable",
)  # fmt: skip


def mean_pool(encoder: nn.Module, ids: Tensor, mask: Tensor) -> Tensor:
    """Mean of the last hidden states over non-pad tokens, L2-normalised: [B, hidden]."""
    hidden: Tensor = encoder(input_ids=ids, attention_mask=mask, return_dict=True).last_hidden_state
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return F.normalize((hidden * m).sum(1) / m.sum(1), p=2, dim=1)


def base_loss(nl: Tensor, code: Tensor, scale: float = SCALE) -> Tensor:
    """In-batch InfoNCE of the ``base`` recipe: rows are queries, the diagonal the gold."""
    logits = scale * nl @ code.T
    return F.cross_entropy(logits, torch.arange(nl.shape[0], device=nl.device))


def multimodal_logits(
    code: Tensor, nl: Tensor, code_aug: Tensor, nl_aug: Tensor,
    queues: dict[str, Tensor] | None, temperature: float,
) -> Tensor:  # fmt: skip
    """The four blocks stacked: [4B, B (+ K)], already divided by ``temperature``.

    ``queues`` maps code / nl / masked_code / masked_nl to [K, dim] (None: in-batch only).
    """
    blocks = [
        (code, nl, "nl"),
        (code, nl_aug, "masked_nl"),
        (nl, code, "code"),
        (nl, code_aug, "masked_code"),
    ]
    rows = []
    for anchor, keys, queue in blocks:
        parts = [anchor @ keys.T]
        if queues is not None:
            parts.append(anchor @ queues[queue].detach().T)
        rows.append(torch.cat(parts, dim=1) / temperature)
    return torch.cat(rows, dim=0)


def multimodal_loss(logits: Tensor, batch: int, scale: float = SCALE) -> Tensor:
    """Cross-entropy of ``scale`` × logits, the target of row i of each block being column i."""
    target = torch.arange(batch, device=logits.device).repeat(4)
    return F.cross_entropy(scale * logits, target)


def soft_augment(
    ids: Tensor, mask: Tensor, step: int, *, is_code: bool, start: int, special_ids: Sequence[int],
    mask_id: int, vocab_size: int, type_ids: Sequence[int], p: float, generator: torch.Generator,
) -> Tensor:  # fmt: skip
    """The augmented copy of a padded batch at training step ``step`` (1-based), as run.py.

    Positions before ``start`` (the [CLS]/<encoder-only> prefix), special tokens and padding are
    never touched. By ``step % 4``:

    0. dynamic masking of code and query: each eligible token with probability ``p``; of those,
       80 % become [MASK], half of the rest a random token id, the rest stay;
    1. "replace with type": upstream replaces the chosen tokens by the input itself (the type ids
       are not passed on the multi-language path), a no-op, reproduced as such;
    2. "replace a type token with its type": one type token is drawn and its occurrences are
       replaced by the same id, a no-op upstream, reproduced as such;
    3. one type token is drawn; its occurrences in the code become [MASK] with probability
       0.8 ``p``.

    The query is changed only at step 0 (mod 4).
    """
    out = ids.clone()
    op = step % 4
    if op == 0:
        eligible = mask.bool().clone()
        eligible[:, :start] = False
        for s in special_ids:
            eligible &= ids != s
        chosen = (torch.rand(ids.shape, generator=generator) < p) & eligible
        to_mask = chosen & (torch.rand(ids.shape, generator=generator) < 0.8)
        to_random = chosen & ~to_mask & (torch.rand(ids.shape, generator=generator) < 0.5)
        out[to_mask] = mask_id
        randoms = torch.randint(vocab_size, ids.shape, generator=generator)
        out[to_random] = randoms[to_random]
    elif op == 3 and is_code and type_ids:
        rng = random.Random(step)  # run.py: random.seed(step); choice(type tokens)
        token = rng.choice(list(type_ids))
        hit = (ids == token) & mask.bool()
        hit[:, :start] = False
        chosen = hit & (torch.rand(ids.shape, generator=generator) < p)
        chosen &= torch.rand(ids.shape, generator=generator) < 0.8
        out[chosen] = mask_id
    return out


class CoCoSoDa(nn.Module):
    code_queue: Tensor
    nl_queue: Tensor
    masked_code_queue: Tensor
    masked_nl_queue: Tensor
    queue_ptr: Tensor

    def __init__(
        self, encoder: nn.Module, dim: int, queue_size: int, momentum: float, temperature: float,
        use_queue: bool = True,
    ) -> None:  # fmt: skip
        super().__init__()
        self.encoder = encoder  # shared by code and queries
        self.code_key = copy.deepcopy(encoder)
        self.nl_key = copy.deepcopy(encoder)
        for key in (self.code_key, self.nl_key):
            for p in key.parameters():
                p.requires_grad = False
        self.momentum = momentum
        self.temperature = temperature
        self.use_queue = use_queue
        self.queue_size = queue_size
        gen = torch.Generator().manual_seed(3047)
        for name in ("code", "nl", "masked_code", "masked_nl"):
            self.register_buffer(
                f"{name}_queue", F.normalize(torch.randn(queue_size, dim, generator=gen), dim=1)
            )
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    def queues(self) -> dict[str, Tensor]:
        return {n: getattr(self, f"{n}_queue") for n in ("code", "nl", "masked_code", "masked_nl")}

    @torch.no_grad()
    def momentum_update(self) -> None:
        online = list(self.encoder.parameters())
        for key in (self.code_key, self.nl_key):
            for p_k, p_q in zip(key.parameters(), online, strict=True):
                p_k.mul_(self.momentum).add_(p_q.detach(), alpha=1.0 - self.momentum)

    @torch.no_grad()
    def enqueue(self, vectors: dict[str, Tensor]) -> None:
        """Write the batch's vectors at the shared pointer (ring buffer; upstream asserts that
        K is a multiple of the batch, where this is the same)."""
        batch = next(iter(vectors.values())).shape[0]
        rows = (int(self.queue_ptr) + torch.arange(batch)) % self.queue_size
        for name, vec in vectors.items():
            getattr(self, f"{name}_queue")[rows.to(vec.device)] = vec.detach()[: self.queue_size]
        self.queue_ptr.fill_((int(self.queue_ptr) + batch) % self.queue_size)

    def forward(
        self, code: tuple[Tensor, Tensor], code_aug: tuple[Tensor, Tensor],
        nl: tuple[Tensor, Tensor], nl_aug: tuple[Tensor, Tensor],
    ) -> Tensor:  # fmt: skip
        """The multimodal loss of one batch; each input is (ids, attention mask)."""
        c = mean_pool(self.encoder, *code)
        q = mean_pool(self.encoder, *nl)
        with torch.no_grad():
            self.momentum_update()
            self.code_key.train(self.encoder.training)
            self.nl_key.train(self.encoder.training)
            c_aug = mean_pool(self.code_key, *code_aug)
            q_aug = mean_pool(self.nl_key, *nl_aug)
        # copies: the buffers are overwritten by the enqueue below, before backward
        queues = {k: v.clone() for k, v in self.queues().items()} if self.use_queue else None
        logits = multimodal_logits(c, q, c_aug, q_aug, queues, self.temperature)
        loss = multimodal_loss(logits, c.shape[0])
        if self.use_queue:
            self.enqueue({"code": c, "nl": q, "masked_code": c_aug, "masked_nl": q_aug})
        return loss
