import pytest

from tests.factories import tiled_district


@pytest.fixture
def district(db):
    """A 2 x 2 block of grids in one community (see tests/factories.py)."""
    return tiled_district()
