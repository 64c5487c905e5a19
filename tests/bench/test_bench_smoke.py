"""A tiny run of the district benchmark (bench/), so that `make bench` cannot rot unnoticed.

Not a timing test: nothing here asserts a speed. It checks that the generator makes a
consistent district and that every measurement runs end to end and reports its rows.
"""

import datetime as dt
import json
import math
from urllib.parse import quote

import pytest
from django.db import connection

from bench import generate, metrics, report

ANCHOR = dt.date(2026, 11, 22)
SCALE = 0.001  # 5 grids, 3 600 cases, ≈ 30 000 history rows


def _one(sql: str):
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_generated_district_is_consistent():
    # given an empty register, when the district is generated at a tiny scale
    result = generate.generate(scale=SCALE, anchor=ANCHOR, progress=False)

    # then it has the counts of DESIGN.md §6 scaled down, and its history
    counts = generate.counts_at(SCALE)
    assert result.counts["cases"] == counts["cases"] == _one("SELECT count(*) FROM events_case")
    assert _one("SELECT count(*) FROM geodata_grid") == counts["grids"]
    assert _one("SELECT count(*) FROM geodata_person") == counts["persons"]
    assert 7 * counts["cases"] < result.counts["history"] == _one("SELECT count(*) FROM events_casehistory")
    # every case lies in the grid stored on it, and the grid's community and street are stored too
    assert (
        _one(
            """SELECT count(*) FROM events_case c JOIN geodata_grid g ON g.id = c.grid_id
           JOIN geodata_community m ON m.id = g.community_id
           WHERE NOT ST_Covers(g.geom, c.location) OR c.community_id <> m.id OR c.street_id <> m.street_id"""
        )
        == 0
    )
    # the grids tile the district: no overlap, and their union is the district
    assert (
        _one("SELECT count(*) FROM geodata_grid a JOIN geodata_grid b ON a.id < b.id AND ST_Overlaps(a.geom, b.geom)")
        == 0
    )
    assert _one(
        "SELECT abs(ST_Area(d.geom) - (SELECT sum(ST_Area(geom)) FROM geodata_grid)) < 1e-12 FROM geodata_district d"
    )
    # each case's history follows the workflow's table from its first report to its stored state
    assert (
        _one(
            """SELECT count(*) FROM events_case c WHERE c.state <> (
               SELECT h.to_state FROM events_casehistory h WHERE h.case_id = c.id ORDER BY h.created_at DESC, h.id DESC
               LIMIT 1)"""
        )
        == 0
    )
    assert (
        _one(
            """SELECT count(*) FROM events_casehistory h WHERE h.from_state = 'new'
           AND h.action NOT IN ('report', 'register', 'self_handle')"""
        )
        == 0
    )
    assert (
        _one("SELECT count(*) FROM events_casehistory h LEFT JOIN events_case c ON c.id = h.case_id WHERE c.id IS NULL")
        == 0
    )
    # history rows carry their case's place, and absorbing cases the source of their earliest
    # report, as events.services writes them (events.indicators reads these columns)
    assert (
        _one(
            """SELECT count(*) FROM events_casehistory h JOIN events_case c ON c.id = h.case_id
           WHERE (h.street_id, h.community_id, h.grid_id) <> (c.street_id, c.community_id, c.grid_id)"""
        )
        == 0
    )
    assert _one("SELECT count(*) FROM events_case WHERE first_source IS NOT NULL") == _one(
        "SELECT count(DISTINCT merged_into_id) FROM events_case"
    )
    assert (
        _one(
            """SELECT count(*) FROM events_case t WHERE t.first_source IS DISTINCT FROM (
               SELECT c.source FROM events_case c WHERE c.id = t.id OR c.merged_into_id = t.id
               ORDER BY c.reported_at, c.id LIMIT 1) AND t.id IN (SELECT merged_into_id FROM events_case)"""
        )
        == 0
    )
    # open cases with a running step have a deadline; nothing is reported after the anchor
    assert (
        _one(
            """SELECT count(*) FROM events_case WHERE state IN ('verifying', 'reported', 'filed', 'dispatched',
           'extension_pending', 'handled', 'checked') AND (deadline IS NULL OR step = '')"""
        )
        == 0
    )
    assert _one("SELECT max(reported_at) < '2026-11-22 00:00+08' FROM events_case")
    # every grid has the cells strictly inside it (loaded with triggers off, then refreshed)
    assert _one("SELECT count(DISTINCT grid_id) FROM geodata_gridcell") == _one("SELECT count(*) FROM geodata_grid") > 0
    # the incident rollups (loaded with triggers off, then rebuilt) count every incident per grid and local day
    assert result.counts["incident_day_rows"] > 0
    assert (
        _one(
            """SELECT count(*) FROM (
                 SELECT (reported_at AT TIME ZONE 'Asia/Shanghai')::date, grid_id, community_id, street_id, count(*)
                 FROM events_case WHERE state NOT IN ('voided', 'merged') GROUP BY 1, 2, 3, 4
                 EXCEPT SELECT day, grid_id, community_id, street_id, incidents FROM events_incident_day
               ) missing"""
        )
        == 0
    )
    assert _one("SELECT sum(incidents) FROM events_incident_year") == _one(
        "SELECT count(*) FROM events_case WHERE state NOT IN ('voided', 'merged')"
    )
    # and the identity sequences continue after the generated ids
    assert _one("SELECT nextval(pg_get_serial_sequence('events_case', 'id'))") > counts["cases"]


