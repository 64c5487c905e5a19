"""The eight measurements of issue 7, each next to a baseline measured in the same run.

Each function takes the run's Context and returns Rows (metric, value, baseline, ratio,
target, pass). Product code is called as the product calls it (selectors, services, the
importer, HTTP endpoints of the production server); baselines are the smallest honest
alternative: a no-database endpoint, the insert without the look-up, a raw COPY, the
spatial join at request time, the bare tile query, a B-tree look-up.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import math
import statistics
import tempfile
import time
import uuid
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from tqdm import tqdm

from bench import httpload


@dataclasses.dataclass
class Row:
    key: str
    metric: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    ratio: float | None = None
    ratio_label: str = ""
    target: str = ""
    passed: bool | None = None  # None: no target, reported for information
    note: str = ""


@dataclasses.dataclass
class Settings:
    """How hard to push; `quick()` is for the smoke test."""

    clients: int = 8
    duration: float = 15.0  # seconds of each closed-loop throughput run
    rate: float = 7.0  # reports/s of the latency run
    rate_duration: float = 30.0
    web_workers: int = 3
    repeat: int = 5
    lookups: int = 50_000
    knn_queries: int = 2_000
    radius_queries: int = 300
    orm_lookups: int = 1_000
    tile_passes: int = 5
    memory_rounds: int = 3
    assign_rows: int = 20_000

    @classmethod
    def quick(cls) -> Settings:
        return cls(
            clients=2,
            duration=1.5,
            rate=7.0,
            rate_duration=1.5,
            web_workers=1,
            repeat=1,
            lookups=500,
            knn_queries=20,
            radius_queries=10,
            orm_lookups=20,
            tile_passes=1,
            memory_rounds=1,
            assign_rows=200,
        )


@dataclasses.dataclass
class Context:
    scale: float
    anchor: dt.date
    counts: dict[str, int]
    settings: Settings
    database_url: str
    server_mode: str  # GRIDMGMT_MODE of the server: production for `make bench`
    static_root: Path | None
    work_dir: Path
    progress: bool = True
    seed: int = 20261122

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, x0, y0, dx, dy, community_id, street_id FROM bench_grid ORDER BY id")
            self.cells = np.array(cursor.fetchall(), dtype=float)
        from accounts.models import User

        self.admin = User.objects.get(username="bench_admin")

    @property
    def anchor_at(self) -> dt.datetime:
        return dt.datetime.combine(self.anchor, dt.time(), tzinfo=zoneinfo.ZoneInfo(settings.TIME_ZONE))

    @property
    def day(self) -> dt.date:
        """The last reporting day: grids are looked up as valid on it."""
        return self.anchor - dt.timedelta(days=1)

    def points(self, n: int, *, inner: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """n random points in random grids (in the part no jitter reaches when `inner`), and their grid rows."""
        rows = self.cells[self.rng.integers(0, len(self.cells), size=n)]
        low, width = (0.2, 0.6) if inner else (0.0, 1.0)
        x = rows[:, 1] + (low + width * self.rng.random(n)) * rows[:, 3]
        y = rows[:, 2] + (low + width * self.rng.random(n)) * rows[:, 4]
        return np.column_stack([x, y]), rows

    def server(self, *, workers: int, name: str) -> httpload.Server:
        env = httpload.server_env(
            database_url=self.database_url,
            mode=self.server_mode,
            static_root=self.static_root,
            # The per-user write limit guards against a runaway phone; the benchmark's eight
            # users send thousands of reports a minute on purpose. The throttle still runs
            # (and still costs its cache reads and writes).
            extra={"GRIDMGMT_THROTTLE_WRITE": "1000000/min"},
        )
        return httpload.Server(
            root=Path(settings.BASE_DIR), env=env, workers=workers, log_path=self.work_dir / f"gunicorn-{name}.log"
        )


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else math.nan


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def timed(function: Callable[[], Any], *, repeat: int, warmup: int = 1) -> tuple[list[float], Any]:
    result = None
    for _ in range(warmup):
        result = function()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return times, result


def _rows(sql: str, params: Any = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _execute(sql: str, params: Any = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _bar(total: int, desc: str, ctx: Context) -> tqdm:
    return tqdm(total=total, desc=desc, unit="q", disable=not ctx.progress, leave=False)


# --- 1. report ingest through the real HTTP API -----------------------------------------------------


def _report_plans(ctx: Context, clients: int, run: str) -> list[httpload.Plan]:
    from knox.models import AuthToken

    from accounts.models import User
    from events.models import Category

    workers = list(User.objects.filter(username__startswith="bench_worker_").order_by("id")[:clients])
    codes = tuple(c.code for c in Category.objects.filter(is_active=True).order_by("kind", "major_code", "minor_code"))
    plans = []
    for n in range(clients):
        worker = workers[n % len(workers)]
        _, token = AuthToken.objects.create(user=worker)
        xy, _ = ctx.points(2000)
        plans.append(
            httpload.Plan(
                kind="report",
                path="/api/v1/cases",
                token=token,
                key_prefix=f"bench-{run}-{n}",
                points=tuple(map(tuple, xy.round(6).tolist())),
                categories=codes,
            )
        )
    return plans


def ingest_cleanup() -> int:
    """Remove the cases the ingest runs reported, with their receipts, history and timer jobs."""
    with transaction.atomic(), connection.cursor() as cursor:
        superuser = bool(_rows("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")[0][0])
        if not superuser:
            return 0
        cursor.execute("SET LOCAL session_replication_role = replica")  # the history is append-only by trigger
        cursor.execute(
            "CREATE TEMP TABLE bench_reported ON COMMIT DROP AS SELECT id FROM events_case WHERE client_key LIKE %s",
            ["%:bench-%"],
        )
        cursor.execute("DELETE FROM patrol_api_casereceipt WHERE case_id IN (SELECT id FROM bench_reported)")
        cursor.execute("DELETE FROM events_casehistory WHERE case_id IN (SELECT id FROM bench_reported)")
        # Triggers are off in replica mode: take the removed cases out of the incident rollups here.
        cursor.execute(
            """SELECT events_incident_rollup_add(array_agg(d), array_agg(g), array_agg(c), array_agg(s), array_agg(n))
            FROM (SELECT events_incident_day_of(reported_at) d, grid_id g, community_id c, street_id s, -count(*)::int n
                  FROM events_case WHERE id IN (SELECT id FROM bench_reported) AND events_incident_counts(state)
                  GROUP BY 1, 2, 3, 4) removed HAVING count(*) > 0"""
        )
        cursor.execute("DELETE FROM events_case WHERE id IN (SELECT id FROM bench_reported)")
        removed = cursor.rowcount
        # Foreign-key actions are triggers too: in replica mode deleting jobs would leave their
        # procrastinate_events behind, and a backup of such a database does not restore.
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")
        cursor.execute("DELETE FROM procrastinate_jobs WHERE task_name LIKE %s", ["%case_timer_check%"])
        cursor.execute("DELETE FROM knox_authtoken")
    return removed


def measure_ingest(ctx: Context, server: httpload.Server) -> list[Row]:
    """Throughput of the no-database endpoints and of reports, interleaved in rounds so that a
    neighbour's load on this shared machine hits all three alike; the ratio is taken per round."""
    s = ctx.settings
    port = server.port
    rounds = 3 if s.duration >= 6 else 1
    window = s.duration / rounds
    run = uuid.uuid4().hex[:8]
    # warm every worker on every path (connections opened, code paths imported); own keys
    httpload.closed_loop(port, _report_plans(ctx, s.clients, run + "w"), duration=min(2.0, window), ok_status=201)
    results: dict[str, list[httpload.LoadResult]] = {"ping": [], "django_ping": [], "reports": []}
    for r in range(rounds):
        plans = {
            "ping": ([httpload.Plan(kind="get", path="/bench/ping")] * s.clients, 200),
            "django_ping": ([httpload.Plan(kind="get", path="/bench/django-ping")] * s.clients, 200),
            "reports": (_report_plans(ctx, s.clients, f"{run}r{r}"), 201),
        }
        for name, (client_plans, status) in plans.items():
            if ctx.progress:
                print(f"    ingest round {r + 1}/{rounds}: {name}, {s.clients} clients for {window:g} s", flush=True)
            results[name].append(httpload.closed_loop(port, client_plans, duration=window, ok_status=status))
    paced_plan = _report_plans(ctx, 1, run + "p")[0]
    if ctx.progress:
        print(f"    ingest: {s.rate:g} reports/s for {s.rate_duration:g} s (open loop)", flush=True)
    paced = httpload.fixed_rate(port, paced_plan, rate=s.rate, duration=s.rate_duration, ok_status=201)
    removed = ingest_cleanup()

    def rate(name: str) -> float:
        return median([result.throughput for result in results[name]])

    def latencies(name: str) -> list[float]:
        return [latency for result in results[name] for latency in result.latencies]

    ping_rps, django_rps, report_rps = rate("ping"), rate("django_ping"), rate("reports")
    ratios = [
        rep.throughput / pin.throughput
        for rep, pin in zip(results["reports"], results["ping"], strict=True)
        if pin.throughput
    ]
    django_ratios = [
        rep.throughput / dj.throughput
        for rep, dj in zip(results["reports"], results["django_ping"], strict=True)
        if dj.throughput
    ]
    ratio = median(ratios) if ratios else None
    report_errors: dict[int, int] = {}
    for result in results["reports"]:
        for status, count in result.errors.items():
            report_errors[status] = report_errors.get(status, 0) + count
    note = f"{s.clients} clients, {s.web_workers} gunicorn workers, {rounds} interleaved rounds of {window:g} s"
    note += f"; {removed} bench cases removed afterwards"
    if report_errors or paced.errors:
        note += f"; non-201 answers: {report_errors} (load), {paced.errors} (paced)"
    p95 = percentile(paced.latencies, 95)
    return [
        Row(
            "ingest.ping",
            "No-database endpoint (bench WSGI ping) throughput",
            round(ping_rps, 1),
            "req/s",
            note=f"p50 {_ms(percentile(latencies('ping'), 50))} ms with {s.clients} clients",
        ),
        Row(
            "ingest.django_ping",
            "Django middleware stack, no database",
            round(django_rps, 1),
            "req/s",
            baseline=round(ping_rps, 1),
            baseline_label="WSGI ping req/s",
            ratio=round(django_rps / ping_rps, 3) if ping_rps else None,
            note="what the framework alone costs, for reading the ratio below",
        ),
        Row(
            "ingest.reports",
            "Report ingest POST /api/v1/cases throughput",
            round(report_rps, 1),
            "req/s",
            baseline=round(ping_rps, 1),
            baseline_label="WSGI ping req/s",
            ratio=round(ratio, 3) if ratio is not None else None,
            target="≥ 0.50 of no-database",
            passed=ratio is not None and ratio >= 0.5 and not report_errors,
            note=f"vs the Django no-database view: {median(django_ratios):.3f}; p50"
            f" {_ms(percentile(latencies('reports'), 50))} ms, p95 {_ms(percentile(latencies('reports'), 95))} ms"
            f" under full load; {note}",
        ),
        Row(
            "ingest.p95_at_rate",
            f"Report latency p95 at {s.rate:g} reports/s",
            _ms(p95),
            "ms",
            target="< 50 ms",
            passed=bool(paced.latencies) and p95 < 0.050 and not paced.errors,
            note=f"p50 {_ms(percentile(paced.latencies, 50))} ms, p99 {_ms(percentile(paced.latencies, 99))} ms,"
            f" max {_ms(max(paced.latencies, default=math.nan))} ms over {paced.requests} reports (open loop,"
            " latency counted from the scheduled send time)",
        ),
    ]


