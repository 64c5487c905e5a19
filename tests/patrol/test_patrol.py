import datetime as dt

import pytest
from django.contrib.gis.geos import Point
from django.utils import timezone

from accounts.models import Role
from geodata.models import GridAssignment
from patrol import selectors, services
from patrol.models import CheckIn, PatrolPoint, PatrolSession
from tests.factories import ORIGIN, UserFactory

X0, Y0 = ORIGIN
T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def worker(district):
    user = UserFactory(role=Role.GRID_WORKER)
    GridAssignment.objects.create(grid=district["grids"][2], worker=user)  # the south-west grid
    return user


def _points(*coords, start=T0, step_s=30):
    return [
        {"lon": lon, "lat": lat, "recorded_at": (start + dt.timedelta(seconds=i * step_s)).isoformat(), "accuracy_m": 8}
        for i, (lon, lat) in enumerate(coords)
    ]


def test_starting_twice_returns_the_same_open_patrol(worker):
    first, created = services.patrol_start(worker=worker, at=T0)
    again, created_again = services.patrol_start(worker=worker)
    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert PatrolSession.objects.count() == 1


def test_a_resent_batch_is_stored_once_and_bad_points_are_reported_by_index(worker):
    session, _ = services.patrol_start(worker=worker, at=T0)
    batch = _points((X0 + 0.0001, Y0 + 0.0001), (X0 + 0.0019, Y0 + 0.0001))
    batch.append({"lon": 10.0, "lat": 10.0, "recorded_at": T0.isoformat()})  # outside China
    batch.append({"lon": X0, "lat": Y0, "recorded_at": "yesterday"})
    batch.append({"lat": Y0, "recorded_at": T0.isoformat()})
    batch.append({"lon": X0, "lat": Y0, "recorded_at": "2026-02-30T09:00:00+08:00"})  # no such day
    batch.append({"lon": 10**400, "lat": Y0, "recorded_at": T0.isoformat()})

    report = services.patrol_points_record(worker=worker, session_id=session.pk, points=batch)
    assert (report.accepted, report.duplicates) == (2, 0)
    assert [r["index"] for r in report.rejected] == [2, 3, 4, 5, 6]
    assert "不在中国境内" in report.rejected[0]["message"]
    assert "ISO 8601" in report.rejected[1]["message"]

    again = services.patrol_points_record(worker=worker, session_id=session.pk, points=batch[:2])
    assert (again.accepted, again.duplicates) == (0, 2)
    assert PatrolPoint.objects.count() == 2


def test_stopping_builds_the_track_in_time_order_with_its_length(worker):
    session, _ = services.patrol_start(worker=worker, at=T0)
    # sent out of order: the line follows device time, not arrival
    points = _points((X0 + 0.0001, Y0 + 0.0001), (X0 + 0.0011, Y0 + 0.0001), (X0 + 0.0011, Y0 + 0.0011))
    services.patrol_points_record(worker=worker, session_id=session.pk, points=list(reversed(points)))
    stopped = services.patrol_stop(worker=worker, session_id=session.pk, at=T0 + dt.timedelta(minutes=5))
    assert stopped.track.coords[0] == pytest.approx((X0 + 0.0001, Y0 + 0.0001))
    assert stopped.track.coords[-1] == pytest.approx((X0 + 0.0011, Y0 + 0.0011))
    assert 97 + 110 < stopped.length_m < 98 + 112  # ≈ 97 m east, then ≈ 111 m north
    # stopping again changes nothing
    assert services.patrol_stop(worker=worker, session_id=session.pk).ended_at == stopped.ended_at


def test_another_workers_patrol_cannot_be_touched(worker):
    session, _ = services.patrol_start(worker=worker, at=T0)
    intruder = UserFactory(role=Role.GRID_WORKER)
    with pytest.raises(services.PatrolError, match="不属于当前用户"):
        services.patrol_points_record(worker=intruder, session_id=session.pk, points=_points((X0, Y0)))
    with pytest.raises(services.PatrolError):
        services.patrol_stop(worker=intruder, session_id=session.pk)
    assert PatrolPoint.objects.count() == 0
    assert PatrolSession.objects.get().ended_at is None


