import pytest
from django.core.cache import cache

from tests.factories import tiled_district


@pytest.fixture(autouse=True)
def empty_cache():
    """API throttles and cached counts must not leak from one test into the next."""
    cache.clear()


@pytest.fixture
def district(db):
    """A 2 x 2 block of grids in one community (see tests/factories.py)."""
    return tiled_district()
