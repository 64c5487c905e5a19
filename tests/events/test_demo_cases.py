"""The demo case history (events.demo, manage.py load_demo_cases).

The demo district is loaded once for the module at a small scale, and 100 demo cases
(scale 0.05) are recorded up to a fixed moment NOW, inside a transaction rolled back when
the module ends; each test runs in a savepoint of its own.
"""

import datetime as dt
import io
import itertools
import re
import statistics
from collections import Counter

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.models import Count, F
from django.test import override_settings
from PIL import Image

from accounts.models import Role, User
from events import indicators
from events.demo import CLIENT_KEY_PREFIX, DemoCasesError, demo_case_plans, demo_cases, demo_cases_load, marker_read
from events.models import Case, CaseAlert, CaseHistory, CasePhoto
from events.selectors import with_timer_light
from events.workflow import OPEN_STATES, Action, State
from geodata.models import Facility, GridAssignment, Street
from tests.events.factories import local

DISTRICT_SCALE = 0.02
SCALE = 0.125  # 100 cases
NOW = local(2026, 11, 16, 10, 0)  # a Monday morning
DENSE_STREET = "500104002"
# The plan's shares for 100 cases (at least one case in every open state).
EXPECTED_STATES = {
    "closed": 80,
    "self_handled": 5,
    "voided": 4,
    "verifying": 1,
    "reported": 1,
    "filed": 1,
    "dispatched": 4,
    "extension_pending": 1,
    "handled": 1,
    "checked": 1,
    "deferred": 1,
}
LOOP = [Action.FILE, Action.DISPATCH, Action.HANDLE, Action.CHECK_PASS, Action.CLOSE]


def test_without_the_demo_district_nothing_is_generated(db):
    # Runs first, before the module's demo exists.
    with pytest.raises(DemoCasesError, match="load_demo"):
        demo_cases_load(scale=SCALE, now=NOW)
    assert not Case.objects.exists() and not User.objects.exists()


@pytest.fixture(scope="module")
def demo_media(tmp_path_factory):
    """Where the module's photos are stored (tests get a MEDIA_ROOT of their own from conftest)."""
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker, demo_media):
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"], MEDIA_ROOT=demo_media),
        transaction.atomic(),
    ):
        call_command("load_case_categories", verbosity=0)
        call_command("load_demo", scale=DISTRICT_SCALE, verbosity=0)
        result = demo_cases_load(scale=SCALE, now=NOW)
        yield result
        transaction.set_rollback(True)


@pytest.fixture
def loaded(demo, db):
    return demo


def _history(case: Case) -> list[CaseHistory]:
    return list(case.history.order_by("id"))


def _table_counts() -> dict[str, int]:
    return {
        "cases": Case.objects.count(),
        "history": CaseHistory.objects.count(),
        "photos": CasePhoto.objects.count(),
        "alerts": CaseAlert.objects.count(),
        "users": User.objects.count(),
        "assignments": GridAssignment.objects.count(),
    }


# --- what was generated ---------------------------------------------------------------------------


def test_counts_per_state_are_as_planned(loaded):
    assert loaded.status == "loaded"
    assert loaded.counts == EXPECTED_STATES
    assert dict(demo_cases().values_list("state").annotate(n=Count("id"))) == EXPECTED_STATES
    assert Case.objects.count() == 100 == demo_cases().count()
    assert set(OPEN_STATES) <= set(loaded.counts)
    assert marker_read()["count"] == 100


def test_the_database_holds_exactly_the_deterministic_plan(loaded):
    plans = demo_case_plans(scale=SCALE, now=NOW)
    assert plans == demo_case_plans(scale=SCALE, now=NOW)  # same seed, same cases
    assert sorted(p.client_key for p in plans) == [f"{CLIENT_KEY_PREFIX}{n:05d}" for n in range(1, 101)]
    assert [p.actions[0][1] for p in plans] == sorted(p.actions[0][1] for p in plans)  # in report order
    cases = {c.client_key: c for c in demo_cases().select_related("category")}
    for planned in plans:
        case = cases[planned.client_key]
        assert case.state == planned.state
        assert f"{case.category.kind}{case.category.major_code}{case.category.minor_code}" == planned.category
        assert case.source == planned.source
        assert (case.location.x, case.location.y) == pytest.approx(planned.location, abs=1e-12)
        recorded = [(h.action, h.created_at) for h in _history(case) if h.action != Action.ALERT]
        assert recorded == planned.actions
    # Case numbers run in the order of the report times within a day and category.
    by_prefix: dict[str, list[tuple]] = {}
    for case in cases.values():
        by_prefix.setdefault(case.number[:13], []).append((case.reported_at, case.number))
    for reports in by_prefix.values():
        assert sorted(reports) == sorted(reports, key=lambda r: r[1])