# --- 2. grid assignment on insert -------------------------------------------------------------------

_CASE_INSERT = """
INSERT INTO events_case (number, category_id, source, reporter_name, reporter_phone_encrypted, reporter_phone_masked,
    external_id, location, grid_id, community_id, street_id, area_class, description, address, urgency, state,
    reported_at, step, rework_count, return_count, extension_count, urge_count)
SELECT 'E0101' || '20991231' || lpad(s.n::text, 9, '0'), s.category_id, 'grid_worker', '', '', '', '', s.location,
       {grid}, 'B', '基准测试', '', 'normal', 'reported', s.reported_at, '', 0, 0, 0, 0
FROM bench_new_case s {join}
"""


def measure_grid_assignment(ctx: Context) -> list[Row]:
    from geodata.services import _GRID_OF_POINT  # the statement the product uses to find a point's grid

    n = ctx.settings.assign_rows
    xy, rows = ctx.points(n)
    category = _rows("SELECT id FROM events_category WHERE is_active ORDER BY id LIMIT 1")[0][0]
    _execute("DROP TABLE IF EXISTS bench_new_case")
    _execute(
        """CREATE TEMP TABLE bench_new_case (n bigint, location geometry(Point, 4326), grid_id bigint,
           community_id bigint, street_id bigint, category_id bigint, reported_at timestamptz)"""
    )
    with connection.cursor() as cursor, cursor.copy("COPY bench_new_case FROM STDIN") as copy:
        for k in range(n):
            copy.write_row(
                (
                    k + 1,
                    f"SRID=4326;POINT({xy[k, 0]:.7f} {xy[k, 1]:.7f})",
                    int(rows[k, 0]),
                    int(rows[k, 5]),
                    int(rows[k, 6]),
                    category,
                    ctx.anchor_at - dt.timedelta(hours=1),
                )
            )
    plain = _CASE_INSERT.format(grid="s.grid_id, s.community_id, s.street_id", join="")
    lookup = (
        "CROSS JOIN LATERAL ({}) f JOIN geodata_grid g ON g.id = f.id JOIN geodata_community c ON c.id = g.community_id"
    )
    assigned = _CASE_INSERT.format(
        grid="g.id, g.community_id, c.street_id", join=lookup.format(_GRID_OF_POINT.format(point="s.location"))
    )

    def run(sql: str) -> float:
        with transaction.atomic():
            started = time.perf_counter()
            inserted = _execute(sql, {"day": ctx.day})
            elapsed = time.perf_counter() - started
            transaction.set_rollback(True)
        if inserted != n:
            raise RuntimeError(f"inserted {inserted} rows, expected {n}")
        return elapsed

    times: dict[str, list[float]] = {"plain": [], "assigned": []}
    run(plain)  # warm the caches
    for _ in range(max(3, ctx.settings.repeat)):
        times["plain"].append(run(plain))
        times["assigned"].append(run(assigned))
    _execute("DROP TABLE bench_new_case")
    if not connection.in_atomic_block:
        _execute("VACUUM events_case")  # the rolled-back rows
    plain_rate, assigned_rate = n / median(times["plain"]), n / median(times["assigned"])
    ratio = assigned_rate / plain_rate
    return [
        Row(
            "assign.insert",
            "Case insert with the grid found in the same statement",
            round(assigned_rate),
            "rows/s",
            baseline=round(plain_rate),
            baseline_label="same insert, grid given",
            ratio=round(ratio, 3),
            target="≥ 0.75",
            passed=ratio >= 0.75,
            note=f"{n} rows into events_case (all its indexes) per run, median of {len(times['plain'])}, rolled back",
        )
    ]


