"""`make backup` / `make restore`: a backup restores into a fresh database with identical
row counts and checksums, and the photo store comes back byte for byte."""

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from tests.factories import PersonFactory

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


def _url(name: str) -> str:
    s = connection.settings_dict
    return f"postgresql://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{name}"


def _run(script: str, *args: str, database: str, media: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DATABASE_URL": _url(database),
        "MEDIA_ROOT": str(media),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    return subprocess.run(
        [str(ROOT / "scripts" / script), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def fresh_database():
    name = f"{connection.settings_dict['NAME']}_restore"
    with psycopg.connect(_url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(_url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_backup_restores_into_a_fresh_database_with_identical_counts_and_checksums(district, tmp_path, fresh_database):
    PersonFactory.create_batch(3)
    # The job-queue tables are not Django models, so the flushes between transactional tests
    # leave their rows behind, sometimes with events whose job is gone; a real database never
    # holds such rows (the foreign key forbids them), so start this backup without them.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_events; DELETE FROM procrastinate_jobs")
    media = tmp_path / "media"
    (media / "photos").mkdir(parents=True)
    (media / "photos" / "a.jpg").write_bytes(b"\xff\xd8 photo bytes")

    backup = _run("backup.sh", str(tmp_path / "backups"), database=connection.settings_dict["NAME"], media=media)
    assert backup.returncode == 0, backup.stderr
    folder = Path(backup.stdout.strip().splitlines()[-1])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["tables"]["geodata_person"]["rows"] == 3
    assert manifest["tables"]["geodata_grid"]["rows"] == 4
    assert list(manifest["media"]) == ["photos/a.jpg"]

    restored_media = tmp_path / "restored-media"
    restore = _run("restore.sh", str(folder), database=fresh_database, media=restored_media)
    assert restore.returncode == 0, restore.stderr
    assert (restored_media / "photos" / "a.jpg").read_bytes() == b"\xff\xd8 photo bytes"
    with psycopg.connect(_url(fresh_database)) as restored:
        assert restored.execute("select count(*) from geodata_person").fetchone() == (3,)

    # The comparison can fail: change one row in the restored copy and compare again.
    with psycopg.connect(_url(fresh_database), autocommit=True) as restored:
        restored.execute("update geodata_grid set name = name || '改' where code = '500104001001001'")
    manifest_args = ["--media", str(restored_media), "--compare", str(folder / "manifest.json")]
    compare = subprocess.run(
        [sys.executable, "-m", "gridmgmt.backup_manifest", "--database-url", _url(fresh_database), *manifest_args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert compare.returncode == 1
    assert "table geodata_grid" in compare.stderr


def test_restore_refuses_a_folder_that_is_not_a_backup(tmp_path, fresh_database):
    result = _run("restore.sh", str(tmp_path), database=fresh_database, media=tmp_path / "m")
    assert result.returncode == 1
    assert "is not a gridmgmt backup folder" in result.stderr