def test_open_cases_have_red_yellow_and_green_timers_and_the_alerts_of_their_light(loaded):
    lights = Counter(
        (case.state, case.timer_light) for case in with_timer_light(demo_cases(), now=NOW) if case.state in OPEN_STATES
    )
    assert lights == {
        ("verifying", "red"): 1,
        ("reported", "yellow"): 1,
        ("filed", "green"): 1,
        ("dispatched", "red"): 2,
        ("dispatched", "yellow"): 1,
        ("dispatched", "green"): 1,
        ("extension_pending", "yellow"): 1,
        ("handled", "green"): 1,
        ("checked", "red"): 1,
        ("deferred", ""): 1,
    }
    planned = Counter((p.state, p.light) for p in demo_case_plans(scale=SCALE, now=NOW) if p.state in OPEN_STATES)
    assert planned == lights
    # Each red case has its yellow and red alert, each yellow case its yellow alert, all raised at NOW.
    alerts = Counter(CaseAlert.objects.values_list("level", flat=True))
    assert alerts == {"red": 4, "yellow": 4 + 3}
    assert set(CaseAlert.objects.values_list("created_at", flat=True)) == {NOW}
    # Nothing happened after NOW, and nothing before the 120 days.
    assert not CaseHistory.objects.filter(created_at__gt=NOW).exists()
    assert not Case.objects.filter(reported_at__lt=NOW - dt.timedelta(days=120)).exists()


def test_every_closed_case_went_through_the_whole_loop_in_order(loaded):
    closed = list(demo_cases().filter(state=State.CLOSED))
    assert len(closed) == 80
    for case in closed:
        rows = _history(case)
        actions = [r.action for r in rows]
        assert actions[0] in (Action.REPORT, Action.REGISTER)
        if actions[0] == Action.REGISTER:
            assert actions[1] == Action.VERIFY and rows[1].payload == {"confirmed": True}
        positions = [actions.index(a) for a in LOOP]
        assert positions == sorted(positions), actions
        assert actions[-1] == Action.CLOSE and actions.count(Action.CLOSE) == 1
        # The rows form one chain of states, in time order.
        assert rows[0].from_state == State.NEW and rows[-1].to_state == State.CLOSED
        assert all(a.to_state == b.from_state for a, b in itertools.pairwise(rows))
        assert [r.created_at for r in rows] == sorted(r.created_at for r in rows)
        # The milestones are the times of the rows.
        times = {r.action: r.created_at for r in rows}  # the last row of each action
        assert (case.reported_at, case.filed_at, case.closed_at) == (
            rows[0].created_at,
            times[Action.FILE],
            times[Action.CLOSE],
        )
        assert case.handled_at == times[Action.HANDLE] and case.checked_at == times[Action.CHECK_PASS]
        assert case.step == "" and case.deadline is None


def test_the_history_has_reworks_returns_extensions_deferrals_and_urges(loaded):
    actions = Counter(CaseHistory.objects.values_list("action", flat=True))
    for action in (
        Action.CHECK_FAIL,
        Action.RETURN,
        Action.REQUEST_EXTENSION,
        Action.APPROVE_EXTENSION,
        Action.REFUSE_EXTENSION,
        Action.DEFER,
        Action.RESUME,
        Action.URGE,
        Action.SELF_HANDLE,
        Action.VOID,
        Action.VERIFY,
    ):
        assert actions[action] >= 1, action
    # A 回退 undoes the dispatcher's dispatch to the wrong department, which gets a new one.
    for row in CaseHistory.objects.filter(action=Action.RETURN).select_related("reverts", "actor"):
        assert row.reverts.action == Action.DISPATCH and row.reverts.actor.username == "demo_dispatcher"
        assert row.actor.department_id == row.reverts.department_id == row.department_id
    closed_after_return = Case.objects.filter(state=State.CLOSED, return_count__gt=0)
    assert closed_after_return.exists()
    for case in closed_after_return:
        dispatches = case.history.filter(action=Action.DISPATCH).order_by("id")
        assert dispatches.count() == 2 and dispatches[0].department_id != dispatches[1].department_id
    # Reworked cases were handled twice by the same department and checked twice.
    for case in Case.objects.filter(state=State.CLOSED, rework_count=1):
        rows = case.history.filter(action__in=[Action.HANDLE, Action.CHECK_FAIL, Action.CHECK_PASS]).order_by("id")
        assert [r.action for r in rows] == [Action.HANDLE, Action.CHECK_FAIL, Action.HANDLE, Action.CHECK_PASS]
        assert len({r.department_id for r in rows}) == 1
    assert Case.objects.filter(state=State.CLOSED, rework_count=1).count() >= 1
    assert Case.objects.filter(state=State.CLOSED, extension_count=1).exists()
    assert Case.objects.filter(state=State.CLOSED, deferred_at__isnull=False).exists()
    assert Case.objects.filter(urge_count__gt=0).exists()


