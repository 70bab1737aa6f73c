"""Evaluation metrics shared by the papers (numpy/torch only; scipy/sklearn are test references)."""

from common.metrics.classification import auc_ovr, binary_auc, f1_scores, macro_f1, micro_f1
from common.metrics.clustering import ari, nmi
from common.metrics.correlation import average_ranks, pearson, spearman
from common.metrics.ranking import METRICS, RankingAccumulator, ranking_metrics
from common.metrics.retrieval import reciprocal_ranks, retrieval_mrr

__all__ = [
    "METRICS",
    "RankingAccumulator",
    "ari",
    "auc_ovr",
    "average_ranks",
    "binary_auc",
    "f1_scores",
    "macro_f1",
    "micro_f1",
    "nmi",
    "pearson",
    "ranking_metrics",
    "reciprocal_ranks",
    "retrieval_mrr",
    "spearman",
]
