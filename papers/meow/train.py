"""Train MEOW / AdaMEOW, or score the authors' embeddings, then run the HeCo/DMGI protocol.

Variants: ``meow`` (hard cluster-based negative weights + prototype loss), ``adameow`` (learned
soft pair weights), ``meow-official-embeddings`` (no training: the authors' released MEOW
embeddings, given by ``--embeddings PATH``, scored with our protocol), ``raw-features`` (no
training: the target nodes' row-normalised input features, the floor an embedding must beat).
"""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path
from typing import Annotated, Literal, TypedDict

import numpy as np
import torch
from pydantic import Field, model_validator

from common.config import StrictModel, declared_variant
from common.errors import ClreproError, ConfigError
from common.records import Origin, Training
from common.runner import RunContext, RunOutcome

from .cluster import run_kmeans
from .data import (
    HeteroGraph,
    LabelledNodes,
    load_graph,
    load_labels,
    node_subset,
    restrict_splits,
    subgraph,
)
from .evaluate import Evaluation, ProbeConfig, evaluate_embeddings
from .graph import drop_edges, mask_features, normalize_official, pathsim_topk, to_operator
from .losses import fused_weighted_info_nce, proto_nce
from .model import GraphInputs, MEOWEncoder, PairWeightMLP, ProjectionHead

OFFICIAL_SOURCE = "jianxiangyu/MEOW@d801ca8:code/embeds/{dataset}/0.pkl"
DropRate = Annotated[float, Field(ge=0, lt=1)]  # a fraction of edges dropped
Count = Annotated[int, Field(ge=1)]


