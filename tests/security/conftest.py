import pytest
from django.db import connection


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    """Test users are many; the production hasher would dominate the run."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Photos go to a temporary directory, never into .local/media."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def database_url(name: str | None = None) -> str:
    """A libpq URL of the test database (or of `name`) for connections outside Django's."""
    s = connection.settings_dict
    return f"postgresql://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{name or s['NAME']}"


def stored_files(root) -> list[str]:
    """Every file under `root` (the photo store), as paths relative to it."""
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()) if root.exists() else []
