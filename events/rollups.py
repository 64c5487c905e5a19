"""Incident rollups: counts of incidents per grid and local day, month and year.

An incident is a case that is neither 作废 (voided) nor 合并 (merged into another case),
counted on the local day (settings.TIME_ZONE) of its reported_at, in the grid, community
and street stored on the case — the same question the dashboard's incident layers ask.

The three tables are kept by statement-level triggers on events_case (migration
0004_incident_rollup) in the same transaction as every case write, whatever writes it
(services, bulk loaders, SQL); a rolled-back write rolls its counts back with it. Nothing
in Python writes them except `incident_rollups_rebuild`, for loaders that switch triggers
off (session_replication_role = replica). Reads: `incident_counts_by_grid`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection, models, transaction

from geodata.models import Community, Grid, Street

# level -> (table, period column)
_TABLES = {
    "day": ("events_incident_day", "day"),
    "month": ("events_incident_month", "month"),
    "year": ("events_incident_year", "year"),
}


class _IncidentRollup(models.Model):
    # Derived data, keyed by the ids stored on cases (whose own foreign keys guard them): no
    # database constraint, so trigger writes queue no deferred checks, and no index but the
    # period-first unique key the reads use. Community and street are the case's own, for
    # scope filters, which go by them.
    DERIVED_BY_TRIGGERS = True  # geodata.demo.store.outside_references: not a reference to carry over
    grid = models.ForeignKey(
        Grid, verbose_name="网格", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    community = models.ForeignKey(
        Community,
        verbose_name="社区",
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    street = models.ForeignKey(
        Street, verbose_name="街道", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    # No CHECK (incidents >= 0): PostgreSQL checks the proposed row of INSERT ... ON CONFLICT
    # before the conflict, and the triggers add signed deltas in one such statement.
    incidents = models.IntegerField("案件数")

    class Meta:
        abstract = True


class IncidentDay(_IncidentRollup):
    """Incidents reported on one local day in one grid (rows only where some case ever counted)."""

    day = models.DateField("日期")

    class Meta:
        db_table = "events_incident_day"
        verbose_name = "网格日案件数"
        verbose_name_plural = "网格日案件数"
        constraints = [
            models.UniqueConstraint(fields=["day", "grid", "community", "street"], name="incident_day_key"),
        ]

    def __str__(self) -> str:
        return f"{self.day} 网格{self.grid_id}: {self.incidents}"


class IncidentMonth(_IncidentRollup):
    """Incidents reported in one local calendar month (month = its first day) in one grid."""

    month = models.DateField("月份（当月1日）")

    class Meta:
        db_table = "events_incident_month"
        verbose_name = "网格月案件数"
        verbose_name_plural = "网格月案件数"
        constraints = [
            models.UniqueConstraint(fields=["month", "grid", "community", "street"], name="incident_month_key"),
            models.CheckConstraint(name="incident_month_first_day", condition=models.Q(month__day=1)),
        ]

    def __str__(self) -> str:
        return f"{self.month} 网格{self.grid_id}: {self.incidents}"


class IncidentYear(_IncidentRollup):
    """Incidents reported in one local calendar year (year = 1 January) in one grid."""

    year = models.DateField("年份（1月1日）")

    class Meta:
        db_table = "events_incident_year"
        verbose_name = "网格年案件数"
        verbose_name_plural = "网格年案件数"
        constraints = [
            models.UniqueConstraint(fields=["year", "grid", "community", "street"], name="incident_year_key"),
            models.CheckConstraint(
                name="incident_year_first_day", condition=models.Q(year__month=1) & models.Q(year__day=1)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.year} 网格{self.grid_id}: {self.incidents}"


# --- upkeep -----------------------------------------------------------------------------------

_REBUILD = """
LOCK TABLE events_case IN SHARE MODE;
DELETE FROM events_incident_day;
DELETE FROM events_incident_month;
DELETE FROM events_incident_year;
INSERT INTO events_incident_day (day, grid_id, community_id, street_id, incidents)
SELECT events_incident_day_of(reported_at), grid_id, community_id, street_id, count(*)
FROM events_case WHERE events_incident_counts(state) GROUP BY 1, 2, 3, 4;
INSERT INTO events_incident_month (month, grid_id, community_id, street_id, incidents)
SELECT date_trunc('month', day::timestamp)::date, grid_id, community_id, street_id, sum(incidents)
FROM events_incident_day GROUP BY 1, 2, 3, 4;
INSERT INTO events_incident_year (year, grid_id, community_id, street_id, incidents)
SELECT date_trunc('year', month::timestamp)::date, grid_id, community_id, street_id, sum(incidents)
FROM events_incident_month GROUP BY 1, 2, 3, 4;
"""


def incident_rollups_rebuild() -> int:
    """Recount the three rollup tables from events_case, set-based; returns the day rows.

    Only for writers that ran with triggers off (session_replication_role = replica, as the
    bench generator does): every other write keeps the tables exact by itself. Case writes
    wait for the rebuild (SHARE lock on events_case); dashboard reads wait for its commit.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_REBUILD)
        cursor.execute("SELECT count(*) FROM events_incident_day")
        (rows,) = cursor.fetchone()
    return rows