# --- 3. bulk import of households ---------------------------------------------------------------------


def measure_import(ctx: Context) -> list[Row]:
    from geodata import pii
    from geodata.importing.report import ImportMode
    from geodata.importing.services import layer_import

    n = max(200, round(400_000 * ctx.scale))
    buildings = _rows("SELECT code, id, grid_id FROM geodata_building ORDER BY id")
    types = ["常住", "户籍", "流动", "出租"]
    db_types = {"常住": "resident", "户籍": "registered", "流动": "floating", "出租": "rental"}
    rows = []
    for k in range(n):
        code, building_id, grid_id = buildings[k % len(buildings)]
        phone = f"138{k % 100_000_000:08d}"
        rows.append(
            (
                f"BI{k:09d}",
                code,
                building_id,
                grid_id,
                str(1 + k % 4),
                f"{1 + k % 30}{k % 6 + 1:02d}",
                types[k % 4],
                phone,
            )
        )
    with tempfile.TemporaryDirectory(prefix="gridmgmt-bench-") as folder:
        path = Path(folder) / "households.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["户编号", "楼栋编码", "单元", "房号", "户类型", "户主姓名", "户联系电话"])
            for code, building, _, _, unit, room, kind, phone in rows:
                writer.writerow([code, building, unit, room, kind, "测试户主", phone])
        # The raw COPY loads the same final rows; encryption is the importer's work, so the
        # baseline gets ready-made tokens (a pool: their size, not their content, matters).
        tokens = [pii.encrypt(f"138{k:08d}") for k in range(500)]
        final = [
            [
                code,
                building_id,
                unit,
                room,
                db_types[kind],
                "测试户主",
                tokens[k % 500],
                pii.mask_phone(phone),
                grid_id,
                False,
            ]
            for k, (code, _, building_id, grid_id, unit, room, kind, phone) in enumerate(rows)
        ]
        columns = (
            "code, building_id, unit, room, household_type, head_name, phone_encrypted, phone_masked, grid_id, is_demo"
        )

        def copy() -> float:
            with transaction.atomic():
                started = time.perf_counter()
                with connection.cursor() as cursor, cursor.copy(f"COPY geodata_household ({columns}) FROM STDIN") as c:
                    for row in final:
                        c.write_row(row)
                elapsed = time.perf_counter() - started
                transaction.set_rollback(True)
            return elapsed

        def importer() -> float:
            with transaction.atomic():
                started = time.perf_counter()
                report = layer_import(layer="population", path=path, mode=ImportMode.STRICT)
                elapsed = time.perf_counter() - started
                transaction.set_rollback(True)
            if not report.ok or report.rows_loaded != n:
                raise RuntimeError("import refused: " + "; ".join(report.lines()[:5]))
            return elapsed

        repeat = 1 if n > 100_000 else max(1, min(3, ctx.settings.repeat))
        copy_times = [copy() for _ in range(repeat + 1)][1:]  # the first warms the caches
        import_times = [importer() for _ in range(repeat)]
    if not connection.in_atomic_block:
        _execute("VACUUM geodata_household")
    copy_rate, import_rate = n / median(copy_times), n / median(import_times)
    ratio = import_rate / copy_rate
    return [
        Row(
            "import.households",
            f"Import of {n:,} households (layer_import, CSV, strict)",
            round(import_rate),
            "rows/s",
            baseline=round(copy_rate),
            baseline_label="raw COPY, same table",
            ratio=round(ratio, 3),
            target="≥ 0.30",
            passed=ratio >= 0.30,
            note=f"importer {median(import_times):.1f} s, COPY {median(copy_times):.2f} s, each rolled back",
        )
    ]


