"""Weighted order statistics shared by the floor fit and the depth refinement."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, quantiles: Sequence[float]) -> np.ndarray:
    """Weighted quantiles of values (M,) with weights (M,) >= 0 (not all 0): the smallest value
    whose cumulative weight reaches each quantile (Q,) of the total -> (Q,)."""
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    positions = np.searchsorted(cumulative, np.asarray(quantiles) * cumulative[-1])
    return values[order][np.minimum(positions, len(values) - 1)]


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """Weighted median of values (M,) with weights (M,)."""
    return float(weighted_quantiles(values, weights, (0.5,))[0])
