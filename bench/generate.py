"""A synthetic district at design scale (DESIGN.md §6), generated deterministically with set-based SQL.

At --scale 1: 5 000 grids, 30 000 buildings, 400 000 households, 1 000 000 persons,
100 000 facilities, 3.6 M cases over 5 years with their history (≈ 30 M rows), and the
last GPS_DAYS days of GPS points of 300 grid workers (one point every 30 s, 8 hours a day).
Every count scales linearly with --scale.

How it is made, and why it is fast:

- Grids are a lattice of 200 m cells with jittered corners and jittered intermediate edge
  points (about 30 vertices a grid), so that neighbours share their edges exactly and the
  union of the grids is the district. Communities are 7 x 7 blocks of grids, streets 4 x 4
  blocks of communities. Geometry is built with shapely, loaded with COPY.
- Everything else is INSERT ... SELECT over generate_series in PostgreSQL. Every random
  choice is a hash of the row number and a salt (`bench_rnd`), so the data depend only on
  the seed, the scale and the anchor day, never on the plan or on parallel workers. Points
  are placed in the middle 60 % of their grid's cell, which no jitter reaches: the stored
  grid of every point is the grid that contains it.
- A case follows one of a few hundred paths through the real transition table
  (events.workflow.transition_for decides every state, milestone and timer); a case
  reported less than its processing time before the anchor stops part-way, so recent
  cases are open at every step. History rows are the case's path, timestamped, with the
  actor of each role.
- Secondary indexes of the big tables are dropped during the load and rebuilt after it,
  and foreign-key triggers are off (session_replication_role = replica, when allowed):
  the rows are consistent by construction. The incident rollups, whose triggers are off
  with the rest, are rebuilt set-based after the cases (events.rollups.incident_rollups_rebuild).
  VACUUM ANALYZE at the end, as autovacuum would.

Personal data: ID numbers and phones are stored as real Fernet tokens of the configured
key, drawn from a pool of a few hundred (encrypting 2 M values would dominate the time);
look-up hashes are unique per person. Nothing here is a real person.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import math
import time
import zoneinfo
from collections.abc import Iterator
from typing import Any

import numpy as np
import shapely
from django.conf import settings
from django.db import connection
from tqdm import tqdm

BASE_COUNTS = {
    "grids": 5_000,
    "buildings": 30_000,
    "households": 400_000,
    "persons": 1_000_000,
    "facilities": 100_000,
    "cases": 3_600_000,
    "workers": 300,
}
MINIMUM_COUNTS = {
    "grids": 4,
    "buildings": 8,
    "households": 20,
    "persons": 40,
    "facilities": 10,
    "cases": 300,
    "workers": 2,
}
YEARS = 5
GPS_DAYS = 5
GPS_INTERVAL_S = 30
GPS_HOURS = 8
COUNTY = "500104"
ORIGIN = (106.39, 29.34)  # south-west corner, in 大渡口区
CELL_M = 200.0
COMMUNITY_BLOCK = 7  # grids per community side
STREET_BLOCK = 4  # communities per street side
EDGE_POINTS = 7  # intermediate vertices per grid edge
CORNER_JITTER = 0.12  # of a cell
EDGE_JITTER = 0.04
INNER = (0.2, 0.8)  # points are placed in this part of their cell: no jitter reaches it
CASE_CHUNK = 200_000
HISTORY_CHUNK = 100_000  # cases per history statement (≈ 830 000 rows)
ROW_CHUNK = 250_000

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈")
GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建文辉力鹏宇浩凯欣怡佳")
DESCRIPTIONS = [
    "现场发现问题，请尽快处理",
    "居民反映多日未处理",
    "巡查发现，影响通行",
    "存在安全隐患，需尽快处置",
    "影响市容环境",
    "夜间巡查发现",
]
COMMENTS = ["情况属实", "请按时处置", "已联系责任单位", "非本部门职责", "需协调多部门", "材料不全"]


def counts_at(scale: float) -> dict[str, int]:
    return {name: max(MINIMUM_COUNTS[name], round(base * scale)) for name, base in BASE_COUNTS.items()}


# --- the grid lattice -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Lattice:
    cols: int
    rows: int
    grids: int
    dx: float  # degrees of longitude per cell
    dy: float

    @classmethod
    def for_grids(cls, grids: int) -> Lattice:
        cols = math.ceil(math.sqrt(grids))
        rows = math.ceil(grids / cols)
        lat = math.radians(ORIGIN[1] + rows * CELL_M / 110_574 / 2)
        return cls(cols=cols, rows=rows, grids=grids, dx=CELL_M / (111_320 * math.cos(lat)), dy=CELL_M / 110_574)

    def cell(self, index: int) -> tuple[int, int]:
        """(col, row) of grid index 0..grids-1; row 0 is the southern row."""
        return index % self.cols, index // self.cols

    def origin(self, col: int, row: int) -> tuple[float, float]:
        return ORIGIN[0] + col * self.dx, ORIGIN[1] + row * self.dy

    def community_block(self, col: int, row: int) -> tuple[int, int]:
        return col // COMMUNITY_BLOCK, row // COMMUNITY_BLOCK

    def polygons(self, seed: int) -> list[shapely.Polygon]:
        """Every grid's polygon, in grid index order; neighbours share vertices exactly."""
        rng = np.random.default_rng(seed)
        corners = rng.uniform(-CORNER_JITTER, CORNER_JITTER, size=(self.cols + 1, self.rows + 1, 2))
        along = np.arange(1, EDGE_POINTS + 1) / (EDGE_POINTS + 1)
        # offsets perpendicular to each edge: horizontal edges (i, j)->(i+1, j), vertical (i, j)->(i, j+1)
        h_offsets = rng.uniform(-EDGE_JITTER, EDGE_JITTER, size=(self.cols, self.rows + 1, EDGE_POINTS))
        v_offsets = rng.uniform(-EDGE_JITTER, EDGE_JITTER, size=(self.cols + 1, self.rows, EDGE_POINTS))

        def corner(i: int, j: int) -> np.ndarray:
            return np.array([i + corners[i, j, 0], j + corners[i, j, 1]])

        def h_edge(i: int, j: int) -> np.ndarray:  # west -> east
            a, b = corner(i, j), corner(i + 1, j)
            points = a + np.outer(along, b - a)
            points[:, 1] += h_offsets[i, j]
            return points

        def v_edge(i: int, j: int) -> np.ndarray:  # south -> north
            a, b = corner(i, j), corner(i, j + 1)
            points = a + np.outer(along, b - a)
            points[:, 0] += v_offsets[i, j]
            return points

        scale = np.array([self.dx, self.dy])
        polygons = []
        for index in range(self.grids):
            i, j = self.cell(index)
            ring = np.vstack(
                [
                    corner(i, j),
                    h_edge(i, j),
                    corner(i + 1, j),
                    v_edge(i + 1, j),
                    corner(i + 1, j + 1),
                    h_edge(i, j + 1)[::-1],
                    corner(i, j + 1),
                    v_edge(i, j)[::-1],
                ]
            )
            polygons.append(shapely.Polygon(ring * scale + np.array(ORIGIN)))
        return polygons


