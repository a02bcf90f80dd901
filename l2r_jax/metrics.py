"""Evaluation metrics."""
from sorter.ranking import spearman  # Spearman's rho with average ranks for ties

__all__ = ['spearman']
