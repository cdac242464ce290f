"""Distances between distributions, vectorised over the last axis (a batch of days at once).

PSI and Jensen-Shannon work on share vectors; the Wasserstein distance on quantile functions
sampled on a common grid. Empty bins are floored at ``EPSILON`` (Evidently uses the same 1e-4).
"""

from __future__ import annotations

import numpy as np

EPSILON = 1e-4


def bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares of ``values`` in the bins (-inf, e0], (e0, e1], ..., (ek, inf)."""
    idx = np.searchsorted(edges, values, side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1)
    return counts / max(1, values.size)


def psi(expected: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Population stability index between share vectors (last axis), floored at 1e-4."""
    e = np.clip(np.asarray(expected, float), EPSILON, None)
    a = np.clip(np.asarray(actual, float), EPSILON, None)
    return np.sum((a - e) * np.log(a / e), axis=-1)


def jensen_shannon_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (natural log, like ``scipy.spatial.distance.jensenshannon``).

    Works on the last axis, so a batch of day distributions is compared with one reference.
    """
    p = np.asarray(p, float)
    q = np.asarray(q, float)
    p = p / p.sum(axis=-1, keepdims=True)
    q = q / q.sum(axis=-1, keepdims=True)
    m = (p + q) / 2

    def kl(x, y):
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(x > 0, x * np.log(x / y), 0.0)
        return terms.sum(axis=-1)

    return np.sqrt(np.maximum((kl(p, m) + kl(q, m)) / 2, 0.0))


def wasserstein_between_quantiles(
    quantiles: np.ndarray, reference_quantiles: np.ndarray, scale: float
) -> np.ndarray:
    """W1 between quantile functions on the same evenly spaced grid (last axis), / ``scale``."""
    reference_quantiles = np.asarray(reference_quantiles)
    diff = np.abs(np.asarray(quantiles) - reference_quantiles)
    return np.trapezoid(diff, dx=1 / (len(reference_quantiles) - 1), axis=-1) / scale


def floored_shares(shares: np.ndarray) -> np.ndarray:
    """Shares floored at ``EPSILON`` and renormalised (an expected distribution for JS/PSI)."""
    expected = np.clip(np.asarray(shares, float), EPSILON, None)
    return expected / expected.sum()