# --- case paths through the workflow ------------------------------------------------------------

# Share of a case's processing time spent before each action (normalised per path).
_ACTION_WEIGHT = {
    "report": 0.0,
    "register": 0.0,
    "self_handle": 0.0,
    "verify": 0.06,
    "file": 0.04,
    "dispatch": 0.03,
    "return": 0.05,
    "request_extension": 0.1,
    "approve_extension": 0.02,
    "alert": 0.05,
    "urge": 0.05,
    "handle": 0.45,
    "check_fail": 0.08,
    "check_pass": 0.1,
    "close": 0.05,
    "void": 0.1,
    "merge": 0.1,
    "defer": 0.3,
}
# Who takes each action: a kind of actor resolved per case in SQL.
_ACTOR = {
    "report": "reporter",
    "register": "reporter",
    "self_handle": "worker",
    "verify": "worker",
    "check_pass": "worker",
    "check_fail": "worker",
    "file": "operator",
    "void": "operator",
    "merge": "operator",
    "dispatch": "dispatcher",
    "approve_extension": "dispatcher",
    "return": "handler",
    "request_extension": "handler",
    "handle": "handler",
    "alert": "system",
    "urge": "leader",
    "defer": "leader",
    "close": "shift_leader",
}
_NEEDS_COMMENT = {"void", "return", "request_extension", "check_fail", "urge", "defer"}
OUTCOMES = ["closed", "voided", "merged", "self_handled", "deferred", "stuck"]
# Wall-clock stand-ins for the working-time limits of each step (hours).
STEP_LIMIT_HOURS = {"verify": 2, "file": 1, "dispatch": 1, "handle": 24, "check": 2, "close": 1}
MILESTONES = (
    "reported_at",
    "verified_at",
    "filed_at",
    "dispatched_at",
    "handled_at",
    "checked_at",
    "closed_at",
    "voided_at",
    "merged_at",
    "deferred_at",
)


def variant_number(*, hotline: int, ret: int, ext: int, urge: int, alerts: int, rework: int, outcome: int) -> int:
    """Mixed-radix number of a path; the same formula is written in SQL in _CASE_PLAN."""
    return hotline + 2 * (ret + 2 * (ext + 2 * (urge + 2 * (alerts + 4 * (rework + 2 * outcome)))))


def variant_actions(
    *, hotline: int, ret: int, ext: int, urge: int, alerts: int, rework: int, outcome: int
) -> list[str]:
    kind = OUTCOMES[outcome]
    if kind == "self_handled":
        return ["self_handle"]
    start = ["register", "verify"] if hotline else ["report"]
    if kind == "voided":
        return [*start, "void"]
    if kind == "merged":
        return [*start, "merge"]
    actions = [*start, "file", "dispatch"]
    if ret:
        actions += ["return", "dispatch"]
    if ext:
        actions += ["request_extension", "approve_extension"]
    actions += ["alert"] * alerts
    if urge:
        actions.append("urge")
    if kind == "deferred":
        return [*actions, "defer"]
    if kind == "stuck":
        return actions
    actions.append("handle")
    if rework:
        actions += ["check_fail", "handle"]
    return [*actions, "check_pass", "close"]


def case_paths() -> tuple[list[tuple], list[tuple]]:
    """(steps, prefixes) of every variant, checked against the workflow's transition table.

    steps: (variant, seq, action, from_state, to_state, frac, actor_kind, timed_before, needs_comment)
    prefixes: (variant, nsteps, state, step, step_frac, due_frac, <milestone fracs>, reworks,
               returns, extensions, urges, dispatched)
    """
    from events import workflow

    steps: list[tuple] = []
    prefixes: list[tuple] = []
    for outcome in range(len(OUTCOMES)):
        for rework in range(2):
            for alerts in range(4):
                for urge in range(2):
                    for ext in range(2):
                        for ret in range(2):
                            for hotline in range(2):
                                bits = {
                                    "hotline": hotline,
                                    "ret": ret,
                                    "ext": ext,
                                    "urge": urge,
                                    "alerts": alerts,
                                    "rework": rework,
                                    "outcome": outcome,
                                }
                                variant = variant_number(**bits)
                                actions = variant_actions(**bits)
                                _add_variant(workflow, variant, actions, steps, prefixes)
    return steps, prefixes


def _add_variant(workflow: Any, variant: int, actions: list[str], steps: list[tuple], prefixes: list[tuple]) -> None:
    weights = np.array([_ACTION_WEIGHT[a] for a in actions])
    total = weights.sum()
    fracs = np.cumsum(weights) / total if total else np.zeros(len(actions))
    state = workflow.State.NEW
    step, step_frac, due_frac = "", None, None
    milestones: dict[str, float] = {}
    counters = {"check_fail": 0, "return": 0, "approve_extension": 0, "urge": 0}
    dispatched = False
    for seq, (action, frac) in enumerate(zip(actions, fracs.tolist(), strict=True), start=1):
        transition = workflow.transition_for(state=state, action=action)
        timed_before = state in workflow.TIMED_STATES
        steps.append(
            (
                variant,
                seq,
                action,
                str(state),
                str(transition.target),
                frac,
                _ACTOR[action],
                timed_before,
                action in _NEEDS_COMMENT,
            )
        )
        state = transition.target
        for milestone in transition.milestones:
            milestones[milestone] = frac
        if isinstance(transition.timer, workflow.Step):
            step, step_frac = str(transition.timer), frac
            if transition.sets_due:
                due_frac = frac
        elif transition.timer is workflow.Timer.STOP:
            step, step_frac = "", None
        if action in counters:
            counters[action] += 1
        dispatched = dispatched or action == "dispatch"
        if state not in workflow.TIMED_STATES:
            running_step, running_frac = "", None
        else:
            running_step, running_frac = step, step_frac
        prefixes.append(
            (
                variant,
                seq,
                str(state),
                running_step,
                running_frac,
                due_frac,
                *(milestones.get(name) for name in MILESTONES),
                counters["check_fail"],
                counters["return"],
                counters["approve_extension"],
                counters["urge"],
                dispatched,
            )
        )


# --- SQL ------------------------------------------------------------------------------------------

_FUNCTIONS = """
CREATE OR REPLACE FUNCTION bench_rnd(i bigint, salt bigint) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT (hashint8extended(i, salt) & 2147483647)::double precision / 2147483648.0 $$;
"""