class AdaConfig(StrictModel):
    """AdaMEOW's own recipe (``code_adameow/utils/params.py``); unset fields follow MEOW's."""

    epochs: int = Field(1200, ge=1)
    lr: float = Field(5e-5, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    dropout: float = Field(0.3, ge=0, lt=1)
    tau: float = Field(1.0, gt=0)
    nei_max: list[Count] = Field(default_factory=lambda: [690, 690])
    feat_mask: float = Field(0.3, ge=0, lt=1)
    adj_mask: list[DropRate] = Field(default_factory=lambda: [0.2, 0.2])
    pair_hidden: int = Field(16, ge=1)
    pair_chunk: int = Field(128, ge=1, description="max rows per block of pair weights")


class Config(StrictModel):
    variant: Annotated[str, declared_variant(Path(__file__).parent)] = "meow"
    epochs: int = Field(10000, ge=1, description="nb_epochs (an upper bound; patience stops)")
    patience: int = Field(30, ge=1, description="epochs without a lower training loss")
    lr: float = Field(7e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0, description="l2_coef")
    dropout: float = Field(0.2, ge=0, lt=1)
    hidden_dim: int = Field(64, ge=1)
    embed_dim: int = Field(64, ge=1)
    tau: float = Field(0.4, gt=0)
    feat_mask: float = Field(0.3, ge=0, lt=1)
    adj_mask: list[DropRate] = Field(default_factory=lambda: [0.3, 0.2])
    nei_max: list[Count] = Field(default_factory=lambda: [110, 700])
    num_clusters: list[Count] = Field(default_factory=lambda: [100, 300])
    lam_proto: float = Field(1.0, ge=0)
    kmeans_niter: int = Field(20, ge=1)
    kmeans_nredo: int = Field(5, ge=1)
    mask_branch: Literal["acm", "dblp"] = "acm"
    eva_lr: float = Field(0.03, gt=0)
    eva_wd: float = Field(0.0, ge=0)
    probe_runs: int = Field(50, ge=1)
    probe_iterations: int = Field(200, ge=1)
    kmeans_repeats: int = Field(10, ge=1)
    embedding_mode: Literal["eval", "last-train"] = "eval"
    compare_modes: bool = Field(False, description="also score the other embedding mode (log only)")
    checkpoint_every: int = Field(25, ge=1)
    threads: int = Field(1, ge=1, description="torch/faiss threads")
    dense_above: float = Field(0.25, gt=0, le=1, description="graph density above which dense")
    tie_break: Literal["official", "sparse"] = "official"
    budget_note: str = ""
    max_nodes: int | None = Field(
        None, ge=2, description="smoke: a seeded slice of the target nodes (None: all)"
    )
    adameow: AdaConfig = AdaConfig()

    @model_validator(mode="after")
    def _lengths(self) -> Config:
        if len(self.adj_mask) != len(self.nei_max):
            raise ValueError("adj_mask and nei_max need one value per meta-path")
        if len(self.adameow.adj_mask) != len(self.adameow.nei_max):
            raise ValueError("adameow.adj_mask and adameow.nei_max need one value per meta-path")
        return self


def run(config: Config, ctx: RunContext) -> RunOutcome:
    torch.set_num_threads(config.threads)
    if config.variant == "meow-official-embeddings":
        return score_official(config, ctx)
    graph = load_graph(ctx.dataset, ctx.data_root)
    keep, notes = _node_slice(config, graph.labels, graph.splits)
    if keep is not None:
        graph = subgraph(graph, keep)
    if config.variant == "raw-features":
        outcome = score_raw_features(config, ctx, graph)
    else:
        outcome = train(config, ctx, graph)
    outcome.deviations.extend(notes)
    return outcome


def _node_slice(
    config: Config, labels: np.ndarray, splits: dict[int, dict[str, np.ndarray]]
) -> tuple[np.ndarray | None, list[str]]:
    """The target nodes ``max_nodes`` keeps (None: all) and the deviation that says so."""
    total = labels.shape[0]
    if config.max_nodes is None or config.max_nodes >= total:
        return None, []
    keep = node_subset(labels, splits, config.max_nodes)
    note = (
        f"a seeded {keep.shape[0]} of the {total} target nodes (training nodes first, "
        "neighbour types whole); splits restricted to them"
    )
    return keep, [note]


def score_raw_features(config: Config, ctx: RunContext, graph: HeteroGraph) -> RunOutcome:
    """The protocol on the input features themselves: what any learned embedding must beat."""
    features = np.asarray(graph.target_features, dtype=np.float32)
    note = (
        f"no training: the target nodes' row-normalised input features "
        f"({features.shape[1]} dimensions) scored with the same protocol, as a floor"
    )
    nodes = LabelledNodes(labels=graph.labels, splits=graph.splits, files=graph.files)
    return _score_frozen(config, ctx, features, nodes, "pretrained-baseline", [note])


def _score_frozen(
    config: Config,
    ctx: RunContext,
    embeds: np.ndarray,
    nodes: LabelledNodes,
    origin: Origin,
    deviations: list[str],
    source: str | None = None,
) -> RunOutcome:
    """The protocol on embeddings that are not trained here (no selection: nothing to select)."""
    ev = _evaluate(config, ctx, embeds, nodes.labels, nodes.splits)
    return RunOutcome(
        validation=ev.validation,
        test=ev.test,
        selection_rule=_SELECTION,
        dataset_files=nodes.files,
        training=Training(stopped_by="not-trained", note="frozen embeddings or features, scored"),
        origin=origin,
        source=source,
        deviations=deviations,
    )


# --------------------------------------------------------------------------- official artifact


def _embeddings_path(ctx: RunContext) -> Path:
    given = ctx.options.get("embeddings")
    if given:
        return Path(given).expanduser()
    from common.data import shared_artifacts

    shared = shared_artifacts()
    default = shared / "meow" / f"{ctx.dataset}_embeddings.pkl" if shared else None
    if default is None or not default.is_file():
        raise ClreproError(
            "meow-official-embeddings needs --embeddings PATH (the authors' "
            f"{ctx.dataset}_embeddings.pkl from jianxiangyu/MEOW@d801ca8:code/embeds/)"
        )
    return default


def score_official(config: Config, ctx: RunContext) -> RunOutcome:
    path = _embeddings_path(ctx)
    if not path.is_file():
        raise ClreproError(f"embeddings file not found: {path}")
    with path.open("rb") as handle:
        embeds = np.asarray(pickle.load(handle), dtype=np.float32)
    nodes = load_labels(ctx.dataset, ctx.data_root)
    if embeds.ndim != 2 or embeds.shape[0] != nodes.labels.shape[0]:
        raise ClreproError(
            f"{path} holds an array of shape {embeds.shape}, expected "
            f"({nodes.labels.shape[0]}, d) for {ctx.dataset}"
        )
    ctx.logger.info("scoring %s: %s", path, embeds.shape)
    keep, notes = _node_slice(config, nodes.labels, nodes.splits)
    if keep is not None:
        splits = restrict_splits(nodes.splits, keep, nodes.labels.shape[0])
        embeds, nodes = embeds[keep], LabelledNodes(nodes.labels[keep], splits, nodes.files)
    deviations = [
        "no training: the authors' released MEOW embeddings (last-epoch, train-mode "
        "embedding of their code) scored with our implementation of their evaluate.py",
        "K-means for NMI/ARI seeded (random_state) instead of unseeded",
        *notes,
    ]
    source = OFFICIAL_SOURCE.format(dataset=ctx.dataset)
    return _score_frozen(config, ctx, embeds, nodes, "official-embeddings", deviations, source)


_SELECTION = (
    "linear probe: per run, test Macro-F1 at the best validation Macro-F1 iteration, test "
    "Micro-F1 and AUC at the best validation Micro-F1 iteration (official evaluate.py); "
    "mean over 50 runs; clustering has no selection"
)


def _evaluate(
    config: Config,
    ctx: RunContext,
    embeds: np.ndarray,
    labels: np.ndarray,
    splits: dict[int, dict[str, np.ndarray]],
) -> Evaluation:
    clock = time.perf_counter()
    probe_cfg = ProbeConfig(
        config.eva_lr, config.eva_wd, config.probe_runs, config.probe_iterations
    )
    ev = evaluate_embeddings(embeds, labels, splits, probe_cfg, config.kmeans_repeats, ctx.seed)
    ctx.logger.info("evaluation took %.1f s", time.perf_counter() - clock)
    ctx.log_metrics(0, ev.test, "test")
    ctx.log_metrics(0, ev.spread, "test-std-over-probe-runs")
    ctx.log_metrics(0, ev.validation, "validation")
    return ev


# --------------------------------------------------------------------------- training


def prepare_inputs(
    graph: HeteroGraph,
    nei_max: list[int],
    adj_mask: list[float],
    feat_mask: float,
    seed: int,
    dense_above: float,
    tie_break: str = "official",
) -> GraphInputs:
    """PathSim pruning, normalisation, and the masks (drawn once, from the run seed)."""
    if len(nei_max) != len(graph.metapaths):
        raise ConfigError(
            f"nei_max has {len(nei_max)} values but {graph.name} has {len(graph.metapaths)} "
            f"meta-paths ({', '.join(m.name for m in graph.metapaths)})"
        )
    rng = np.random.default_rng(seed)
    pruned = [
        pathsim_topk(m.counts, k, tie_break) for m, k in zip(graph.metapaths, nei_max, strict=True)
    ]
    normed = [normalize_official(p) for p in pruned]
    masked = [
        normalize_official(drop_edges(p, r, rng)) for p, r in zip(pruned, adj_mask, strict=True)
    ]
    mean_adj = sum(normed[1:], normed[0]) / len(normed)
    target = graph.target_features
    return GraphInputs(
        target=torch.from_numpy(target),
        masked_target=torch.from_numpy(mask_features(target, feat_mask, rng)),
        type_features=[
            f if isinstance(f, int) else torch.from_numpy(f) for f in graph.type_features
        ],
        contexts=[
            (
                c.node_type,
                [to_operator(f, dense_above) for f in c.factors],
                torch.from_numpy(c.inv_count),
            )
            for c in graph.contexts
        ],
        terms=[list(m.terms) for m in graph.metapaths],
        adjs=[to_operator(a, dense_above) for a in normed],
        masked_adjs=[to_operator(a, dense_above) for a in masked],
        mean_adj=to_operator(mean_adj, dense_above),
    )


class MEOW(torch.nn.Module):
    """Encoder + projection head + (AdaMEOW) pair-weight MLP, and the training loss."""

    def __init__(self, config: Config, graph: HeteroGraph, inputs: GraphInputs, adaptive: bool):
        super().__init__()
        dropout = config.adameow.dropout if adaptive else config.dropout
        self.encoder = MEOWEncoder(
            inputs, graph.num_agg, config.hidden_dim, config.embed_dim, dropout, config.mask_branch
        )
        self.head = ProjectionHead(config.embed_dim, config.embed_dim)
        self.adaptive = adaptive
        self.tau = config.adameow.tau if adaptive else config.tau
        self.pair = PairWeightMLP(
            config.embed_dim, config.adameow.pair_hidden, config.adameow.pair_chunk
        )
        self.config = config

    def loss(self, inputs: GraphInputs) -> tuple[torch.Tensor, torch.Tensor]:
        """The training loss and the fused embedding ``z`` of this forward pass."""
        views = self.encoder(inputs)
        coarse, fine = self.head(views.coarse), self.head(views.z)
        if self.adaptive:
            return self.pair.loss(fine, coarse, self.tau), views.z
        clusterings = run_kmeans(
            fine,
            self.config.num_clusters,
            self.tau,
            self.config.kmeans_niter,
            self.config.kmeans_nredo,
        )
        assignments = [c.assignment for c in clusterings]
        info = fused_weighted_info_nce(coarse, fine, assignments, self.tau)
        return info + self.config.lam_proto * proto_nce(coarse, clusterings), views.z


class _TrainState(TypedDict):
    """The training loop's state, saved in checkpoints (a plain dict there)."""

    epoch: int  # epochs done
    best: float  # lowest training loss so far
    wait: int  # epochs since it last went down
    seconds: float  # training time, without preprocessing or evaluation
    last_z: torch.Tensor | None  # the last training pass's embedding (embedding_mode last-train)


def train(config: Config, ctx: RunContext, graph: HeteroGraph) -> RunOutcome:
    adaptive = config.variant == "adameow"
    ada = config.adameow
    clock = time.perf_counter()
    inputs = prepare_inputs(
        graph,
        ada.nei_max if adaptive else config.nei_max,
        ada.adj_mask if adaptive else config.adj_mask,
        ada.feat_mask if adaptive else config.feat_mask,
        ctx.seed,
        config.dense_above,
        config.tie_break,
    )
    ctx.logger.info("preprocessing (PathSim, masks) took %.1f s", time.perf_counter() - clock)
    model = MEOW(config, graph, inputs, adaptive)
    opt = torch.optim.Adam(
        model.parameters(),
        lr=ada.lr if adaptive else config.lr,
        weight_decay=ada.weight_decay if adaptive else config.weight_decay,
    )
    epochs = ada.epochs if adaptive else config.epochs
    state: _TrainState = {"epoch": 0, "best": float("inf"), "wait": 0, "seconds": 0.0,
                          "last_z": None}  # fmt: skip
    saved = ctx.load_checkpoint()
    if saved is not None:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        state = saved["state"]
    stop = "epoch limit"
    for epoch in ctx.progress(
        range(state["epoch"], epochs), desc="epochs", total=epochs - state["epoch"]
    ):
        tick = time.perf_counter()
        model.train()
        opt.zero_grad()
        loss, z = model.loss(inputs)
        loss.backward()
        opt.step()
        value = float(loss.detach())
        if not np.isfinite(value):
            raise ClreproError(f"training loss became {value} at epoch {epoch}")
        state["seconds"] += time.perf_counter() - tick
        state["epoch"] = epoch + 1
        if config.embedding_mode == "last-train" or config.compare_modes:
            state["last_z"] = z.detach().clone()
        # official rule: the patience counter is reset only by a strictly lower loss
        if value < state["best"]:
            state["best"], state["wait"] = value, 0
        else:
            state["wait"] += 1
        ctx.log_metrics(epoch, {"loss": value, "wait": float(state["wait"])}, "train")
        if state["wait"] >= config.patience and not adaptive:
            stop = "patience"
            break
        if (epoch + 1) % config.checkpoint_every == 0:
            ctx.save_checkpoint(
                {"model": model.state_dict(), "optimizer": opt.state_dict(), "state": state}
            )
    per_epoch = state["seconds"] / max(state["epoch"], 1)
    ctx.logger.info("trained %d epochs (%s), %.3f s/epoch", state["epoch"], stop, per_epoch)
    (ctx.run_dir / "timing.json").write_text(
        f'{{"epochs": {state["epoch"]}, "seconds_per_epoch": {per_epoch:.4f}, "stop": "{stop}"}}\n'
    )
    embeds = _final_embeddings(model, inputs, config, state)
    ev = _evaluate(config, ctx, embeds, graph.labels, graph.splits)
    if config.compare_modes and state["last_z"] is not None:
        _log_other_mode(config, ctx, model, inputs, graph, state)
    return RunOutcome(
        validation=ev.validation,
        test=ev.test,
        selection_rule=f"{_SELECTION}; training stopped after {state['epoch']} epochs ({stop})",
        dataset_files=graph.files,
        training=ctx.training_end(
            config,
            early_stopped=stop == "patience",
            epochs=state["epoch"],
            field_name="adameow.epochs" if adaptive else "epochs",
        ),
        deviations=_deviations(config, ctx, adaptive, state["epoch"], stop),
    )


def _log_other_mode(
    config: Config,
    ctx: RunContext,
    model: MEOW,
    inputs: GraphInputs,
    graph: HeteroGraph,
    state: _TrainState,
) -> None:
    """Diagnostics only (train.log and other_mode.json; never in the record)."""
    other = "eval" if config.embedding_mode == "last-train" else "last-train"
    alt = config.model_copy(update={"embedding_mode": other})
    ev = _evaluate(
        config, ctx, _final_embeddings(model, inputs, alt, state), graph.labels, graph.splits
    )
    ctx.logger.info("the %s embedding (diagnostic, not recorded): %s", other, ev.test)
    (ctx.run_dir / "other_mode.json").write_text(
        json.dumps({"mode": other, "test": ev.test}) + "\n"
    )


def _final_embeddings(
    model: MEOW, inputs: GraphInputs, config: Config, state: _TrainState
) -> np.ndarray:
    if config.embedding_mode == "last-train" and state["last_z"] is not None:
        return np.asarray(state["last_z"].numpy())
    model.eval()
    with torch.no_grad():
        return np.asarray(model.encoder(inputs).z.numpy())


def _deviations(
    config: Config, ctx: RunContext, adaptive: bool, epochs: int, stop: str
) -> list[str]:
    out = [
        "embeddings of the final parameters in eval mode (no dropout); the official code "
        "evaluates the last training forward pass (train mode)"
        if config.embedding_mode == "eval"
        else "embedding of the last training forward pass (train mode), as the official code",
        "PathSim top-k ties broken by numpy's argsort as in the official code"
        if config.tie_break == "official"
        else "PathSim top-k ties broken by larger node id (sparse selection)",
        "masks drawn with numpy's default_rng(seed), not the official global RNG streams",
    ]
    if ctx.dataset == "dblp":
        out.append(
            "DBLP: APA/APCPA/APTPA path counts and the A-P/A-P-C/A-P-C-P/A-P-T/A-P-T-P context "
            "matrices rebuilt from HeCo's pa.txt/pc.txt/pt.txt (MEOW's own DBLP files are not "
            "public); HeCo's boolean apa/apcpa have the same non-zero pattern"
        )
    if adaptive and stop == "epoch limit" and epochs < 1200:
        out.append(f"AdaMEOW trained {epochs} epochs instead of the official 1200 (CPU budget)")
    if adaptive:
        out.append(
            "AdaMEOW: final-epoch embedding; the official script instead prints test scores "
            "every 100 epochs after epoch 410 (no validation-based choice)"
        )
    if not adaptive and stop != "patience" and epochs < 10000:
        out.append(f"MEOW stopped at the {epochs}-epoch cap before patience ran out (CPU budget)")
    if config.budget_note:
        out.append(config.budget_note)
    return out
