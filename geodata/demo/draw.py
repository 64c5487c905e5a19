"""Deterministic random draws shared by the demo generators."""

import math
import random
from collections.abc import Mapping, Sequence

import numpy as np


def share_out(total: int, weights: Sequence[float]) -> list[int]:
    """Integers proportional to `weights` that add up to `total` (largest remainder)."""
    weights_array = np.asarray(weights, dtype=float)
    if total <= 0 or not len(weights_array) or weights_array.sum() <= 0:
        return [0] * len(weights_array)
    quotas = weights_array / weights_array.sum() * total
    counts = np.floor(quotas).astype(int)
    for index in np.argsort(-(quotas - counts), kind="stable")[: total - counts.sum()]:
        counts[index] += 1
    return [int(n) for n in counts]


def stochastic_round(value: float, rng: random.Random) -> int:
    """`value` rounded up with probability equal to its fraction: small scales still
    leave a few objects on average instead of none."""
    whole = math.floor(value)
    return whole + (1 if rng.random() < value - whole else 0)


def weighted(rng: random.Random, weights: Mapping[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]