_BUILDINGS = """
INSERT INTO geodata_building (id, code, address, floors, use, footprint, location, grid_id, is_demo)
SELECT b, 'B' || lpad(b::text, 8, '0'),
       g.name || (1 + b %% 60) || '号', 1 + (bench_rnd(b, %(s)s + 1) * 32)::int,
       (ARRAY['residential','residential','residential','mixed','commercial','office','public'])[1 + b %% 7],
       ST_Multi(ST_Expand(p.pt, 0.00008)), p.pt, g.id, false
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) b
JOIN bench_grid g ON g.id = 1 + ((b - 1) * %(grids)s) / %(n)s
CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(
    g.x0 + (%(in0)s + %(inw)s * bench_rnd(b, %(s)s + 2)) * g.dx,
    g.y0 + (%(in0)s + %(inw)s * bench_rnd(b, %(s)s + 3)) * g.dy), 4326) AS pt) p
"""

_HOUSEHOLDS = """
INSERT INTO geodata_household (id, code, building_id, unit, room, household_type, head_name,
                               phone_encrypted, phone_masked, grid_id, is_demo)
SELECT h, 'H' || lpad(h::text, 10, '0'), b.id, (1 + h %% 4)::text,
       (1 + (h / 4) %% 30)::text || lpad((1 + h %% 6)::text, 2, '0'),
       (ARRAY['resident','resident','registered','registered','floating','rental'])
           [1 + (bench_rnd(h, %(s)s + 1) * 6)::int %% 6],
       (%(surnames)s::text[])[1 + h %% %(ns)s] || (%(given)s::text[])[1 + (h / 7) %% %(ng)s],
       (%(phones)s::text[])[1 + h %% %(np)s], '138****' || lpad((h %% 10000)::text, 4, '0'),
       b.grid_id, false
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) h
JOIN geodata_building b ON b.id = 1 + ((h - 1) * %(buildings)s) / %(n)s
"""

_PERSONS = """
INSERT INTO geodata_person (id, household_id, name, sex, birth_date, ethnicity, id_number_encrypted,
                            id_number_hash, id_number_masked, phone_encrypted, phone_masked, tags, is_demo)
SELECT p, 1 + ((p - 1) * %(households)s) / %(n)s,
       (%(surnames)s::text[])[1 + (p / 3) %% %(ns)s] || (%(given)s::text[])[1 + p %% %(ng)s]
           || (%(given)s::text[])[1 + (p / 11) %% %(ng)s],
       CASE WHEN p %% 2 = 0 THEN 'F' ELSE 'M' END,
       DATE '1930-01-01' + (bench_rnd(p, %(s)s + 1) * 33000)::int,
       CASE WHEN p %% 25 = 0 THEN '土家族' ELSE '汉族' END,
       (%(ids)s::text[])[1 + p %% %(ni)s],
       encode(sha256(('bench-person-' || p)::bytea), 'hex'),
       '5001**********' || lpad((p %% 10000)::text, 4, '0'),
       CASE WHEN p %% 3 = 0 THEN '' ELSE (%(phones)s::text[])[1 + p %% %(np)s] END,
       CASE WHEN p %% 3 = 0 THEN '' ELSE '139****' || lpad((p %% 10000)::text, 4, '0') END,
       CASE WHEN bench_rnd(p, %(s)s + 2) < 0.06
            THEN ARRAY[(%(tags)s::text[])[1 + (bench_rnd(p, %(s)s + 3) * %(nt)s)::int %% %(nt)s]]::varchar[]
            ELSE '{}'::varchar[] END,
       false
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) p
"""

_FACILITIES = """
INSERT INTO geodata_facility (id, code, facility_type_id, name, status, location, address, grid_id,
                              owner_department_id, manager_department_id, maintainer_department_id, is_demo)
SELECT f, %(county)s || (%(codes)s::text[])[t] || lpad((1 + (f - 1) / %(nt)s)::text, 6, '0'),
       (%(types)s::bigint[])[t], '',
       CASE WHEN bench_rnd(f, %(s)s + 1) < 0.92 THEN 'intact'
            WHEN bench_rnd(f, %(s)s + 1) < 0.97 THEN 'damaged' ELSE 'decommissioned' END,
       ST_SetSRID(ST_MakePoint(g.x0 + (%(in0)s + %(inw)s * bench_rnd(f, %(s)s + 2)) * g.dx,
                               g.y0 + (%(in0)s + %(inw)s * bench_rnd(f, %(s)s + 3)) * g.dy), 4326),
       g.name, g.id, NULL, NULL, (%(departments)s::bigint[])[1 + f %% %(nd)s], false
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) f
CROSS JOIN LATERAL (SELECT 1 + ((f - 1) %% %(nt)s)::int AS t) tt
JOIN bench_grid g ON g.id = 1 + (bench_rnd(f, %(s)s + 4) * %(grids)s)::bigint %% %(grids)s
"""

# One row per case with every random choice made; cases and history are both read from it.
_CASE_PLAN = """
INSERT INTO bench_case_plan
SELECT i, g.id, g.x0 + (%(in0)s + %(inw)s * bench_rnd(i, %(s)s + 4)) * g.dx,
       g.y0 + (%(in0)s + %(inw)s * bench_rnd(i, %(s)s + 5)) * g.dy,
       k.cat, k.source, k.reported_at, k.duration,
       k.hotline + 2 * (k.ret + 2 * (k.ext + 2 * (k.urge + 2 * (k.alerts + 4 * (k.rework + 2 * k.outcome))))),
       k.urgent, bench_rnd(i, %(s)s + 30) < 0.3, bench_rnd(i, %(s)s + 31) < 0.9
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) i
CROSS JOIN LATERAL (
    SELECT
        -- reporting time: in id order over the years before the anchor, in the daytime
        %(start)s::timestamptz
            + make_interval(days => ((i - 1) * %(days)s / %(n)s)::int)
            + make_interval(secs => 7 * 3600 + 14 * 3600 * bench_rnd(i, %(s)s + 1)) AS reported_at,
        make_interval(secs => 3 * 3600 + 7 * 86400 * power(bench_rnd(i, %(s)s + 2), 2)) AS duration,
        -- a hot spot (8 of them) for a third of the cases, else anywhere
        CASE WHEN bench_rnd(i, %(s)s + 3) < 0.35 THEN
            (SELECT h.id FROM bench_hot h WHERE h.n = 1 + (bench_rnd(i, %(s)s + 6) * 8)::int %% 8)
        END AS hot_centre,
        1 + (power(bench_rnd(i, %(s)s + 7), 1.6) * %(ncat)s)::int %% %(ncat)s AS cat,
        CASE WHEN bench_rnd(i, %(s)s + 8) < 0.65 THEN 'grid_worker'
             WHEN bench_rnd(i, %(s)s + 8) < 0.85 THEN 'hotline'
             WHEN bench_rnd(i, %(s)s + 8) < 0.95 THEN 'public' ELSE 'video' END AS source,
        (bench_rnd(i, %(s)s + 8) >= 0.65 AND bench_rnd(i, %(s)s + 8) < 0.95)::int AS hotline,
        (bench_rnd(i, %(s)s + 21) < 0.05)::int AS ret,
        (bench_rnd(i, %(s)s + 22) < 0.08)::int AS ext,
        (bench_rnd(i, %(s)s + 23) < 0.40)::int AS urge,
        CASE WHEN bench_rnd(i, %(s)s + 24) < 0.15 THEN 0 WHEN bench_rnd(i, %(s)s + 24) < 0.40 THEN 1
             WHEN bench_rnd(i, %(s)s + 24) < 0.65 THEN 2 ELSE 3 END AS alerts,
        (bench_rnd(i, %(s)s + 25) < 0.20)::int AS rework,
        CASE WHEN i < 100 THEN 0
             WHEN bench_rnd(i, %(s)s + 26) < 0.0010 THEN 4  -- deferred (挂账)
             WHEN bench_rnd(i, %(s)s + 26) < 0.0015 THEN 5  -- stuck: dispatched and overdue
             WHEN bench_rnd(i, %(s)s + 26) < 0.0715 THEN 1  -- voided
             WHEN bench_rnd(i, %(s)s + 26) < 0.0915 THEN 2  -- merged
             WHEN bench_rnd(i, %(s)s + 26) < 0.1515 AND bench_rnd(i, %(s)s + 8) < 0.65 THEN 3  -- self-handled
             ELSE 0 END AS outcome,
        bench_rnd(i, %(s)s + 9) < 0.05 AS urgent
) k
JOIN bench_grid g ON g.id = COALESCE(
    (SELECT n.id FROM bench_grid c JOIN bench_grid n
        ON n.col = LEAST(GREATEST(
               c.col + (3.99 * (bench_rnd(i, %(s)s + 10) + bench_rnd(i, %(s)s + 11) - 1))::int, 0), %(cols)s - 1)
       AND n.row = LEAST(GREATEST(
               c.row + (3.99 * (bench_rnd(i, %(s)s + 12) + bench_rnd(i, %(s)s + 13) - 1))::int, 0), %(rows)s - 1)
     WHERE c.id = k.hot_centre),
    1 + (bench_rnd(i, %(s)s + 14) * %(grids)s)::bigint %% %(grids)s)
"""

