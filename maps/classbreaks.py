"""Class breaks for map legends, in numpy: quantiles and Fisher–Jenks natural breaks.

The same breaks as mapclassify's `Quantiles` and `FisherJenks` (tests/maps/test_classbreaks.py
compares them on many inputs), without importing mapclassify: it pulls in scipy, scikit-learn
and pandas, ≈ 150 MB in every web worker that imports the dashboard (docs/performance.md §8).
"""

from __future__ import annotations

import numpy as np


def _score_at_percentile(sorted_values: np.ndarray, percent: float) -> float:
    """scipy.stats.scoreatpercentile with its default "fraction" interpolation, on sorted values."""
    index = percent / 100.0 * (sorted_values.size - 1)
    lower = int(index)
    if lower == index:
        return float(sorted_values[lower])
    upper = lower + 1
    weights = np.array([upper - index, index - lower], dtype=float)
    return float(np.add.reduce(sorted_values[lower : upper + 1] * weights) / 1.0)


def quantile_breaks(values: np.ndarray, k: int) -> np.ndarray:
    """Upper bounds of k quantile classes (fewer when ties repeat a bound), as mapclassify.Quantiles."""
    sorted_values = np.sort(np.asarray(values, dtype=float).ravel())
    width = 100.0 / k
    percents = np.arange(width, 100 + width, width)
    if percents[-1] > 100.0:
        percents[-1] = 100.0
    return np.unique(np.array([_score_at_percentile(sorted_values, p) for p in percents]))


def fisher_jenks_breaks(values: np.ndarray, k: int) -> np.ndarray:
    """Upper bounds of k Fisher–Jenks classes, as mapclassify.FisherJenks.

    The dynamic programme of Jenks' algorithm in the float32 arithmetic that mapclassify
    uses (so that near-ties fall the same way), vectorised over the candidate first values
    of the last class: O(n²·k) work in O(n) numpy steps.
    """
    x = np.sort(np.asarray(values, dtype="f8").ravel())
    n = x.size
    if np.unique(x).size < k:
        raise ValueError(f"Fewer unique values ({np.unique(x).size}) than specified classes ({k}).")
    lower_class = np.zeros((n + 1, k + 1), dtype=np.int32)  # mapclassify's mat1
    variance = np.zeros((n + 1, k + 1), dtype=np.float32)  # mat2
    lower_class[1, 1:] = 1
    variance[2:, 1:] = np.inf
    x32 = x.astype(np.float32)
    for last in range(2, n + 1):
        # m = 1..last: the class x[last - m .. last - 1] (1-based i3 = last - m + 1 .. last)
        window = x32[:last][::-1]
        s1 = np.cumsum(window, dtype=np.float32)
        s2 = np.cumsum(window * window, dtype=np.float32)
        w = np.arange(1, last + 1, dtype=np.float32)
        v = s2 - (s1 * s1) / w
        if k >= 2:
            m = np.arange(1, last)  # i4 = last - m must not be 0
            i4 = last - m
            candidates = v[m - 1, None] + variance[i4, 1:k]  # (last - 1) × (k - 1), float32
            best = candidates.min(axis=0)
            current = variance[last, 2:]
            # mapclassify replaces while current >= candidate, so the last m reaching the minimum wins
            reached = candidates == best
            last_m = (last - 1) - np.argmax(reached[::-1], axis=0)
            update = current >= best
            variance[last, 2:] = np.where(update, best, current)
            lower_class[last, 2:] = np.where(update, last - last_m + 1, lower_class[last, 2:])
        lower_class[last, 1] = 1
        variance[last, 1] = v[-1]
    bounds = np.zeros(k + 1, dtype=x.dtype)
    bounds[k] = x[n - 1]
    bounds[0] = x[0]
    row = n
    for count in range(k, 1, -1):
        pivot = lower_class[row, count]
        bounds[count - 1] = x[int(pivot - 2)]
        row = int(pivot - 1)
    return np.delete(bounds, 0)
