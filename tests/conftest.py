import pytest
from django.core.cache import caches

from events import photos
from tests.factories import tiled_district


@pytest.fixture(autouse=True)
def empty_cache():
    """API throttles and cached counts must not leak from one test into the next."""
    for cache in caches.all(initialized_only=True):
        cache.clear()


@pytest.fixture(autouse=True)
def forget_uncommitted_photo_files():
    """A test's transaction is rolled back without on_commit ever running, so the photo files it
    noted as uncommitted (events.photos) would otherwise stay noted into the next test."""
    yield
    photos._noted().clear()


@pytest.fixture
def district(db):
    """A 2 x 2 block of grids in one community (see tests/factories.py)."""
    return tiled_district()