_CASES = """
INSERT INTO events_case (
    id, number, category_id, source, reporter_id, reporter_name, reporter_phone_encrypted, reporter_phone_masked,
    external_id, client_key, location, grid_id, community_id, street_id, area_class, facility_id, description,
    address, urgency, state, suggested_department_id, current_department_id, current_assignee_id, merged_into_id,
    step, step_started_at, warn_at, deadline, due_at, reported_at, verified_at, filed_at, dispatched_at,
    handled_at, checked_at, closed_at, voided_at, merged_at, deferred_at, rework_count, return_count,
    extension_count, urge_count)
SELECT c.id,
       (%(prefixes)s::text[])[c.cat] || to_char(c.reported_at, 'YYYYMMDD') || lpad(c.id::text, 7, '0'),
       (%(categories)s::bigint[])[c.cat], c.source,
       CASE c.source WHEN 'grid_worker' THEN g.worker_id
                     WHEN 'hotline' THEN (%(operators)s::bigint[])[1 + c.id %% %(nops)s]
                     WHEN 'video' THEN (%(operators)s::bigint[])[1 + c.id %% %(nops)s] END,
       CASE WHEN c.source IN ('hotline', 'public') THEN (%(surnames)s::text[])[1 + c.id %% %(ns)s] || '先生'
            ELSE '' END,
       '', '', '', NULL,
       ST_SetSRID(ST_MakePoint(c.x, c.y), 4326), g.id, g.community_id, g.street_id, g.area_class, NULL,
       (%(minors)s::text[])[c.cat] || '：' || (%(descriptions)s::text[])[1 + c.id %% %(nds)s],
       g.name || '附近', CASE WHEN c.urgent THEN 'urgent' ELSE 'normal' END,
       p.state, (%(departments)s::bigint[])[c.cat],
       CASE WHEN p.dispatched THEN (%(departments)s::bigint[])[c.cat] END,
       CASE WHEN p.state = 'verifying' THEN g.worker_id END,
       CASE WHEN p.state = 'merged' THEN c.id - 1 - (c.id %% 50) END,
       p.step, c.reported_at + c.duration * p.step_frac,
       c.reported_at + c.duration * p.step_frac + make_interval(secs => 0.8 * 3600 * l.hours),
       c.reported_at + c.duration * p.step_frac + make_interval(secs => 3600 * l.hours),
       CASE WHEN p.due_frac IS NULL THEN NULL
            WHEN p.handled_at > p.due_frac THEN
                c.reported_at + c.duration
                    * (p.due_frac + (p.handled_at - p.due_frac) * CASE WHEN c.on_time THEN 1.25 ELSE 0.75 END)
            ELSE c.reported_at + c.duration * p.due_frac + interval '24 hours' END,
       c.reported_at,
       c.reported_at + c.duration * p.verified_at, c.reported_at + c.duration * p.filed_at,
       c.reported_at + c.duration * p.dispatched_at, c.reported_at + c.duration * p.handled_at,
       c.reported_at + c.duration * p.checked_at, c.reported_at + c.duration * p.closed_at,
       c.reported_at + c.duration * p.voided_at, c.reported_at + c.duration * p.merged_at,
       c.reported_at + c.duration * p.deferred_at,
       p.reworks, p.returns, p.extensions, p.urges
FROM bench_case_plan c
JOIN bench_grid g ON g.id = c.grid_id
JOIN bench_variant v ON v.variant = c.variant
JOIN bench_prefix p ON p.variant = c.variant AND p.nsteps = CASE
    WHEN c.reported_at + c.duration <= %(anchor)s THEN v.nsteps
    ELSE (SELECT count(*) FROM unnest(v.fracs) f
          WHERE c.reported_at + c.duration * f <= %(anchor)s) END
LEFT JOIN bench_limit l ON l.step = p.step
WHERE c.id BETWEEN %(lo)s AND %(hi)s
ORDER BY c.id
"""

