"""Where grid workers patrol: sessions, GPS points, check-ins (人员监测).

Points are kept one row each (the evidence) and, when a session ends, also as a line
built by the database from the points in time order.
"""

from django.conf import settings
from django.contrib.gis.db import models
from django.contrib.postgres.indexes import GistIndex
from django.db.models import Q
from django.utils import timezone

from geodata.models import Grid

SRID = settings.STORAGE_SRID


class PatrolSession(models.Model):
    worker = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="网格员", on_delete=models.PROTECT)
    started_at = models.DateTimeField("开始时间", default=timezone.now)
    ended_at = models.DateTimeField("结束时间", null=True, blank=True)
    track = models.LineStringField("轨迹", srid=SRID, null=True, blank=True, spatial_index=False)
    length_m = models.FloatField("里程(米)", null=True, blank=True)

    class Meta:
        verbose_name = "巡查"
        verbose_name_plural = "巡查"
        ordering = ["-started_at"]
        indexes = [
            GistIndex(fields=["track"], name="patrolsession_track_gist"),
            models.Index(fields=["worker", "-started_at"], name="patrolsession_worker_started"),
        ]
        constraints = [
            # A worker patrols once at a time: starting again returns the open session.
            models.UniqueConstraint(
                fields=["worker"], condition=Q(ended_at__isnull=True), name="patrolsession_one_open_per_worker"
            ),
            models.CheckConstraint(
                name="patrolsession_ends_after_start",
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=models.F("started_at")),
            ),
            models.CheckConstraint(name="patrolsession_track_valid", condition=Q(track__isvalid=True)),
        ]

    def __str__(self) -> str:
        return f"{self.worker} {self.started_at:%Y-%m-%d %H:%M}"


class PatrolPoint(models.Model):
    session = models.ForeignKey(PatrolSession, on_delete=models.CASCADE, related_name="points")
    # Denormalised from the session so that "last known position per worker" is one index scan.
    worker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField("定位时间（设备）")
    received_at = models.DateTimeField("接收时间（服务器）", default=timezone.now)
    point = models.PointField("位置", srid=SRID, spatial_index=False)
    accuracy_m = models.FloatField("定位精度(米)", null=True, blank=True)

    class Meta:
        verbose_name = "轨迹点"
        verbose_name_plural = "轨迹点"
        indexes = [
            GistIndex(fields=["point"], name="patrolpoint_point_gist"),
            models.Index(fields=["session", "recorded_at"], name="patrolpoint_session_time"),
        ]
        constraints = [
            # A retried upload of the same batch adds nothing (inserted with ON CONFLICT DO NOTHING).
            models.UniqueConstraint(fields=["worker", "recorded_at"], name="patrolpoint_one_per_worker_instant"),
        ]


class CheckIn(models.Model):
    """签到 / 签退 of a grid worker, with where it happened."""

    class Kind(models.TextChoices):
        IN = "in", "签到"
        OUT = "out", "签退"

    worker = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="网格员", on_delete=models.PROTECT)
    kind = models.CharField("类型", max_length=3, choices=Kind.choices)
    at = models.DateTimeField("时间", default=timezone.now)
    point = models.PointField("位置", srid=SRID, spatial_index=False)
    grid = models.ForeignKey(Grid, verbose_name="所在网格", null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        verbose_name = "签到记录"
        verbose_name_plural = "签到记录"
        ordering = ["-at"]
        indexes = [models.Index(fields=["worker", "-at"], name="checkin_worker_at")]