# --- 4. dashboard aggregates --------------------------------------------------------------------------

_SPATIAL_COUNT = """
SELECT g.id, count(c.id)
FROM geodata_grid g
LEFT JOIN events_case c ON ST_Covers(g.geom, c.location) AND {condition}
WHERE g.valid_from <= %(day)s AND (g.valid_to IS NULL OR g.valid_to > %(day)s)
GROUP BY g.id
"""


def measure_dashboard(ctx: Context) -> list[Row]:
    from events import workflow
    from maps.selectors import NOT_INCIDENTS, CaseFilter, _per_km2, classify, grid_layer_values

    start = ctx.anchor - dt.timedelta(days=round(365.25 * 5))
    periods = {
        "open": ("open_cases", CaseFilter(first_day=ctx.anchor - dt.timedelta(days=30), last_day=ctx.day)),
        "30d": ("incident_density", CaseFilter(first_day=ctx.anchor - dt.timedelta(days=30), last_day=ctx.day)),
        "5y": ("incident_density", CaseFilter(first_day=start, last_day=ctx.day)),
    }
    areas = dict(_rows("SELECT id, area_m2 FROM geodata_grid"))
    result = []
    for name, (layer, case_filter) in periods.items():
        if ctx.progress:
            print(f"    dashboard: {layer} {name}", flush=True)
        product_times, product = timed(
            lambda layer=layer, case_filter=case_filter: grid_layer_values(
                user=ctx.admin, layer=layer, case_filter=case_filter, day=ctx.day
            ),
            repeat=ctx.settings.repeat,
        )
        if layer == "open_cases":
            condition = "c.state = ANY(%(states)s)"
        else:
            condition = "c.reported_at >= %(start)s AND c.reported_at < %(end)s AND c.state <> ALL(%(states)s)"
        first, last = case_filter.bounds
        states = sorted(workflow.OPEN_STATES) if layer == "open_cases" else sorted(NOT_INCIDENTS)
        params = {"day": ctx.day, "start": first, "end": last, "states": [str(s) for s in states]}

        def spatial(condition: str = condition, params: dict = params, layer: str = layer) -> dict[str, Any]:
            counted = dict(_rows(_SPATIAL_COUNT.format(condition=condition), params))
            if layer == "open_cases":
                values = {gid: float(n) for gid, n in counted.items()}
            else:
                values = {gid: _per_km2(n, areas[gid]) for gid, n in counted.items()}
            return {"values": {str(g): v for g, v in values.items()}, "classes": classify(values)}

        spatial_times, baseline = timed(spatial, repeat=max(1, min(3, ctx.settings.repeat)), warmup=0)
        same = baseline["values"] == product["values"] and baseline["classes"] == product["classes"]
        speedup = median(spatial_times) / median(product_times)
        value_ms = _ms(median(product_times))
        label = {
            "open": "open cases (不限时段)",
            "30d": "incident density, last 30 days",
            "5y": "incident density, 5 years",
        }
        result.append(
            Row(
                f"dashboard.{name}",
                f"Dashboard layer per grid: {label[name]}",
                value_ms,
                "ms",
                baseline=_ms(median(spatial_times)),
                baseline_label="spatial join at request time, ms",
                ratio=round(speedup, 1),
                ratio_label="× faster",
                target="≥ 20× faster and < 250 ms",
                passed=speedup >= 20 and value_ms < 250 and same,
                note=f"{len(product['values'])} grids; p95 {_ms(percentile(product_times, 95))} ms;"
                f" same answer as the spatial join: {'yes' if same else 'NO'}",
            )
        )
    return result