_HISTORY = """
WITH rows AS (
    SELECT c.id AS case_id, s.seq, s.action, s.from_state, s.to_state,
           c.reported_at + c.duration * s.frac AS created_at,
           s.actor_kind, s.timed_before, s.needs_comment, c.source, c.cat, c.grid_id, c.auto_dispatch,
           c.on_time,
           count(*) FILTER (WHERE s.action = 'dispatch') OVER w > 0 AS after_dispatch
    FROM bench_case_plan c
    JOIN bench_variant v ON v.variant = c.variant
    JOIN bench_step s ON s.variant = c.variant
    WHERE c.id BETWEEN %(lo)s AND %(hi)s
      AND (c.reported_at + c.duration <= %(anchor)s OR c.reported_at + c.duration * s.frac <= %(anchor)s)
    WINDOW w AS (PARTITION BY c.id ORDER BY s.seq)
), numbered AS (
    SELECT r.*, %(base)s + row_number() OVER (ORDER BY r.created_at, r.case_id, r.seq) AS id FROM rows r
), linked AS (
    SELECT n.*, max(CASE WHEN n.action = 'dispatch' THEN n.id END)
                    OVER (PARTITION BY n.case_id ORDER BY n.seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                    AS last_dispatch
    FROM numbered n
)
INSERT INTO events_casehistory (id, case_id, action, from_state, to_state, actor_id, actor_role, department_id,
                                street_id, community_id, grid_id, comment, payload, step_deadline, reverts_id,
                                created_at)
SELECT r.id, r.case_id, r.action, r.from_state, r.to_state,
       CASE r.actor_kind
            WHEN 'reporter' THEN CASE r.source WHEN 'grid_worker' THEN g.worker_id WHEN 'public' THEN NULL
                                 ELSE (%(operators)s::bigint[])[1 + r.case_id %% %(nops)s] END
            WHEN 'worker' THEN g.worker_id
            WHEN 'operator' THEN (%(operators)s::bigint[])[1 + r.case_id %% %(nops)s]
            WHEN 'dispatcher' THEN CASE WHEN r.auto_dispatch AND r.action = 'dispatch' THEN NULL
                                   ELSE (%(dispatchers)s::bigint[])[1 + r.case_id %% %(ndis)s] END
            WHEN 'handler' THEN (%(handlers)s::bigint[])[r.cat]
            WHEN 'leader' THEN (%(leaders)s::bigint[])[1 + r.case_id %% %(nlead)s]
            WHEN 'shift_leader' THEN (%(shift_leaders)s::bigint[])[1 + r.case_id %% %(nshift)s]
       END,
       CASE r.actor_kind
            WHEN 'reporter' THEN CASE r.source WHEN 'grid_worker' THEN 'grid_worker' WHEN 'public' THEN 'public'
                                 ELSE 'operator' END
            WHEN 'worker' THEN 'grid_worker'
            WHEN 'dispatcher' THEN CASE WHEN r.auto_dispatch AND r.action = 'dispatch' THEN 'system'
                                   ELSE 'dispatcher' END
            WHEN 'handler' THEN 'department_handler'
            ELSE r.actor_kind END,
       CASE WHEN r.after_dispatch THEN (%(departments)s::bigint[])[r.cat] END,
       g.street_id, g.community_id, g.id,
       CASE WHEN r.needs_comment THEN (%(comments)s::text[])[1 + (r.case_id + r.seq) %% %(ncom)s] ELSE '' END,
       CASE WHEN r.seq = 1 THEN jsonb_build_object('source', r.source) ELSE '{}'::jsonb END,
       CASE WHEN r.timed_before THEN r.created_at + CASE WHEN r.on_time OR r.seq %% 5 <> 0 THEN interval '1 hour'
                                                         ELSE interval '-30 minutes' END END,
       CASE WHEN r.action = 'return' THEN r.last_dispatch END,
       r.created_at
FROM linked r
JOIN bench_grid g ON g.id = r.grid_id
ORDER BY r.id
"""

# 漏报: the source of the earliest report of each case that absorbed duplicates, as
# events.services.case_merge writes it (the merged_into index is back by now).
_FIRST_SOURCE = """
UPDATE events_case t
SET first_source = (SELECT c.source FROM events_case c WHERE c.id = t.id OR c.merged_into_id = t.id
                    ORDER BY c.reported_at, c.id LIMIT 1)
WHERE t.id IN (SELECT merged_into_id FROM events_case WHERE merged_into_id IS NOT NULL)
"""

_PATROLS = """
INSERT INTO patrol_patrolsession (id, worker_id, started_at, ended_at, track, length_m)
SELECT w.n * %(days)s + d + 1, w.worker_id,
       %(first_day)s::timestamptz + make_interval(days => d) + interval '8 hours 30 minutes',
       %(first_day)s::timestamptz + make_interval(days => d) + interval '8 hours 30 minutes'
           + make_interval(hours => %(hours)s),
       NULL, NULL
FROM (SELECT row_number() OVER (ORDER BY u) - 1 AS n, u AS worker_id FROM unnest(%(workers)s::bigint[]) u) w
CROSS JOIN generate_series(0, %(days)s - 1) d
"""

_PATROL_POINTS = """
INSERT INTO patrol_patrolpoint (session_id, worker_id, recorded_at, received_at, point, accuracy_m)
SELECT s.id, s.worker_id, s.started_at + make_interval(secs => k * %(interval)s),
       s.started_at + make_interval(secs => k * %(interval)s + 2),
       ST_SetSRID(ST_MakePoint(
           g.x0 + g.dx * (0.5 + 0.45 * sin(k / 37.0 + s.id) + 0.04 * bench_rnd(s.id * 10000 + k, %(s)s + 1)),
           g.y0 + g.dy * (0.5 + 0.45 * cos(k / 53.0 + s.id) + 0.04 * bench_rnd(s.id * 10000 + k, %(s)s + 2))), 4326),
       5 + 20 * bench_rnd(s.id * 10000 + k, %(s)s + 3)
FROM patrol_patrolsession s
JOIN LATERAL (SELECT b.* FROM bench_grid b WHERE b.worker_id = s.worker_id
              ORDER BY b.id OFFSET (s.id %% GREATEST(1, (SELECT count(*) FROM bench_grid c
                                                           WHERE c.worker_id = s.worker_id))) LIMIT 1) g ON true
CROSS JOIN generate_series(0, %(points)s - 1) k
WHERE s.id BETWEEN %(lo)s AND %(hi)s
"""

_PATROL_TRACKS = """
UPDATE patrol_patrolsession s SET track = t.line, length_m = ST_Length(t.line::geography)
FROM (SELECT session_id, ST_MakeLine(point ORDER BY recorded_at) AS line
      FROM patrol_patrolpoint GROUP BY session_id) t
WHERE t.session_id = s.id
"""

_DROP_CASE_TABLES = """
DROP TABLE IF EXISTS bench_step, bench_prefix, bench_limit, bench_hot, bench_variant, bench_case_plan
"""

# Tables whose ids are given explicitly: their identity sequences are moved past the last id.
_EXPLICIT_ID_TABLES = [
    "geodata_district",
    "geodata_street",
    "geodata_community",
    "geodata_grid",
    "geodata_building",
    "geodata_household",
    "geodata_person",
    "geodata_facility",
    "events_case",
    "events_casehistory",
    "patrol_patrolsession",
]
# Big tables loaded without their secondary indexes (rebuilt afterwards).
_REINDEXED_TABLES = ["geodata_person", "events_case", "events_casehistory", "patrol_patrolpoint"]
REGISTER_TABLES = ["geodata_district", "geodata_grid", "events_case"]


@dataclasses.dataclass
class GenerationResult:
    scale: float
    seed: int
    anchor: dt.date
    counts: dict[str, int]
    seconds: float
    stages: dict[str, float]


def _execute(sql: str, params: dict | list | None = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _scalar(sql: str, params: dict | list | None = None) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else row[0]


def register_has_rows() -> bool:
    return any(_scalar(f"SELECT EXISTS (SELECT 1 FROM {table})") for table in REGISTER_TABLES)  # noqa: S608


def is_superuser() -> bool:
    return bool(_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))


