"""maps.classbreaks gives mapclassify's class breaks without importing mapclassify."""

import warnings

import mapclassify
import numpy as np
import pytest

from maps import classbreaks
from maps.selectors import classify


def _samples():
    rng = np.random.default_rng(20261122)
    for n in (2, 3, 5, 17, 60, 120):
        yield rng.exponential(5, n)  # skewed, like incident rates
        yield rng.integers(0, 12, n).astype(float)  # counts with many ties
        yield np.round(rng.lognormal(1, 1, n), 2)
        yield rng.normal(0, 1, n)


CASES = [(values, k) for values in _samples() for k in (2, 5, 7) if np.unique(values).size >= k]


@pytest.mark.parametrize(("values", "k"), CASES)
def test_quantile_breaks_equal_mapclassify(values, k):
    assert np.array_equal(classbreaks.quantile_breaks(values, k), mapclassify.Quantiles(values, k=k).bins)


@pytest.mark.parametrize(("values", "k"), CASES)
def test_fisher_jenks_breaks_equal_mapclassify(values, k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Numba not installed"
        expected = mapclassify.FisherJenks(values, k=k).bins
    assert np.array_equal(classbreaks.fisher_jenks_breaks(values, k), expected)


def test_fisher_jenks_refuses_more_classes_than_distinct_values():
    with pytest.raises(ValueError, match="Fewer unique values"):
        classbreaks.fisher_jenks_breaks(np.array([1.0, 1.0, 2.0]), 3)


def test_classify_natural_breaks_on_many_values_uses_the_sample_and_ends_at_the_maximum():
    # Given 1 000 values with only two distinct ones among the 200 order statistics sampled
    values = {n: (0.0 if n < 999 else 999.0) for n in range(1000)}
    # When the legend is computed with natural breaks
    legend = classify(values, scheme="natural_breaks", k=5)
    # Then it has as many classes as the sample allows, the last bound is the true maximum
    assert legend == {"scheme": "natural_breaks", "bins": [0.0, 999.0], "min": 0.0}
