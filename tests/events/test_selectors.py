"""Who sees which cases, and the timeline read in a fixed number of queries."""

import pytest

from accounts.models import Role
from events import selectors, services
from events.models import Case
from maps.access import NOWHERE, Scope, user_scope
from tests.events.factories import POINT_NW, POINT_SW, jpeg, local
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def report(world, point, at):
    return services.case_report(
        actor=world.grid_worker,
        source=Case.Source.GRID_WORKER,
        category=world.category,
        location=point,
        description="垃圾",
        photos=[jpeg()],
        at=at,
    )


def test_each_user_sees_the_cases_of_their_scope(world):
    in_sw = report(world, POINT_SW, local(2026, 11, 16, 9, 0))
    in_nw = report(world, POINT_NW, local(2026, 11, 16, 9, 5))
    services.case_file(case=in_sw, actor=world.operator, auto_dispatch=False, at=local(2026, 11, 16, 9, 10))
    services.case_dispatch(case=in_sw, actor=world.dispatcher, department=world.greening, at=local(2026, 11, 16, 9, 20))
    services.case_return(case=in_sw, actor=world.other_handler, reason="非绿化问题", at=local(2026, 11, 16, 9, 30))

    def visible(user):
        return set(selectors.cases_visible_to(user=user).values_list("pk", flat=True))

    assert visible(world.operator) == {in_sw.pk, in_nw.pk}
    assert visible(world.outside_operator) == set()
    assert visible(world.planner) == set()  # aggregates only
    assert set(selectors.cases_countable_by(user=world.planner).values_list("pk", flat=True)) == {in_sw.pk, in_nw.pk}
    assert set(selectors.cases_countable_by(user=world.operator).values_list("pk", flat=True)) == {in_sw.pk, in_nw.pk}
    assert visible(world.other_handler) == {in_sw.pk}  # returned, but it was theirs once
    assert visible(world.handler) == set()
    assert visible(world.grid_worker) == {in_sw.pk, in_nw.pk}  # grid 3, and the one they reported in grid 1
    assert visible(world.other_worker) == {in_nw.pk}  # grid 1


def test_timeline_loads_rows_actors_and_photos_in_two_queries(world, django_assert_num_queries):
    case = report(world, POINT_SW, local(2026, 11, 16, 9, 0))
    services.case_file(case=case, actor=world.operator, at=local(2026, 11, 16, 9, 10))
    services.case_handle(case=case, actor=world.handler, comment="好了", photos=[jpeg()], at=local(2026, 11, 16, 10, 0))
    with django_assert_num_queries(2):
        timeline = list(selectors.case_timeline(case=case))
        summary = [(h.action, h.actor.username if h.actor else "系统", len(h.attachments.all())) for h in timeline]
    assert summary == [
        ("report", "worker", 1),
        ("file", "operator", 0),
        ("dispatch", "系统", 0),
        ("handle", "handler", 1),
    ]


def test_staff_bound_to_no_place_see_nothing_but_a_leader_bound_to_none_leads_the_district(world):
    """docs/security.md L6: an operator, shift leader or dispatcher without a street or a community
    sees, counts and may act on no case and no place; a leader without one is the district's."""
    case = report(world, POINT_SW, local(2026, 11, 16, 9, 0))
    for role in (Role.OPERATOR, Role.SHIFT_LEADER, Role.DISPATCHER):
        unbound = UserFactory(username=f"unbound-{role}", role=role)
        assert not selectors.cases_visible_to(user=unbound).exists()
        assert not selectors.cases_countable_by(user=unbound).exists()
        assert selectors.cases_countable_place(user=unbound) is None
        assert selectors.user_in_case_scope(user=unbound, case=case) is False
        assert selectors.case_actions_for(case=case, user=unbound) == []
        assert user_scope(unbound) == NOWHERE

    district_leader = UserFactory(username="district-leader", role=Role.LEADER)
    assert list(selectors.cases_visible_to(user=district_leader)) == [case]
    assert selectors.cases_countable_place(user=district_leader) == {}
    assert selectors.user_in_case_scope(user=district_leader, case=case) is True
    assert user_scope(district_leader) == Scope()