@contextlib.contextmanager
def without_secondary_indexes(tables: list[str], *, progress: bool) -> Iterator[None]:
    """Drop the indexes of `tables` that back no constraint; rebuild them on exit (in parallel if allowed)."""
    definitions: list[tuple[str, str]] = []
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(
                """
                SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
                FROM pg_index i
                WHERE i.indrelid = %s::regclass
                  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
                """,
                [table],
            )
            definitions += cursor.fetchall()
        for name, _ in definitions:
            cursor.execute(f"DROP INDEX {name}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '512MB'")
            for _, definition in tqdm(definitions, desc="rebuild indexes", unit="index", disable=not progress):
                cursor.execute(definition)
            cursor.execute("RESET maintenance_work_mem")


def _chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    for lo in range(1, total + 1, size):
        yield lo, min(total, lo + size - 1)


def _bar(total: int, desc: str, progress: bool) -> tqdm:
    return tqdm(total=total, desc=desc, unit="row", unit_scale=True, disable=not progress, leave=progress)


def generate(
    *, scale: float, seed: int = 20261122, anchor: dt.date | None = None, progress: bool = True
) -> GenerationResult:
    """Generate the district into the (empty) register of the current database.

    `anchor`: the day after the last reporting day (default: today); cases are reported in
    the YEARS years before it. Must run outside a transaction for VACUUM; inside one (the
    smoke test) the tables are only analysed.
    """
    from accounts.models import Role, User
    from events.models import Category
    from geodata import pii
    from geodata.catalogue import catalogue_entries, facility_catalogue_load
    from geodata.models import Department, FacilityType, PersonTag

    if register_has_rows():
        raise RuntimeError("The register is not empty: generate into a fresh database.")
    started = time.perf_counter()
    stages: dict[str, float] = {}
    anchor = anchor or dt.date.today()
    tz = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    anchor_at = dt.datetime.combine(anchor, dt.time(), tzinfo=tz)
    start_day = anchor - dt.timedelta(days=round(365.25 * YEARS))
    start_at = dt.datetime.combine(start_day, dt.time(), tzinfo=tz)
    counts = counts_at(scale)
    lattice = Lattice.for_grids(counts["grids"])
    s = seed * 1000
    base = {"s": s, "in0": INNER[0], "inw": INNER[1] - INNER[0], "grids": counts["grids"]}
    in_transaction = connection.in_atomic_block

    def stage(name: str, began: float) -> None:
        stages[name] = round(time.perf_counter() - began, 2)

    with connection.cursor() as cursor:
        cursor.execute("SHOW TimeZone")
        (session_time_zone,) = cursor.fetchone()
        cursor.execute(_FUNCTIONS)
        cursor.execute("SET TIME ZONE %s", [settings.TIME_ZONE])
        cursor.execute("SET synchronous_commit = off")
        if is_superuser():
            # Consistent by construction: skip the per-row foreign-key triggers.
            cursor.execute("SET session_replication_role = replica")

    # --- catalogues and people (product loaders and the ORM: small) ---
    began = time.perf_counter()
    from events.services import category_catalogue_load

    catalogue = settings.BASE_DIR / "fixtures" / "categories.json"
    import json

    category_catalogue_load(data=json.loads(catalogue.read_text(encoding="utf-8")))
    facility_catalogue_load(entries=catalogue_entries())
    departments = list(Department.objects.order_by("code"))
    users = _create_users(counts["workers"], departments, User, Role)
    stage("catalogues_users", began)

    # --- regions and grids ---
    began = time.perf_counter()
    _regions_and_grids(lattice, seed, anchor, users["grid_worker"], start_day)
    if is_superuser():  # the grid triggers were off (session_replication_role = replica)
        _execute("SELECT geodata_grid_cells_refresh(ARRAY(SELECT id FROM geodata_grid))")
    stage("regions_grids", began)

    # --- register ---
    began = time.perf_counter()
    phones = [pii.encrypt(f"13{(seed + n) % 10}{n:08d}"[:11]) for n in range(211)]
    ids = [pii.encrypt(_id_number(n)) for n in range(257)]
    names = {"surnames": SURNAMES, "given": GIVEN, "ns": len(SURNAMES), "ng": len(GIVEN)}
    with _bar(counts["buildings"], "buildings", progress) as bar:
        for lo, hi in _chunks(counts["buildings"], ROW_CHUNK):
            _execute(_BUILDINGS, {**base, "lo": lo, "hi": hi, "n": counts["buildings"]})
            bar.update(hi - lo + 1)
    with _bar(counts["households"], "households", progress) as bar:
        for lo, hi in _chunks(counts["households"], ROW_CHUNK):
            params = {**base, **names, "lo": lo, "hi": hi, "n": counts["households"]}
            params |= {"buildings": counts["buildings"], "phones": phones, "np": len(phones)}
            _execute(_HOUSEHOLDS, params)
            bar.update(hi - lo + 1)
    tags = [tag.value for tag in PersonTag]
    with (
        without_secondary_indexes(["geodata_person"], progress=progress),
        _bar(counts["persons"], "persons", progress) as bar,
    ):
        for lo, hi in _chunks(counts["persons"], ROW_CHUNK):
            params = {**base, **names, "lo": lo, "hi": hi, "n": counts["persons"]}
            params |= {"households": counts["households"], "phones": phones, "np": len(phones)}
            params |= {"ids": ids, "ni": len(ids), "tags": tags, "nt": len(tags)}
            _execute(_PERSONS, params)
            bar.update(hi - lo + 1)
    types = list(FacilityType.objects.order_by("major_code", "minor_code"))
    with _bar(counts["facilities"], "facilities", progress) as bar:
        for lo, hi in _chunks(counts["facilities"], ROW_CHUNK):
            params = {**base, "lo": lo, "hi": hi, "county": COUNTY, "nt": len(types)}
            params |= {"codes": [t.major_code + t.minor_code for t in types], "types": [t.pk for t in types]}
            params |= {"departments": [d.pk for d in departments], "nd": len(departments)}
            _execute(_FACILITIES, params)
            bar.update(hi - lo + 1)
    stage("register", began)

    # --- cases and history ---
    began = time.perf_counter()
    categories = list(Category.objects.filter(is_active=True).order_by("kind", "major_code", "minor_code"))
    fallback = departments[0]
    handler_of = {d.pk: h for d, h in zip(departments, users["department_handler"], strict=True)}
    category_departments = [(c.default_department_id or fallback.pk) for c in categories]
    people = {
        "operators": users["operator"],
        "nops": len(users["operator"]),
        "dispatchers": users["dispatcher"],
        "ndis": len(users["dispatcher"]),
        "leaders": users["leader"],
        "nlead": len(users["leader"]),
        "shift_leaders": users["shift_leader"],
        "nshift": len(users["shift_leader"]),
        "handlers": [handler_of[d] for d in category_departments],
        "departments": category_departments,
    }
    _case_tables(lattice, seed)
    days = (anchor - start_day).days
    with _bar(counts["cases"], "case plans", progress) as bar:
        for lo, hi in _chunks(counts["cases"], CASE_CHUNK):
            params = {**base, "lo": lo, "hi": hi, "n": counts["cases"], "start": start_at, "days": days}
            params |= {"ncat": len(categories), "cols": lattice.cols, "rows": lattice.rows}
            _execute(_CASE_PLAN, params)
            bar.update(hi - lo + 1)
    _execute("ANALYZE bench_case_plan")
    history_rows = 0
    with without_secondary_indexes(["events_case", "events_casehistory"], progress=progress):
        with _bar(counts["cases"], "cases", progress) as bar:
            for lo, hi in _chunks(counts["cases"], CASE_CHUNK):
                params = {**base, **names, **people, "lo": lo, "hi": hi, "anchor": anchor_at}
                params |= {
                    "prefixes": [c.code for c in categories],
                    "categories": [c.pk for c in categories],
                    "minors": [c.minor_name for c in categories],
                    "descriptions": DESCRIPTIONS,
                    "nds": len(DESCRIPTIONS),
                }
                _execute(_CASES, params)
                bar.update(hi - lo + 1)
        with _bar(counts["cases"], "history (cases)", progress) as bar:
            for lo, hi in _chunks(counts["cases"], HISTORY_CHUNK):
                params = {**people, "lo": lo, "hi": hi, "anchor": anchor_at, "base": history_rows}
                params |= {"comments": COMMENTS, "ncom": len(COMMENTS)}
                history_rows += _execute(_HISTORY, params)
                bar.update(hi - lo + 1)
                bar.set_postfix(history=history_rows)
    counts["history"] = history_rows
    _execute(_FIRST_SOURCE)
    _execute(_DROP_CASE_TABLES)
    stage("cases_history", began)

    # --- incident rollups: their triggers were off with the other triggers; count set-based ---
    began = time.perf_counter()
    from events.rollups import incident_rollups_rebuild

    counts["incident_day_rows"] = incident_rollups_rebuild()
    stage("incident_rollups", began)

    # --- GPS tracks of the last GPS_DAYS days ---
    began = time.perf_counter()
    first_day = dt.datetime.combine(anchor - dt.timedelta(days=GPS_DAYS), dt.time(), tzinfo=tz)
    points_per_session = GPS_HOURS * 3600 // GPS_INTERVAL_S
    _execute(_PATROLS, {"days": GPS_DAYS, "first_day": first_day, "hours": GPS_HOURS, "workers": users["grid_worker"]})
    sessions = len(users["grid_worker"]) * GPS_DAYS
    points_bar = _bar(sessions * points_per_session, "GPS points", progress)
    with without_secondary_indexes(["patrol_patrolpoint"], progress=progress), points_bar as bar:
        for lo, hi in _chunks(sessions, 100):
            params = {**base, "lo": lo, "hi": hi, "interval": GPS_INTERVAL_S, "points": points_per_session}
            bar.update(_execute(_PATROL_POINTS, params))
    _execute(_PATROL_TRACKS)
    counts["gps_points"] = sessions * points_per_session
    stage("gps", began)

    # --- sequences, statistics ---
    began = time.perf_counter()
    with connection.cursor() as cursor:
        for table in _EXPLICIT_ID_TABLES:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence(%s, 'id'), GREATEST((SELECT max(id) FROM {table}), 1))",  # noqa: S608
                [table],
            )
        cursor.execute("SET session_replication_role = DEFAULT" if is_superuser() else "SELECT 1")
        cursor.execute("SET TIME ZONE %s", [session_time_zone])
        cursor.execute("RESET synchronous_commit")
    if in_transaction:
        _execute("ANALYZE")
    else:
        with connection.cursor() as cursor:
            for table in tqdm(_VACUUMED, desc="vacuum analyze", unit="table", disable=not progress):
                cursor.execute(f"VACUUM (ANALYZE) {table}")
    stage("vacuum_analyze", began)
    return GenerationResult(
        scale=scale,
        seed=seed,
        anchor=anchor,
        counts=counts,
        seconds=round(time.perf_counter() - started, 1),
        stages=stages,
    )