def test_django_ping_touches_no_database(client, settings):
    # given the bench's own URLconf (bench.wsgi resolves /bench/django-ping with it), and no
    # database access allowed in this test (any query would raise)
    settings.ROOT_URLCONF = "bench.urls"
    # when the no-database Django endpoint is called through the whole middleware stack
    response = client.get("/bench/django-ping")
    # then it answers
    assert response.status_code == 200
    assert response.content == b"pong"


def _database_url() -> str:
    db = connection.settings_dict
    user, password = quote(db["USER"], safe=""), quote(db["PASSWORD"] or "", safe="")
    return f"postgis://{user}:{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_every_measurement_runs_at_a_tiny_scale(tmp_path):
    # given a generated district in the test database
    result = generate.generate(scale=SCALE, anchor=ANCHOR, progress=False)
    ctx = metrics.Context(
        scale=SCALE,
        anchor=ANCHOR,
        counts=result.counts,
        settings=metrics.Settings.quick(),
        database_url=_database_url(),
        server_mode="test",  # production mode needs collected static files and the cache table
        static_root=None,
        work_dir=tmp_path,
        progress=False,
    )

    # when every measurement runs (the HTTP ones against gunicorn on loopback)
    rows = metrics.run(ctx)

    # then each reports its rows with numbers, and the ingest left no case behind
    assert [row.key for row in rows] == [
        "ingest.ping",
        "ingest.django_ping",
        "ingest.reports",
        "ingest.p95_at_rate",
        "assign.insert",
        "import.households",
        "dashboard.open",
        "dashboard.30d",
        "dashboard.5y",
        "tiles.http",
        "tiles.db_p95",
        "lookup.point_grid",
        "lookup.grid_for_point",
        "lookup.nearest5",
        "lookup.within500",
        "indicators.month",
        "indicators.year",
        "memory.dashboard",
    ]
    for row in rows:
        assert row.value is not None and math.isfinite(row.value) and row.value > 0, row
        assert (row.passed is None) == (row.target == ""), row
    assert "non-201" not in next(r for r in rows if r.key == "ingest.reports").note
    assert all("same answer as the spatial join: yes" in r.note for r in rows if r.key.startswith("dashboard."))
    assert _one("SELECT count(*) FROM events_case") == result.counts["cases"]
    assert _one("SELECT count(*) FROM geodata_household") == result.counts["households"]
    # and the table and the JSON record carry every row
    path = tmp_path / "results.json"
    report.write_json(path, run={"scale": SCALE}, generation={"counts": result.counts}, rows=rows)
    assert [m["key"] for m in json.loads(path.read_text(encoding="utf-8"))["metrics"]] == [r.key for r in rows]
    assert report.table(rows).count("\n") > len(rows)