def test_people_act_in_their_role_and_scope(loaded):
    rows = CaseHistory.objects.select_related("actor", "case")
    for row in rows.filter(action__in=[Action.FILE, Action.VOID]):
        assert row.actor.username == "demo_operator"
    for row in rows.filter(action=Action.DISPATCH):
        if row.actor is None:
            assert row.actor_role == "system" and row.comment.startswith("自动派遣")
        else:
            assert row.actor.username == "demo_dispatcher"
    assert rows.filter(action=Action.DISPATCH, actor=None).exists()
    assert rows.filter(action=Action.DISPATCH, actor__username="demo_dispatcher").exists()
    for row in rows.filter(action__in=[Action.HANDLE, Action.RETURN, Action.REQUEST_EXTENSION]):
        assert row.actor.role == Role.DEPARTMENT_HANDLER and row.actor.department_id == row.department_id
    for row in rows.filter(action__in=[Action.VERIFY, Action.CHECK_PASS, Action.CHECK_FAIL, Action.REPORT]):
        if row.actor.role == Role.GRID_WORKER:
            assert GridAssignment.objects.filter(worker=row.actor, grid_id=row.case.grid_id).exists()
    assert set(rows.filter(action=Action.CLOSE).values_list("actor__username", flat=True)) == {"demo_shift_leader"}
    assert set(rows.filter(action__in=[Action.DEFER, Action.RESUME]).values_list("actor__username", flat=True)) == {
        "demo_leader"
    }
    # Every grid of the street has a primary grid worker; the added ones are labelled demo accounts.
    added = User.objects.filter(username__startswith="demo_gw_")
    assert added.exists() and all(u.first_name.endswith("（示例）") and u.role == Role.GRID_WORKER for u in added)
    grids = Street.objects.get(code=DENSE_STREET).communities.values("grids")
    assert GridAssignment.objects.filter(grid__in=grids, is_primary=True).values("grid").distinct().count() == len(
        grids
    )
    handlers = User.objects.filter(username__startswith="demo_handler_")
    assert handlers.exists() and all(u.department_id and u.first_name.endswith("（示例）") for u in handlers)


def test_sources_are_mostly_grid_workers_and_hotline_reports_were_verified(loaded):
    sources = Counter(demo_cases().values_list("source", flat=True))
    assert sources[Case.Source.GRID_WORKER] > sources[Case.Source.HOTLINE] > 0
    for case in demo_cases().filter(source__in=[Case.Source.HOTLINE, Case.Source.PUBLIC]):
        actions = [r.action for r in _history(case)]
        assert actions[0] == Action.REGISTER
        assert case.state == State.VERIFYING or actions[1] == Action.VERIFY
        assert case.reporter_name and case.reporter_phone_masked and "*" in case.reporter_phone_masked


def test_cases_cluster_in_the_dense_street_and_facility_cases_sit_on_their_facility(loaded):
    assert set(demo_cases().values_list("street__code", flat=True)) == {DENSE_STREET}
    per_grid = Counter(demo_cases().values_list("grid_id", flat=True))
    all_grids = Street.objects.get(code=DENSE_STREET).communities.aggregate(n=Count("grids"))["n"]
    counts = list(per_grid.values()) + [0] * (all_grids - len(per_grid))
    # Hot spots: the busiest grid has several times the cases of the median grid.
    assert max(counts) >= 4 * max(statistics.median(counts), 1)
    components = demo_cases().filter(facility__isnull=False).select_related("facility", "category")
    assert components.exists()
    for case in components:
        assert case.category.kind == "C" and case.facility.is_demo
        assert case.location.equals_exact(case.facility.location, 1e-12)
        assert case.category.facility_type_id == case.facility.facility_type_id
    assert components.filter(facility__status__in=[Facility.Status.DAMAGED, Facility.Status.MISSING]).exists()