_VACUUMED = [
    "geodata_grid",
    "geodata_community",
    "geodata_street",
    "geodata_district",
    "geodata_building",
    "geodata_household",
    "geodata_person",
    "geodata_facility",
    "geodata_gridassignment",
    "events_gridareaclass",
    "events_case",
    "events_casehistory",
    "patrol_patrolsession",
    "patrol_patrolpoint",
    "accounts_user",
    "bench_grid",
]


def _id_number(n: int) -> str:
    from geodata import pii

    first17 = f"500104{1950 + n % 60:04d}{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    return first17 + pii.id_number_check_char(first17)


def _create_users(workers: int, departments: list, user_model: Any, role: Any) -> dict[str, list[int]]:
    """Grid workers, command-center staff, one handler per department, an administrator."""
    from django.contrib.auth.hashers import make_password

    unusable = make_password(None)
    plan = [
        (role.GRID_WORKER, "worker", workers),
        (role.OPERATOR, "operator", 10),
        (role.SHIFT_LEADER, "shift", 3),
        (role.DISPATCHER, "dispatcher", 5),
        (role.LEADER, "leader", 2),
        (role.PLANNER, "planner", 1),
    ]
    users: list = []
    for value, stem, count in plan:
        users += [
            user_model(username=f"bench_{stem}_{n:03d}", role=value, password=unusable, first_name=f"{stem}{n}")
            for n in range(1, count + 1)
        ]
    users += [
        user_model(
            username=f"bench_handler_{d.code.lower()}", role=role.DEPARTMENT_HANDLER, department=d, password=unusable
        )
        for d in departments
    ]
    users.append(
        user_model(username="bench_admin", role=role.ADMIN, is_superuser=True, is_staff=True, password=unusable)
    )
    created = user_model.objects.bulk_create(users)
    by_role: dict[str, list[int]] = {}
    for user in created:
        by_role.setdefault(str(user.role), []).append(user.pk)
    return by_role


