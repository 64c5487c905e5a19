"""The photo store keeps no file whose case was never written (docs/security.md, R1).

Transactions here are real ones (transactional tests): a photo file is written before COMMIT,
so what matters is what happens when the COMMIT, a savepoint or the caller's transaction fails.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from events import photos, services, tasks
from events.models import Case, CaseHistory, CasePhoto
from tests.events.factories import POINT_SW, jpeg, local

pytestmark = pytest.mark.django_db(transaction=True)


def _report(world, description: str = "垃圾") -> Case:
    return services.case_report(
        actor=world.grid_worker,
        source=Case.Source.GRID_WORKER,
        category=world.category,
        location=POINT_SW,
        description=description,
        photos=[jpeg()],
        at=local(2026, 11, 16, 9, 0),
    )


def _stored(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture
def refused_at_commit():
    """PostgreSQL refuses every transaction that wrote a case photo, at COMMIT (a deferred
    constraint trigger): the rows and the file are written, then the commit fails."""
    with connection.cursor() as cursor:
        cursor.execute(
            """CREATE FUNCTION test_refuse_photo_at_commit() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$;
               CREATE CONSTRAINT TRIGGER test_refuse_photo_at_commit AFTER INSERT ON events_casephoto
               DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_refuse_photo_at_commit()"""
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute(
            """DROP TRIGGER test_refuse_photo_at_commit ON events_casephoto;
               DROP FUNCTION test_refuse_photo_at_commit()"""
        )


def test_a_report_refused_at_commit_leaves_no_file(world, media_root, refused_at_commit):
    with pytest.raises(DatabaseError, match="refused at commit"):
        _report(world)
    assert Case.objects.count() == 0
    assert CasePhoto.objects.count() == 0
    assert CaseHistory.objects.count() == 0
    assert _stored(media_root) == []
    assert photos.photo_files_discard_uncommitted() == 0  # nothing left noted


def test_a_committed_report_keeps_its_file(world, media_root):
    case = _report(world)
    [photo] = CasePhoto.objects.filter(case=case)
    assert _stored(media_root) == [photo.image.name]
    assert photos.photo_files_discard_uncommitted() == 0
    assert _stored(media_root) == [photo.image.name]


def test_a_rolled_back_savepoint_loses_its_file_and_the_committed_one_stays(world, media_root):
    """The caller owns the transaction (as the API's report does): one report commits with it,
    the other is rolled back to its savepoint; only once the caller's transaction is over is
    it known which file stays."""
    with transaction.atomic():
        kept = _report(world, "保留")
        with pytest.raises(RuntimeError), transaction.atomic():
            _report(world, "撤销")
            raise RuntimeError("the caller gives up after the second report")
        assert len(_stored(media_root)) == 2  # the outcome is not known inside the transaction
    assert photos.photo_files_discard_uncommitted() == 1
    [photo] = CasePhoto.objects.all()
    assert photo.case == kept
    assert _stored(media_root) == [photo.image.name]


def test_a_rolled_back_caller_transaction_loses_the_file(world, media_root):
    with pytest.raises(RuntimeError), transaction.atomic():
        _report(world)
        raise RuntimeError("the caller's next step fails")
    assert photos.photo_files_discard_uncommitted() == 1
    assert Case.objects.count() == 0
    assert _stored(media_root) == []


def _age(path, hours: float) -> None:
    when = (timezone.now() - dt.timedelta(hours=hours)).timestamp()
    os.utime(path, (when, when))


def test_the_sweep_removes_old_orphans_and_never_a_referenced_or_young_file(world, media_root):
    case = _report(world)
    referenced = media_root / case.photos.get().image.name
    folder = referenced.parent
    old_orphan, young_orphan = folder / "orphan-old.jpg", folder / "orphan-young.jpg"
    for orphan in (old_orphan, young_orphan):
        orphan.write_bytes(jpeg().read())
    _age(referenced, 48)
    _age(old_orphan, 7)
    _age(young_orphan, 1)  # its transaction may still be open

    assert tasks.case_photo_orphans_sweep(int(timezone.now().timestamp())) == 1
    assert not old_orphan.exists()
    assert referenced.is_file() and young_orphan.is_file()
    assert photos.photo_orphans_sweep() == 0  # nothing more
    assert referenced.is_file() and young_orphan.is_file()


def test_the_sweep_of_an_empty_store_does_nothing(media_root):
    assert photos.photo_orphans_sweep() == 0
