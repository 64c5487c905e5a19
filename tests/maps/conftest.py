"""Fixtures of the map and statistics tests: the events `world` (users of every role, street scope)."""

import datetime as dt

import pytest
from django.utils import timezone

from tests.events.conftest import fast_password_hasher, media_root, world  # noqa: F401  (re-exported fixtures)


@pytest.fixture
def now():
    """A fixed 'now' on a working Monday morning, for timer lights."""
    return dt.datetime(2026, 11, 16, 10, 0, tzinfo=timezone.get_current_timezone())