def _regions_and_grids(lattice: Lattice, seed: int, anchor: dt.date, workers: list[int], start_day: dt.date) -> None:
    polygons = lattice.polygons(seed)
    blocks: dict[tuple[int, int], list[int]] = {}
    for index in range(lattice.grids):
        blocks.setdefault(lattice.community_block(*lattice.cell(index)), []).append(index)
    # Codes run west -> east, north -> south (DESIGN.md §3): sort by (-row, col).
    streets: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for block in blocks:
        streets.setdefault((block[0] // STREET_BLOCK, block[1] // STREET_BLOCK), []).append(block)
    street_keys = sorted(streets, key=lambda k: (-k[1], k[0]))
    if len(street_keys) > 99:
        raise ValueError("Too many streets for 3-digit 街道 codes 001-099: use a smaller --scale.")
    district = shapely.union_all(polygons)
    grid_rows, community_rows, street_rows = [], [], []
    bench_rows = []
    community_id = 0
    grid_of_index: dict[int, int] = {}
    valid_from = min(start_day, anchor) - dt.timedelta(days=365)
    for street_number, street_key in enumerate(street_keys, start=1):
        street_code = f"{COUNTY}{street_number:03d}"
        community_blocks = sorted(streets[street_key], key=lambda k: (-k[1], k[0]))
        street_polygons = []
        for community_number, block in enumerate(community_blocks, start=1):
            community_id += 1
            community_code = f"{street_code}{community_number:03d}"
            members = sorted(blocks[block], key=lambda i: (-lattice.cell(i)[1], lattice.cell(i)[0]))
            shape = shapely.union_all([polygons[i] for i in members])
            street_polygons.append(shape)
            community_rows.append(
                (community_id, community_code, f"第{street_number}街道第{community_number}社区", shape, street_number)
            )
            for serial, index in enumerate(members, start=1):
                grid_of_index[index] = len(grid_rows) + 1
                grid_rows.append(
                    (
                        index,
                        f"{community_code}{serial:03d}",
                        f"{community_number}社区第{serial}网格",
                        community_id,
                        street_number,
                    )
                )
        street_rows.append((street_number, street_code, f"第{street_number}街道", shapely.union_all(street_polygons)))
    # Grid ids follow code order; bench_grid keeps each grid's cell for placing points.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO geodata_district (id, code, name, geom, is_demo)"
            " VALUES (1, %s, '基准测试区', ST_Multi(ST_GeomFromWKB(%s, 4326)), false)",
            [COUNTY, shapely.to_wkb(district)],
        )
        with cursor.copy("COPY geodata_street (id, code, name, geom, district_id, is_demo) FROM STDIN") as copy:
            for sid, code, name, shape in street_rows:
                copy.write_row([sid, code, name, _ewkb(shape, multi=True), 1, False])
        with cursor.copy("COPY geodata_community (id, code, name, geom, street_id, is_demo) FROM STDIN") as copy:
            for cid, code, name, shape, sid in community_rows:
                copy.write_row([cid, code, name, _ewkb(shape, multi=True), sid, False])
        columns = "id, code, name, community_id, responsible_unit_id, geom, valid_from, valid_to, is_demo"
        with cursor.copy(f"COPY geodata_grid ({columns}) FROM STDIN") as copy:
            for gid, (index, code, name, cid, _) in enumerate(grid_rows, start=1):
                copy.write_row([gid, code, name, cid, None, _ewkb(polygons[index]), valid_from, None, False])
        cursor.execute(
            """
            CREATE TABLE IF NOT EXISTS bench_grid (
                id bigint PRIMARY KEY, col int, row int, x0 float8, y0 float8, dx float8, dy float8,
                community_id bigint, street_id bigint, worker_id bigint, area_class text, name text)
            """
        )
        cursor.execute("TRUNCATE bench_grid")
        for gid, (index, _, name, cid, sid) in enumerate(grid_rows, start=1):
            col, row = lattice.cell(index)
            x0, y0 = lattice.origin(col, row)
            worker = workers[(gid - 1) * len(workers) // lattice.grids]
            area_class = "A" if gid % 5 == 0 else ("C" if gid % 5 == 1 else "B")
            bench_rows.append((gid, col, row, x0, y0, lattice.dx, lattice.dy, cid, sid, worker, area_class, name))
        with cursor.copy("COPY bench_grid FROM STDIN") as copy:
            for row in bench_rows:
                copy.write_row(row)
        cursor.execute(
            """
            INSERT INTO geodata_gridassignment (grid_id, worker_id, is_primary, since)
            SELECT id, worker_id, true, %s FROM bench_grid
            """,
            [valid_from],
        )
        cursor.execute(
            "INSERT INTO events_gridareaclass (grid_id, area_class)"
            " SELECT id, area_class FROM bench_grid WHERE area_class <> 'B'"
        )
        cursor.execute("CREATE INDEX IF NOT EXISTS bench_grid_cell ON bench_grid (col, row)")
        cursor.execute("ANALYZE bench_grid")


def _ewkb(shape: shapely.Geometry, *, multi: bool = False) -> str:
    if multi and shape.geom_type == "Polygon":
        shape = shapely.MultiPolygon([shape])
    return shapely.to_wkb(shapely.set_srid(shape, 4326), hex=True, include_srid=True)


def _case_tables(lattice: Lattice, seed: int) -> None:
    """The temporary tables the case statements read: paths, prefixes, limits, hot spots, plans."""
    steps, prefixes = case_paths()
    with connection.cursor() as cursor:
        cursor.execute(_DROP_CASE_TABLES)
        cursor.execute(
            """
            CREATE TEMP TABLE bench_step (variant int, seq int, action text, from_state text, to_state text,
                frac float8, actor_kind text, timed_before bool, needs_comment bool);
            CREATE TEMP TABLE bench_prefix (variant int, nsteps int, state text, step text, step_frac float8,
                due_frac float8, reported_at float8, verified_at float8, filed_at float8, dispatched_at float8,
                handled_at float8, checked_at float8, closed_at float8, voided_at float8, merged_at float8,
                deferred_at float8, reworks int, returns int, extensions int, urges int, dispatched bool);
            CREATE TEMP TABLE bench_limit (step text PRIMARY KEY, hours float8);
            CREATE TEMP TABLE bench_hot (n int PRIMARY KEY, id bigint);
            CREATE UNLOGGED TABLE bench_case_plan (id bigint PRIMARY KEY, grid_id bigint, x float8, y float8,
                cat int, source text, reported_at timestamptz, duration interval, variant int, urgent bool,
                auto_dispatch bool, on_time bool);
            """
        )
        with cursor.copy("COPY bench_step FROM STDIN") as copy:
            for row in steps:
                copy.write_row(row)
        with cursor.copy("COPY bench_prefix FROM STDIN") as copy:
            for row in prefixes:
                copy.write_row(row)
        with cursor.copy("COPY bench_limit FROM STDIN") as copy:
            for step, hours in STEP_LIMIT_HOURS.items():
                copy.write_row((step, hours))
        rng = np.random.default_rng(seed + 1)
        hot = rng.choice(lattice.grids, size=8, replace=lattice.grids < 8) + 1
        with cursor.copy("COPY bench_hot FROM STDIN") as copy:
            for n, gid in enumerate(hot.tolist(), start=1):
                copy.write_row((n, gid))
        cursor.execute(
            """
            CREATE TEMP TABLE bench_variant AS
            SELECT variant, count(*)::int AS nsteps, array_agg(frac ORDER BY seq) AS fracs
            FROM bench_step GROUP BY variant;
            CREATE INDEX ON bench_step (variant, seq);
            CREATE UNIQUE INDEX ON bench_prefix (variant, nsteps);
            ANALYZE bench_step; ANALYZE bench_prefix; ANALYZE bench_variant;
            """
        )
