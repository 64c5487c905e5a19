"""Writes for patrols: start/stop a session, record GPS points in batches, check in/out."""

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from django.contrib.gis.geos import Point
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from geodata.selectors import PointOutsideJurisdiction, grid_for_point
from patrol.models import CheckIn, PatrolSession

# Rough bounding box of China: a point outside it is a GPS or client error, not a patrol.
CHINA_BOUNDS = (73.4, 3.8, 135.1, 53.6)
MAX_POINTS_PER_BATCH = 2000
# Device clocks drift; a point more than this in the future is refused.
CLOCK_TOLERANCE = dt.timedelta(minutes=5)


class PatrolError(ValueError):
    """A patrol request that cannot be carried out; the message says why, in Chinese."""


@dataclasses.dataclass
class PointsReport:
    accepted: int
    duplicates: int
    rejected: list[dict[str, Any]]


def patrol_start(*, worker, at: dt.datetime | None = None) -> tuple[PatrolSession, bool]:
    """Start a patrol, or return the worker's open one (a retried start creates nothing)."""
    with transaction.atomic():
        open_session = PatrolSession.objects.select_for_update().filter(worker=worker, ended_at__isnull=True).first()
        if open_session is not None:
            return open_session, False
        return PatrolSession.objects.create(worker=worker, started_at=at or timezone.now()), True


def _own_session(*, worker, session_id: int) -> PatrolSession:
    session = PatrolSession.objects.select_for_update().filter(pk=session_id).first()
    if session is None or session.worker_id != worker.pk:
        raise PatrolError("巡查记录不存在或不属于当前用户")
    return session


def _rebuild_track(session_id: int) -> None:
    """Build the session's line from its points in time order, in the database."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE patrol_patrolsession s
            SET track = t.line, length_m = ST_Length(t.line::geography)
            FROM (
                -- A worker standing still sends the same point again and again: a line needs two
                -- distinct points, otherwise the patrol keeps no track.
                SELECT CASE WHEN count(DISTINCT point) >= 2
                            THEN ST_RemoveRepeatedPoints(ST_MakeLine(point ORDER BY recorded_at)) END AS line
                FROM patrol_patrolpoint WHERE session_id = %s
            ) t
            WHERE s.id = %s
            """,
            [session_id, session_id],
        )


def patrol_stop(*, worker, session_id: int, at: dt.datetime | None = None) -> PatrolSession:
    """End a patrol and store its track; stopping an ended patrol again changes nothing."""
    with transaction.atomic():
        session = _own_session(worker=worker, session_id=session_id)
        if session.ended_at is not None:
            return session
        session.ended_at = max(at or timezone.now(), session.started_at)
        session.save(update_fields=["ended_at"])
        _rebuild_track(session.pk)
    session.refresh_from_db()
    return session


def _parse_point(raw: Mapping[str, Any], *, now: dt.datetime) -> tuple[dt.datetime, float, float, float | None]:
    try:
        lon, lat = float(raw["lon"]), float(raw["lat"])
    except (KeyError, TypeError, ValueError, OverflowError):
        raise PatrolError("缺少经纬度或格式错误（lon、lat 应为数字）") from None
    west, south, east, north = CHINA_BOUNDS
    if not (west <= lon <= east and south <= lat <= north):
        raise PatrolError(f"坐标 ({lon}, {lat}) 不在中国境内")
    recorded = raw.get("recorded_at")
    try:
        recorded_at = parse_datetime(recorded) if isinstance(recorded, str) else None
    except ValueError:  # well formed but impossible, e.g. 2026-02-30
        recorded_at = None
    if recorded_at is None or recorded_at.tzinfo is None:
        raise PatrolError("recorded_at 应为带时区的 ISO 8601 时间，例如 2026-11-22T09:30:00+08:00")
    if recorded_at > now + CLOCK_TOLERANCE:
        raise PatrolError("定位时间晚于服务器时间，请校准手机时间")
    accuracy = raw.get("accuracy_m")
    if accuracy is not None:
        try:
            accuracy = float(accuracy)
        except (TypeError, ValueError, OverflowError):
            raise PatrolError("accuracy_m 应为数字（米）") from None
        if accuracy < 0:
            raise PatrolError("accuracy_m 不能为负数")
    return recorded_at, lon, lat, accuracy


def patrol_points_record(*, worker, session_id: int, points: Sequence[Mapping[str, Any]]) -> PointsReport:
    """Store a batch of GPS points of one patrol, exactly once.

    Points already stored (same worker, same device time) are counted as duplicates, so a
    phone may resend a batch after a lost answer. Invalid points are reported by index and
    skipped; valid ones are inserted in one statement. If the patrol has ended already
    (points uploaded late from an offline phone), its track is rebuilt.
    """
    if len(points) > MAX_POINTS_PER_BATCH:
        raise PatrolError(f"每批最多 {MAX_POINTS_PER_BATCH} 个轨迹点，请分批上传")
    now = timezone.now()
    rows, rejected = [], []
    for index, raw in enumerate(points):
        try:
            rows.append(_parse_point(raw, now=now))
        except PatrolError as error:
            rejected.append({"index": index, "message": str(error)})
    with transaction.atomic():
        session = _own_session(worker=worker, session_id=session_id)
        inserted = 0
        if rows:
            times, lons, lats, accuracies = (list(column) for column in zip(*rows, strict=True))
            with connection.cursor() as cursor:
                cursor.execute(
                    """
                    INSERT INTO patrol_patrolpoint (session_id, worker_id, recorded_at, received_at, point, accuracy_m)
                    SELECT %s, %s, t.recorded_at, %s, ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326), t.accuracy
                    FROM unnest(%s::timestamptz[], %s::float8[], %s::float8[], %s::float8[])
                         AS t(recorded_at, lon, lat, accuracy)
                    ON CONFLICT (worker_id, recorded_at) DO NOTHING
                    """,
                    [session.pk, worker.pk, now, times, lons, lats, accuracies],
                )
                inserted = cursor.rowcount
        if session.ended_at is not None and inserted:
            _rebuild_track(session.pk)
    return PointsReport(accepted=inserted, duplicates=len(rows) - inserted, rejected=rejected)


def check_in_record(*, worker, kind: str, point: Point, at: dt.datetime | None = None) -> CheckIn:
    """签到/签退 at a place; the grid is recorded when the place is inside the jurisdiction."""
    if kind not in CheckIn.Kind.values:
        raise PatrolError("kind 应为 in（签到）或 out（签退）")
    west, south, east, north = CHINA_BOUNDS
    if not (west <= point.x <= east and south <= point.y <= north):
        raise PatrolError(f"坐标 ({point.x}, {point.y}) 不在中国境内")
    try:
        grid = grid_for_point(point=point)
    except PointOutsideJurisdiction:
        grid = None
    return CheckIn.objects.create(worker=worker, kind=kind, point=point, at=at or timezone.now(), grid=grid)