def test_points_from_the_future_and_oversized_batches_are_refused(worker):
    session, _ = services.patrol_start(worker=worker)
    future = _points((X0, Y0), start=timezone.now() + dt.timedelta(hours=1))
    assert services.patrol_points_record(worker=worker, session_id=session.pk, points=future).accepted == 0
    with pytest.raises(services.PatrolError, match="每批最多"):
        services.patrol_points_record(worker=worker, session_id=session.pk, points=_points(*[(X0, Y0)] * 2001))


def test_check_in_records_the_grid_or_none_outside(worker, district):
    inside = services.check_in_record(worker=worker, kind="in", point=Point(X0 + 0.0005, Y0 + 0.0005, srid=4326))
    outside = services.check_in_record(worker=worker, kind="out", point=Point(X0 - 1, Y0, srid=4326))
    with pytest.raises(services.PatrolError, match="不在中国境内"):
        services.check_in_record(worker=worker, kind="in", point=Point(2.35, 48.85, srid=4326))
    assert inside.grid == district["grids"][2]
    assert outside.grid is None
    with pytest.raises(services.PatrolError):
        services.check_in_record(worker=worker, kind="lunch", point=Point(X0, Y0, srid=4326))
    assert CheckIn.objects.count() == 2


def test_latest_positions_and_tracks_of_a_day(worker):
    other = UserFactory(role=Role.GRID_WORKER)
    mine, _ = services.patrol_start(worker=worker, at=T0)
    theirs, _ = services.patrol_start(worker=other, at=T0)
    services.patrol_points_record(worker=worker, session_id=mine.pk, points=_points((X0, Y0), (X0 + 0.001, Y0)))
    services.patrol_points_record(worker=other, session_id=theirs.pk, points=_points((X0, Y0 + 0.001)))

    latest = {row["worker_id"]: row for row in selectors.worker_positions_latest(since=T0)}
    assert latest[worker.pk]["lon"] == pytest.approx(X0 + 0.001)
    assert latest[other.pk]["lat"] == pytest.approx(Y0 + 0.001)

    tracks = selectors.patrol_tracks_geojson(start=T0, end=T0 + dt.timedelta(days=1))
    # the open session with two points is drawn; the one-point session has no line yet
    lines = [f for f in tracks["features"] if f["geometry"]["type"] == "LineString"]
    assert [f["properties"]["worker_id"] for f in lines] == [worker.pk]


def test_coverage_is_the_share_of_the_grid_swept_by_its_own_worker(worker, district):
    session, _ = services.patrol_start(worker=worker, at=T0)
    # a straight walk through the middle of the 0.002-degree grid (≈ 194 m east-west)
    walk = _points((X0, Y0 + 0.001), (X0 + 0.002, Y0 + 0.001))
    services.patrol_points_record(worker=worker, session_id=session.pk, points=walk)
    services.patrol_stop(worker=worker, session_id=session.pk, at=T0 + dt.timedelta(hours=1))

    rows = selectors.patrol_coverage(start=T0, end=T0 + dt.timedelta(days=1), day=T0.date(), buffer_m=25)
    assert [r["code"] for r in rows] == ["500104001001003"]
    # a 50 m wide corridor across a ≈ 222 m tall grid covers ≈ 50/222 of it
    assert 0.21 < float(rows[0]["covered_share"]) < 0.24
    nothing = selectors.patrol_coverage(start=T0 + dt.timedelta(days=2), end=T0 + dt.timedelta(days=3), day=T0.date())
    assert float(nothing[0]["covered_share"]) == 0


def test_a_patrol_that_never_moved_stops_without_a_track(worker):
    session, _ = services.patrol_start(worker=worker, at=T0)
    services.patrol_points_record(worker=worker, session_id=session.pk, points=_points((X0, Y0), (X0, Y0), (X0, Y0)))
    stopped = services.patrol_stop(worker=worker, session_id=session.pk, at=T0 + dt.timedelta(minutes=5))
    assert stopped.ended_at is not None
    assert stopped.track is None and stopped.length_m is None
    assert PatrolPoint.objects.filter(session=session).count() == 3
