"""The benchmark's own database: created on the project's PostGIS server, migrated, never the project's.

The bench process points Django at it before django.setup(), so every product function
measured here reads and writes the benchmark database only.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

DEFAULT_NAME = "gridmgmt_bench"
_SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def bench_url(source_url: str, name: str) -> str:
    """`source_url` (the project's DATABASE_URL) with its database name replaced by `name`."""
    if not _SAFE_NAME.match(name):
        raise ValueError(f"Database name {name!r}: use lower-case letters, digits and _.")
    parts = urlsplit(source_url)
    source_name = parts.path.lstrip("/")
    if name == source_name:
        raise ValueError(f"The benchmark never writes into the project's database {source_name!r}: pick another name.")
    return urlunsplit(parts._replace(path=f"/{name}"))


def libpq_url(url: str) -> str:
    """A URL psycopg accepts (dj-database-url's postgis:// scheme is not one)."""
    return re.sub(r"^postgis://", "postgresql://", url)


def ensure_database(url: str) -> bool:
    """Create the database of `url` with PostGIS if it does not exist. Returns True if created."""
    parts = urlsplit(libpq_url(url))
    name = parts.path.lstrip("/")
    server = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(server, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    return not exists


def drop_database(url: str) -> None:
    parts = urlsplit(libpq_url(url))
    name = parts.path.lstrip("/")
    server = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def database_size(url: str) -> int:
    with psycopg.connect(libpq_url(url)) as conn:
        return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])


def use_database(url: str) -> None:
    """Point this process's Django at `url`; call before django.setup()."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gridmgmt.settings")


def migrate() -> None:
    """Bring the schema up to date, with the cache table the API throttles need."""
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    call_command("createcachetable", verbosity=0)