# --- 5. vector tiles --------------------------------------------------------------------------------

_TILE_SQL = """
WITH bounds AS (SELECT ST_TileEnvelope(%s, %s, %s) AS geom)
SELECT ST_AsMVT(t, 'grids', 4096, 'geom') FROM (
    SELECT g.id, g.code, ST_AsMVTGeom(g.geom_3857, b.geom, 4096, 64, true) AS geom
    FROM geodata_grid g, bounds b
    WHERE g.geom && ST_Transform(b.geom, 4326)
      AND g.valid_from <= %s AND (g.valid_to IS NULL OR g.valid_to > %s)
) t WHERE t.geom IS NOT NULL
"""


def tiles_at(zoom: int) -> list[tuple[int, int, int]]:
    """Every tile of `zoom` that touches the district."""
    west, south, east, north = _rows(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM geodata_district) s"
    )[0]

    def tile(lon: float, lat: float) -> tuple[int, int]:
        n = 2**zoom
        x = int((lon + 180) / 360 * n)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
        return x, y

    x0, y0 = tile(west, north)
    x1, y1 = tile(east, south)
    return [(zoom, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def session_cookie(user: Any) -> dict[str, str]:
    """A logged-in session for `user`, stored as the server stores sessions (the database)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}"}


def measure_tiles(ctx: Context, server: httpload.Server) -> list[Row]:
    """Every z14 tile of the district, bare in the database and through the endpoint, pass after pass."""
    tiles = tiles_at(14)
    headers = session_cookie(ctx.admin)
    paths = [f"/maps/tiles/grids/{z}/{x}/{y}.pbf" for z, x, y in tiles]

    def ok(response: httpload.Response) -> bool:
        return response.status == 200

    def bare_pass() -> tuple[list[float], list[int]]:
        times, sizes = [], []
        with connection.cursor() as cursor:
            for z, x, y in tiles:
                started = time.perf_counter()
                cursor.execute(_TILE_SQL, [z, x, y, ctx.day, ctx.day])
                tile = cursor.fetchone()[0]
                times.append(time.perf_counter() - started)
                sizes.append(len(bytes(tile or b"")))
        return times, sizes

    _, sizes = bare_pass()  # warm
    httpload.sequential(server.port, paths, headers=headers, check=ok)
    bare: list[float] = []
    over_http: list[float] = []
    pings: list[float] = []
    for _ in range(ctx.settings.tile_passes):
        bare += bare_pass()[0]
        over_http += httpload.sequential(server.port, paths, headers=headers, check=ok)
        pings += httpload.sequential(server.port, ["/bench/django-ping"] * 20, headers={}, check=ok)
    ratio = median(over_http) / median(bare)
    bare_p95 = percentile(bare, 95)
    return [
        Row(
            "tiles.http",
            "Grid choropleth tile z14 through /maps/tiles/ (p50)",
            _ms(median(over_http)),
            "ms",
            baseline=_ms(median(bare)),
            baseline_label="bare ST_AsMVT query p50, ms",
            ratio=round(ratio, 2),
            ratio_label="×",
            target="≤ 2×",
            passed=ratio <= 2,
            note=f"{len(tiles)} tiles × {ctx.settings.tile_passes} passes, one client; HTTP p95"
            f" {_ms(percentile(over_http, 95))} ms; the Django no-database view answers in"
            f" {_ms(median(pings))} ms (p50) over the same HTTP; mean tile {statistics.mean(sizes) / 1024:.1f} KiB",
        ),
        Row(
            "tiles.db_p95",
            "Grid tile z14 in the database, p95",
            _ms(bare_p95),
            "ms",
            target="≤ 5 ms",
            passed=bare_p95 <= 0.005,
            note=f"p50 {_ms(median(bare))} ms; round trip from the bench process on loopback",
        ),
    ]


# --- 6. spatial look-ups ----------------------------------------------------------------------------


def measure_lookups(ctx: Context) -> list[Row]:
    from django.contrib.gis.geos import Point

    from events.models import Case
    from events.selectors import count_cases_within
    from geodata.selectors import grid_for_point, within_metres
    from geodata.services import _GRID_OF_POINT

    s = ctx.settings
    xy, rows = ctx.points(s.lookups, inner=False)
    _execute("DROP TABLE IF EXISTS bench_lookup")
    _execute("CREATE TEMP TABLE bench_lookup (geom geometry(Point, 4326), grid_id bigint)")
    with connection.cursor() as cursor, cursor.copy("COPY bench_lookup FROM STDIN") as copy:
        for k in range(len(xy)):
            copy.write_row((f"SRID=4326;POINT({xy[k, 0]:.7f} {xy[k, 1]:.7f})", int(rows[k, 0])))
    _execute("ANALYZE bench_lookup")
    inside = _rows("SELECT count(*) FROM bench_lookup p JOIN geodata_district d ON ST_Covers(d.geom, p.geom)")[0][0]
    # Points anywhere in their cell: some near the district's jittered border fall outside it.
    spatial_sql = (
        "SELECT count(f.id) FROM bench_lookup p LEFT JOIN LATERAL ("  # noqa: S608 (the product's fixed SQL)
        + _GRID_OF_POINT.format(point="p.geom")
        + ") f ON true"
    )
    btree_sql = """
        SELECT count(f.id) FROM bench_lookup p LEFT JOIN LATERAL (
            SELECT g.id FROM geodata_grid g WHERE g.id = p.grid_id
              AND g.valid_from <= %(day)s AND (g.valid_to IS NULL OR g.valid_to > %(day)s) LIMIT 1) f ON true
    """

    def one_core(sql: str) -> float:
        with transaction.atomic():
            _execute("SET LOCAL max_parallel_workers_per_gather = 0")
            started = time.perf_counter()
            found = _rows(sql, {"day": ctx.day})[0][0]
            elapsed = time.perf_counter() - started
        if found != (inside if "ST_Covers" in sql else len(xy)):
            raise RuntimeError(f"{found} of {len(xy)} points found a grid ({inside} are in the district)")
        return elapsed

    one_core(spatial_sql)
    spatial_rate = len(xy) / median([one_core(spatial_sql) for _ in range(3)])
    btree_rate = len(xy) / median([one_core(btree_sql) for _ in range(3)])
    _execute("DROP TABLE bench_lookup")

    # The product's per-report call, through the ORM.
    points = [Point(float(x), float(y), srid=4326) for x, y in ctx.points(s.orm_lookups)[0]]
    orm: list[float] = []
    grid_for_point(point=points[0], day=ctx.day)
    for point in points:
        started = time.perf_counter()
        grid_for_point(point=point, day=ctx.day)
        orm.append(time.perf_counter() - started)

    # Nearest 5 facilities (GiST KNN) against the 5 facilities of the point's grid (B-tree).
    knn_xy, knn_rows = ctx.points(s.knn_queries)
    knn, btree = [], []
    with connection.cursor() as cursor:
        for k in range(len(knn_xy)):
            x, y = float(knn_xy[k, 0]), float(knn_xy[k, 1])
            started = time.perf_counter()
            cursor.execute(
                "SELECT id FROM geodata_facility ORDER BY location <-> ST_SetSRID(ST_MakePoint(%s, %s), 4326) LIMIT 5",
                [x, y],
            )
            cursor.fetchall()
            knn.append(time.perf_counter() - started)
            started = time.perf_counter()
            cursor.execute("SELECT id FROM geodata_facility WHERE grid_id = %s LIMIT 5", [int(knn_rows[k, 0])])
            cursor.fetchall()
            btree.append(time.perf_counter() - started)
    knn, btree = knn[5:] or knn, btree[5:] or btree  # the first ones are prepared

    # Cases within 500 m, counted by the product's selector for that question (the cell
    # index; events.selectors.count_cases_within), the same answer as
    # within_metres(Case.objects.all(), ...).count(), which is checked on the first points.
    radius, prefilter = [], []
    found, asked = [], []
    for x, y in ctx.points(s.radius_queries)[0]:
        point = Point(float(x), float(y), srid=4326)
        asked.append(point)
        started = time.perf_counter()
        found.append(count_cases_within(point=point, metres=500))
        radius.append(time.perf_counter() - started)
        degrees = 500 / (111_000.0 * max(math.cos(math.radians(abs(y) + 1.0)), 0.01))
        started = time.perf_counter()
        Case.objects.filter(location__dwithin=(point, degrees)).count()
        prefilter.append(time.perf_counter() - started)

    for point, count in list(zip(asked, found, strict=True))[:5]:
        if count != within_metres(Case.objects.all(), field="location", geometry=point, metres=500).count():
            raise RuntimeError(f"count_cases_within disagrees with within_metres at {point.wkt}")

    knn_p95, radius_p95 = percentile(knn, 95), percentile(radius, 95)
    return [
        Row(
            "lookup.point_grid",
            "Point → grid (ST_Covers, GiST), one core",
            round(spatial_rate),
            "lookups/s",
            baseline=round(btree_rate),
            baseline_label="grid by id (B-tree), lookups/s",
            ratio=round(spatial_rate / btree_rate, 3),
            target="≥ 30 000/s per core",
            passed=spatial_rate >= 30_000,
            note=f"{len(xy):,} points in one statement, parallel workers off (the product's SQL, geodata.services)",
        ),
        Row(
            "lookup.grid_for_point",
            "geodata.selectors.grid_for_point through the ORM, p50",
            _ms(median(orm)),
            "ms",
            note=f"{1 / median(orm):.0f} calls/s in one thread; p95 {_ms(percentile(orm, 95))} ms"
            " (the API's per-report call)",
        ),
        Row(
            "lookup.nearest5",
            "Nearest 5 facilities (KNN <->), p95",
            _ms(knn_p95),
            "ms",
            baseline=_ms(percentile(btree, 95)),
            baseline_label="5 facilities of a grid (B-tree) p95, ms",
            ratio=round(knn_p95 / percentile(btree, 95), 2),
            ratio_label="×",
            target="p95 ≤ 1 ms",
            passed=knn_p95 <= 0.001,
            note=f"{len(knn)} queries, round trip; p50 {_ms(median(knn))} ms",
        ),
        Row(
            "lookup.within500",
            "Cases within 500 m (count_cases_within), p95",
            _ms(radius_p95),
            "ms",
            baseline=_ms(percentile(prefilter, 95)),
            baseline_label="index pre-filter alone p95, ms",
            ratio=round(radius_p95 / percentile(prefilter, 95), 2),
            ratio_label="×",
            target="≤ 20 ms",
            passed=radius_p95 <= 0.020,
            note=f"{len(radius)} queries; p50 {_ms(median(radius))} ms;"
            f" {median(found):.0f} cases within 500 m (median)",
        ),
    ]


# --- 7. indicators ------------------------------------------------------------------------------


def measure_indicators(ctx: Context) -> list[Row]:
    from events.indicators import all_tables, period_bounds, region_indicators

    as_of = ctx.anchor_at
    month = period_bounds(first_day=ctx.anchor - dt.timedelta(days=30), last_day=ctx.day)
    year = period_bounds(first_day=ctx.anchor - dt.timedelta(days=365), last_day=ctx.day)
    repeat = max(1, min(3, ctx.settings.repeat))
    rows = []
    measured = {}
    for name, (start, end) in (("month", month), ("year", year)):
        if ctx.progress:
            print(f"    indicators: streets over a {name}", flush=True)
        times, table = timed(
            lambda start=start, end=end: region_indicators(start=start, end=end, level="street", as_of=as_of),
            repeat=repeat,
        )
        measured[name] = (median(times), table)
    if ctx.progress:
        print("    indicators: every table over a year", flush=True)
    all_times, _ = timed(lambda: all_tables(start=year[0], end=year[1], as_of=as_of), repeat=1, warmup=0)
    month_s, month_table = measured["month"]
    year_s, year_table = measured["year"]
    rows.append(
        Row(
            "indicators.month",
            "Indicators by street, one month (region_indicators)",
            _ms(month_s),
            "ms",
            note=f"{len(month_table)} streets; {sum(r['due'] for r in month_table):,} cases due",
        )
    )
    rows.append(
        Row(
            "indicators.year",
            "Indicators by street, one year (region_indicators)",
            _ms(year_s),
            "ms",
            baseline=_ms(month_s),
            baseline_label="one month, ms",
            ratio=round(year_s / month_s, 1) if month_s else None,
            ratio_label="× the month",
            target="< 1 s",
            passed=year_s < 1.0,
            note=f"{sum(r['due'] for r in year_table):,} cases due; every table of the 综合评价 page (7 tables)"
            f" over the year: {all_times[0]:.1f} s",
        )
    )
    return rows


# --- 8. memory of one web worker ------------------------------------------------------------------------


def measure_memory(ctx: Context) -> list[Row]:
    from django.db.models import Max

    from events.models import Case

    server = ctx.server(workers=1, name="memory")
    with server:
        (pid,) = server.worker_pids()
        # Started, the worker has imported Django and the product's URLconf (every view module
        # and what it imports: see Server._warm); the baseline is that worker at rest.
        idle = httpload.memory_kib(pid)["VmRSS"]
        cold = server.cold_rss_kib.get(pid, 0)
        headers = session_cookie(ctx.admin)
        first = (ctx.anchor - dt.timedelta(days=30)).isoformat()
        five_years = (ctx.anchor - dt.timedelta(days=round(365.25 * 5))).isoformat()
        last = ctx.day.isoformat()
        since = (Case.objects.aggregate(m=Max("reported_at"))["m"] - dt.timedelta(minutes=5)).isoformat()
        grid_ids = [int(g) for g in ctx.cells[:: max(1, len(ctx.cells) // 5), 0][:5]]
        paths = ["/maps/", f"/maps/api/extent/?first_day={first}&last_day={last}"]
        for layer in (
            "population",
            "population_density",
            "households",
            "open_cases",
            "incident_density",
            "incident_rate",
        ):
            for period in (first, five_years):
                paths.append(f"/maps/api/layer/?layer={layer}&first_day={period}&last_day={last}")
        paths += [
            f"/maps/api/cases/?first_day={first}&last_day={last}",
            f"/maps/api/cases/?first_day={first}&last_day={last}&state=all",
            f"/maps/api/cases/?first_day={five_years}&last_day={last}&state=closed",
            f"/maps/api/cases/overdue/?first_day={first}&last_day={last}",
            f"/maps/api/cases/changes/?first_day={first}&last_day={last}&since={since.replace('+', '%2B')}",
            *(f"/maps/api/grids/{gid}/" for gid in grid_ids),
            *(f"/maps/tiles/grids/{z}/{x}/{y}.pbf" for z, x, y in tiles_at(13)),
        ]

        def ok(response: httpload.Response) -> bool:
            return response.status == 200

        samples = []
        growth: dict[str, int] = {}
        for _ in tqdm(
            range(ctx.settings.memory_rounds), desc="dashboard rounds", disable=not ctx.progress, leave=False
        ):
            for path in paths:
                before = httpload.memory_kib(pid)["VmHWM"]
                httpload.sequential(server.port, [path], headers=headers, check=ok)
                grown = httpload.memory_kib(pid)["VmHWM"] - before
                if grown > 0:
                    label = path[:70]
                    growth[label] = growth.get(label, 0) + grown
            samples.append(httpload.memory_kib(pid)["VmRSS"])
        peak = httpload.memory_kib(pid)["VmHWM"]
    biggest = sorted(growth.items(), key=lambda item: -item[1])[:3]
    peak_mb, idle_mb = peak / 1024, idle / 1024
    return [
        Row(
            "memory.dashboard",
            "Peak RSS of one web worker serving the dashboard",
            round(peak_mb, 1),
            "MB",
            baseline=round(idle_mb, 1),
            baseline_label="same worker at rest, URLconf loaded, MB",
            ratio=round(peak_mb / idle_mb, 2),
            ratio_label="×",
            target="< 250 MB",
            passed=peak_mb < 250,
            note=f"{cold / 1024:.0f} MB with Django set up, {idle / 1024:.0f} MB once the product's URLconf (every"
            " view module and what it imports) is loaded; "
            f"{len(paths)} requests × {ctx.settings.memory_rounds} rounds (page, every layer for 30 days and"
            f" 5 years, markers, overdue, changes, grid panels, z13 tiles); RSS after each round:"
            f" {', '.join(f'{v / 1024:.0f}' for v in samples)} MB; peak raised most by: "
            + "; ".join(f"{path} +{kib / 1024:.0f} MB" for path, kib in biggest),
        )
    ]


METRICS = ["ingest", "assign", "import", "dashboard", "tiles", "lookups", "indicators", "memory"]


def run(ctx: Context, only: list[str] | None = None) -> list[Row]:
    """Every measurement in `only` (default all), in METRICS order; ingest and tiles share one server."""
    wanted = [m for m in METRICS if not only or m in only]
    results: dict[str, list[Row]] = {}
    local = {
        "assign": measure_grid_assignment,
        "import": measure_import,
        "dashboard": measure_dashboard,
        "lookups": measure_lookups,
        "indicators": measure_indicators,
        "memory": measure_memory,
    }
    served = {"ingest": measure_ingest, "tiles": measure_tiles}
    if any(name in served for name in wanted):
        with ctx.server(workers=ctx.settings.web_workers, name="web") as server:
            for name in (m for m in wanted if m in served):
                if ctx.progress:
                    print(f"==> {name}", flush=True)
                results[name] = served[name](ctx, server)
    for name in (m for m in wanted if m in local):
        if ctx.progress:
            print(f"==> {name}", flush=True)
        results[name] = local[name](ctx)
    return [row for name in wanted for row in results[name]]
