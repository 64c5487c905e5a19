"""Department suggestions: facility maintainer, routing rules / category default, grid responsible unit."""

import pytest

from events import selectors, services
from events.models import Case, RoutingRule
from events.workflow import State
from tests.events.factories import POINT_SW, CategoryFactory, local
from tests.factories import DepartmentFactory, FacilityFactory

pytestmark = pytest.mark.django_db


def names(routing):
    return [(s.department.code, s.tier, s.reason) for s in routing.suggestions]


def test_facility_maintainer_comes_first_and_is_dispatched_automatically(world):
    maintainer = DepartmentFactory(code="ZY-PS", name="排水管理所")
    world.grid_sw.responsible_unit = DepartmentFactory(code="JW-01", name="测试社区居委会")
    world.grid_sw.save()
    facility = FacilityFactory(maintainer_department=maintainer, location=POINT_SW)
    routing = selectors.department_routing(category=world.category, grid=world.grid_sw, facility=facility)
    assert names(routing) == [
        ("ZY-PS", 1, "部件养护单位"),
        ("ZY-HW", 2, "类别默认部门"),
        ("JW-01", 3, "网格责任主体"),
    ]
    assert routing.automatic == maintainer

    case = services.case_report(
        actor=world.grid_worker,
        source=Case.Source.GRID_WORKER,
        category=world.category,
        location=POINT_SW,
        facility=facility,
        description="井盖破损",
        at=local(2026, 11, 16, 9, 0),
    )
    assert case.suggested_department == maintainer
    case = services.case_file(case=case, actor=world.operator, at=local(2026, 11, 16, 9, 10))
    assert (case.state, case.current_department) == (State.DISPATCHED, maintainer)


def test_two_rules_with_the_same_priority_leave_the_choice_to_the_dispatcher(world):
    category = CategoryFactory(minor_code="01", minor_name="私搭乱建", default_department=world.sanitation)
    enforcement = DepartmentFactory(code="ZY-CG", name="城管执法中队")
    construction = DepartmentFactory(code="ZY-JS", name="街道建设管理科")
    RoutingRule.objects.create(category=category, department=enforcement, priority=10)
    RoutingRule.objects.create(category=category, department=construction, priority=10)
    RoutingRule.objects.create(category=category, department=world.greening, priority=50)
    routing = selectors.department_routing(category=category, grid=world.grid_sw)
    assert names(routing) == [
        ("ZY-CG", 2, "派遣规则"),
        ("ZY-JS", 2, "派遣规则"),
        ("ZY-YL", 2, "派遣规则（备选）"),
    ]
    assert routing.automatic is None

    case = services.case_report(
        actor=world.grid_worker,
        source=Case.Source.GRID_WORKER,
        category=category,
        location=POINT_SW,
        description="违章搭建",
        at=local(2026, 11, 16, 9, 0),
    )
    case = services.case_file(case=case, actor=world.operator, at=local(2026, 11, 16, 9, 10))
    assert (case.state, case.current_department) == (State.FILED, None)


def test_rules_limited_to_another_street_do_not_apply(world):
    RoutingRule.objects.create(category=world.category, department=world.greening, street=world.other_street)
    routing = selectors.department_routing(category=world.category, grid=world.grid_sw)
    assert names(routing) == [("ZY-HW", 2, "类别默认部门")]
    RoutingRule.objects.create(category=world.category, department=world.greening, street=world.street)
    routing = selectors.department_routing(category=world.category, grid=world.grid_sw)
    assert names(routing) == [("ZY-YL", 2, "派遣规则")]
    assert routing.automatic == world.greening


def test_grid_responsible_unit_is_the_fallback(world):
    category = CategoryFactory(minor_code="05", minor_name="水域不洁", default_department=None)
    unit = DepartmentFactory(code="JW-01", name="测试社区居委会")
    assert selectors.department_routing(category=category, grid=world.grid_sw).suggestions == []
    world.grid_sw.responsible_unit = unit
    world.grid_sw.save()
    routing = selectors.department_routing(category=category, grid=world.grid_sw)
    assert names(routing) == [("JW-01", 3, "网格责任主体")]
    assert routing.automatic == unit