def test_photos_are_small_jpegs_on_the_actions_that_require_them(loaded, demo_media):
    photos = CasePhoto.objects.select_related("history")
    assert photos.count() == loaded.photos
    assert 2 * 80 <= loaded.photos <= 3 * 100
    for action, stage in ((Action.HANDLE, "after"), (Action.CHECK_PASS, "verify"), (Action.CHECK_FAIL, "verify")):
        for row in CaseHistory.objects.filter(action=action):
            assert list(row.attachments.values_list("stage", flat=True)) == [stage]
    for row in CaseHistory.objects.filter(action=Action.SELF_HANDLE):
        assert sorted(row.attachments.values_list("stage", flat=True)) == ["after", "before"]
    assert photos.filter(history__action=Action.REPORT, stage="before").exists()
    assert set(photos.values_list("image_format", "width", "height")) == {("JPEG", 128, 96)}
    assert max(photos.values_list("size_bytes", flat=True)) < 4096
    # Each photo was uploaded by the actor and at the time of its row.
    assert not photos.exclude(uploaded_at=F("history__created_at")).exists()
    for photo in photos:
        with Image.open(demo_media / photo.image.name) as image:
            assert (image.format, image.size) == ("JPEG", (128, 96))


def test_indicators_for_the_demo_street_are_realistic(loaded):
    start, end = NOW - dt.timedelta(days=120), NOW
    (street,) = [r for r in indicators.region_indicators(start=start, end=end, level="street", as_of=NOW)]
    assert street["code"] == DENSE_STREET
    filed = demo_cases().filter(filed_at__isnull=False).count()
    assert street["filed"] == filed > 80
    assert street["due"] >= 70 and street["closed"] >= 70
    assert 80 < street["close_rate"] < 100  # open overdue cases count against it
    assert 50 < street["on_time_close_rate"] < street["close_rate"]  # some steps ran late
    assert street["reworks"] >= 1 and 0 < street["rework_rate"] < 20
    assert street["missed"] >= 1  # hotline and public reports
    assert street["overdue_open"] >= 1
    departments = {r["code"]: r for r in indicators.department_indicators(start=start, end=end, as_of=NOW)}
    assert departments["ZY-HW"]["dispatched"] > 0 and departments["ZY-HW"]["handled"] > 0
    assert sum(r["returned"] for r in departments.values()) >= 1
    assert sum(r["extensions"] for r in departments.values()) >= 2
    dispatchers = {r["code"]: r for r in indicators.dispatcher_indicators(start=start, end=end, as_of=NOW)}
    assert dispatchers["demo_dispatcher"]["accurate_rate"] < 100 and dispatchers["system"]["dispatches"] > 0
    workers = indicators.grid_worker_indicators(start=start, end=end, as_of=NOW)
    assert sum(r["checks"] for r in workers) >= 80 and sum(r["reports"] for r in workers) > 0
    operators = {r["code"]: r for r in indicators.operator_indicators(start=start, end=end, as_of=NOW)}
    assert operators["demo_operator"]["filings"] == filed


# --- idempotency ----------------------------------------------------------------------------------


def test_a_second_run_says_the_cases_are_there_and_adds_nothing(loaded):
    before, marker = _table_counts(), marker_read()
    out = io.StringIO()
    call_command("load_demo_cases", scale=SCALE, stdout=out, stderr=io.StringIO())
    assert re.search(r"示例案件已存在，无需重复生成（共 100 件", out.getvalue())
    assert _table_counts() == before and marker_read() == marker


def test_other_demo_cases_are_kept_and_not_added_to(loaded):
    before = _table_counts()
    err = io.StringIO()
    result = demo_cases_load(scale=SCALE * 2, now=NOW)
    call_command("load_demo_cases", seed=7, scale=SCALE, stdout=io.StringIO(), stderr=err)
    assert result.status == "kept" and "--reload" in result.messages[0]
    assert "保留不变" in err.getvalue()
    assert _table_counts() == before


def test_reload_is_refused_because_the_case_history_is_append_only(loaded):
    before, marker = _table_counts(), marker_read()
    with pytest.raises(CommandError, match=r"不能删除已有的 100 件示例案件.*append-only.*新的数据库"):
        call_command("load_demo_cases", scale=SCALE, reload=True, verbosity=0)
    assert _table_counts() == before and marker_read() == marker
    # The trigger refused the first row of history; nothing else was deleted either.
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM events_casehistory")
        assert cursor.fetchone()[0] == before["history"]


def test_scale_out_of_range_is_refused(loaded):
    with pytest.raises(CommandError, match="--scale"):
        call_command("load_demo_cases", scale=0, verbosity=0)