# --- reads ------------------------------------------------------------------------------------

Piece = tuple[str, dt.date, dt.date, int]  # level, first period start, end (exclusive), sign


def _next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _nearest(day: dt.date, level: str) -> dt.date:
    """The start of a month (or year) nearest to `day`."""
    if level == "month":
        floor, ceiling = day.replace(day=1), _next_month(day.replace(day=1))
    else:
        floor, ceiling = day.replace(month=1, day=1), dt.date(day.year + 1, 1, 1)
    if day == floor:
        return day
    return floor if day - floor <= ceiling - day else ceiling


def _edges(level: str, start: dt.date, end: dt.date, inner_start: dt.date, inner_end: dt.date) -> list[Piece]:
    """[start, end) = [inner_start, inner_end) plus or minus the `level` periods at both edges."""
    pieces: list[Piece] = []
    if start < inner_start:
        pieces.append((level, start, inner_start, 1))
    elif inner_start < start:
        pieces.append((level, inner_start, start, -1))
    if inner_end < end:
        pieces.append((level, inner_end, end, 1))
    elif end < inner_end:
        pieces.append((level, end, inner_end, -1))
    return pieces


def period_pieces(*, first_day: dt.date, last_day: dt.date) -> list[Piece]:
    """The local days first_day..last_day as signed ranges of days, months and years.

    Each edge is rounded to the nearest month start (then year start) and corrected by the
    days (months) in between, added or subtracted: at most half a month of day rows and
    half a year of month rows per edge, whatever the length of the period.
    """
    end = last_day + dt.timedelta(days=1)
    month_start, month_end = _nearest(first_day, "month"), _nearest(end, "month")
    if month_start >= month_end:
        return [("day", first_day, end, 1)]
    pieces = _edges("day", first_day, end, month_start, month_end)
    year_start, year_end = _nearest(month_start, "year"), _nearest(month_end, "year")
    if year_start >= year_end:
        return [*pieces, ("month", month_start, month_end, 1)]
    return [*pieces, *_edges("month", month_start, month_end, year_start, year_end), ("year", year_start, year_end, 1)]


def incident_counts_by_grid(
    *,
    first_day: dt.date,
    last_day: dt.date,
    street_id: int | None = None,
    community_id: int | None = None,
    grid_ids: frozenset[int] | set[int] | None = None,
) -> dict[int, int]:
    """{grid id: incidents reported on the local days first_day..last_day}, grids with none left
    out, optionally only cases whose stored street / community / grid is the one given.

    The same numbers as counting events_case (state not voided or merged, reported_at in the
    period, grouped by the case's grid), read from at most five ranges of the rollup tables.
    """
    if first_day > last_day:
        return {}
    place: list[str] = []
    params: list[Any] = []
    for column, value in (("street_id", street_id), ("community_id", community_id)):
        if value is not None:
            place.append(f"{column} = %s")
            params.append(value)
    if grid_ids is not None:
        place.append("grid_id = ANY(%s)")
        params.append(sorted(grid_ids))
    parts: list[str] = []
    values: list[Any] = []
    for level, start, end, sign in period_pieces(first_day=first_day, last_day=last_day):
        table, column = _TABLES[level]
        condition = " AND ".join([f"{column} >= %s", f"{column} < %s", *place])
        parts.append(f"SELECT grid_id, {sign:d} * incidents AS n FROM {table} WHERE {condition}")  # noqa: S608
        values += [start, end, *params]
    sql = f"SELECT grid_id, sum(n) FROM ({' UNION ALL '.join(parts)}) pieces GROUP BY grid_id HAVING sum(n) <> 0"  # noqa: S608 (fixed table names and conditions only)
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        return {grid_id: int(n) for grid_id, n in cursor.fetchall()}
