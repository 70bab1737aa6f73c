"""Evaluation metrics shared by the papers (numpy/torch only; scipy is a test reference)."""

from common.metrics.correlation import average_ranks, pearson, spearman
from common.metrics.ranking import METRICS, RankingAccumulator, ranking_metrics
from common.metrics.retrieval import reciprocal_ranks, retrieval_mrr

__all__ = [
    "METRICS",
    "RankingAccumulator",
    "average_ranks",
    "pearson",
    "ranking_metrics",
    "reciprocal_ranks",
    "retrieval_mrr",
    "spearman",
]
