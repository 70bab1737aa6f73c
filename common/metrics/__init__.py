"""Evaluation metrics shared by the papers (numpy/torch only; scipy is a test reference)."""

from common.metrics.correlation import average_ranks, pearson, spearman
from common.metrics.ranking import METRICS, RankingAccumulator, ranking_metrics

__all__ = [
    "METRICS",
    "RankingAccumulator",
    "average_ranks",
    "pearson",
    "ranking_metrics",
    "spearman",
]
