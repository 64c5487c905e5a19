"""`make backup` / `make restore`: a backup restores into a fresh database with identical
row counts and checksums, and the photo store comes back byte for byte."""

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.utils import timezone
from procrastinate.contrib.django import app
from procrastinate.jobs import Status

from bench import metrics
from events import tasks
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


QUEUE = "ops-backup"


def _queue_rows(url: str) -> tuple[list, list]:
    """This test's jobs (id, status, attempts) and their events (id, job, type), in id order."""
    with psycopg.connect(url) as db:
        jobs = db.execute(
            "SELECT id, status::text, attempts FROM procrastinate_jobs WHERE queue_name = %s ORDER BY id", [QUEUE]
        ).fetchall()
        events = db.execute(
            """SELECT e.id, e.job_id, e.type::text FROM procrastinate_events e
               JOIN procrastinate_jobs j ON j.id = e.job_id WHERE j.queue_name = %s ORDER BY e.id""",
            [QUEUE],
        ).fetchall()
    return jobs, events


def _orphan_events(url: str) -> int:
    with psycopg.connect(url) as db:
        return db.execute(
            """SELECT count(*) FROM procrastinate_events e
               WHERE NOT EXISTS (SELECT 1 FROM procrastinate_jobs j WHERE j.id = e.job_id)"""
        ).fetchone()[0]


@pytest.fixture
def job_queue():
    """This test's queue and a registered worker; removed afterwards (procrastinate's tables are
    not flushed between tests: its models are unmanaged)."""
    worker_id = async_to_sync(app.job_manager.register_worker)()
    yield worker_id
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_jobs WHERE queue_name = %s", [QUEUE])
    async_to_sync(app.job_manager.unregister_worker)(worker_id)


def test_a_backup_taken_while_jobs_wait_and_run_restores_with_its_job_queue(
    district, tmp_path, fresh_database, job_queue
):
    """R5, without clearing the job queue: jobs waiting (todo), running (doing), put back after
    a dead worker (todo, attempt 1) and finished (succeeded), each with its events, restore as
    they were; the restore adds no event of its own, and the restored queue works."""
    PersonFactory.create_batch(2)
    defer = tasks.case_timer_check.configure(queue=QUEUE).defer
    running, retried, finished, waiting = (
        defer(case_id=n, step_started_at="2026-11-16T09:00:00+08:00", level="red") for n in range(1, 5)
    )
    for _ in range(3):  # the worker takes the three oldest
        async_to_sync(app.job_manager.fetch_job)(queues=[QUEUE], worker_id=job_queue)
    async_to_sync(app.job_manager.finish_job_by_id_async)(job_id=finished, status=Status.SUCCEEDED, delete_job=False)
    app.job_manager.retry_job_by_id(job_id=retried, retry_at=timezone.now())
    source = _url(connection.settings_dict["NAME"])
    jobs, events = _queue_rows(source)
    assert jobs == [(running, "doing", 0), (retried, "todo", 1), (finished, "succeeded", 1), (waiting, "todo", 0)]
    assert sorted(type_ for _, _, type_ in events) == sorted(
        ["deferred"] * 4 + ["started"] * 3 + ["deferred_for_retry", "scheduled", "succeeded"]
    )
    assert _orphan_events(source) == 0

    media = tmp_path / "media"
    media.mkdir()
    backup = _run("backup.sh", str(tmp_path / "backups"), database=connection.settings_dict["NAME"], media=media)
    assert backup.returncode == 0, backup.stderr
    folder = Path(backup.stdout.strip().splitlines()[-1])
    restore = _run("restore.sh", str(folder), database=fresh_database, media=tmp_path / "restored-media")
    assert restore.returncode == 0, restore.stderr

    restored = _url(fresh_database)
    assert _queue_rows(restored) == (jobs, events)  # no event added by the restore's own inserts
    assert _orphan_events(restored) == 0
    with psycopg.connect(restored, autocommit=True) as db:  # the queue's functions and triggers came back
        db.execute("SELECT procrastinate_retry_job_v2(%s, now(), NULL, NULL, NULL)", [running])
    restored_jobs, restored_events = _queue_rows(restored)
    assert restored_jobs[0] == (running, "todo", 1)
    assert restored_events[: len(events)] == events
    assert sorted(e[1:] for e in restored_events[len(events) :]) == [
        (running, "deferred_for_retry"),
        (running, "scheduled"),
    ]


def test_jobs_deleted_with_their_events_in_replica_mode_would_break_a_restore_and_the_bench_does_not(
    district, job_queue
):
    """How events without a job arose (R5): foreign-key actions are triggers, which
    session_replication_role = replica switches off, so deleting jobs there kept their events.
    The bench's clean-up did that; it now deletes jobs with the triggers on."""
    job_id = tasks.case_timer_check.configure(queue=QUEUE).defer(
        case_id=1, step_started_at="2026-11-16T09:00:00+08:00", level="red"
    )
    url = _url(connection.settings_dict["NAME"])
    with psycopg.connect(url) as db:
        db.execute("SET LOCAL session_replication_role = replica")
        db.execute("DELETE FROM procrastinate_jobs WHERE id = %s", [job_id])
        assert db.execute("SELECT count(*) FROM procrastinate_events WHERE job_id = %s", [job_id]).fetchone() == (1,)
        db.rollback()  # this test leaves no orphan behind

    assert metrics.ingest_cleanup() == 0  # the bench's clean-up (replica mode for the history) removes timer jobs
    assert _queue_rows(url) == ([], [])
    assert _orphan_events(url) == 0
