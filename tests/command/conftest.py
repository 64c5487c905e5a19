"""The command-center screens reuse the events test world (tests/events/conftest.py)."""

from tests.events.conftest import fast_password_hasher, media_root, world  # noqa: F401  (fixtures reused)
