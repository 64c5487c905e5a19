"""Evidence and catalogue: append-only history in the database, the generated workflow doc,
the catalogue loader and the admin pages."""

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from events import services
from events.management.commands.workflow_diagram import DOC_PATH, render
from events.models import Case, CaseHistory, Category, RoutingRule
from geodata.models import Department, FacilityType
from tests.events.factories import POINT_SW, local
from tests.factories import UserFactory

FIXTURE = Path(settings.BASE_DIR) / "fixtures" / "categories.json"


@pytest.mark.django_db
def test_history_rows_cannot_be_updated_or_deleted(world):
    services.case_report(
        actor=world.grid_worker,
        source=Case.Source.GRID_WORKER,
        category=world.category,
        location=POINT_SW,
        description="垃圾",
        at=local(2026, 11, 16, 9, 0),
    )
    row = CaseHistory.objects.get()
    for attempt in (
        lambda: CaseHistory.objects.filter(pk=row.pk).update(comment="改过"),
        lambda: CaseHistory.objects.filter(pk=row.pk).delete(),
        lambda: connection.cursor().execute("UPDATE events_casehistory SET actor_id = NULL"),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            attempt()
    row.refresh_from_db()
    assert (row.comment, row.actor) == ("", world.grid_worker)


def test_workflow_doc_is_generated_from_the_transition_table():
    text = DOC_PATH.read_text(encoding="utf-8")
    assert render(text) == text, "docs/workflow.md is out of date: run `manage.py workflow_diagram`"
    assert "stateDiagram-v2" in text
    assert "handled --> dispatched: 核查不通过（返工）" in text


@pytest.mark.django_db
def test_catalogue_loader_is_idempotent_and_keeps_admin_edits():
    data = json.loads(FIXTURE.read_text(encoding="utf-8"))
    call_command("load_case_categories", verbosity=0)
    categories = len(data["categories"])
    assert Category.objects.count() == categories >= 40
    assert Department.objects.filter(code__startswith="ZY-").count() == len(data["departments"])
    assert set(Category.objects.values_list("kind", flat=True)) == {"C", "E"}
    manhole = Category.objects.get(kind="C", major_code="01", minor_code="01")
    assert (manhole.minor_name, manhole.default_department.code) == ("上水井盖", "ZY-GS")
    assert manhole.facility_type == FacilityType.objects.get(major_code="01", minor_code="01")
    assert Category.objects.filter(kind="E", facility_type__isnull=False).count() == 0
    assert RoutingRule.objects.filter(category__minor_name="私搭乱建").count() == 2

    # An administrator shortens a limit; loading again changes nothing
    Category.objects.filter(pk=manhole.pk).update(handling_normal_a=3)
    counts = services.category_catalogue_load(data=data)
    assert counts == {"departments_created": 0, "categories_created": 0, "categories_updated": 0, "rules_created": 0}
    assert Category.objects.count() == categories
    manhole.refresh_from_db()
    assert manhole.handling_normal_a == 3
    # ... unless asked to overwrite
    counts = services.category_catalogue_load(data=data, overwrite=True)
    assert counts["categories_updated"] == 1
    manhole.refresh_from_db()
    assert manhole.handling_normal_a == 4


@pytest.mark.django_db
def test_admin_pages_open(client, world):
    admin = UserFactory(username="root", is_staff=True, is_superuser=True, role="admin")
    client.force_login(admin)
    services.case_report(
        actor=world.grid_worker,
        source=Case.Source.GRID_WORKER,
        category=world.category,
        location=POINT_SW,
        description="垃圾",
        at=local(2026, 11, 16, 9, 0),
    )
    case = Case.objects.get()
    for name in (
        "category",
        "routingrule",
        "gridareaclass",
        "workingdayoverride",
        "case",
        "casehistory",
        "casephoto",
        "casealert",
        "indicatorsnapshot",
    ):
        response = client.get(reverse(f"admin:events_{name}_changelist"))
        assert response.status_code == 200, name
    assert client.get(reverse("admin:events_category_change", args=[world.category.pk])).status_code == 200
    assert client.get(reverse("admin:events_case_change", args=[case.pk])).status_code == 200
    # The calendar page warns about 2027 (no 调休 data yet)
    response = client.get(reverse("admin:events_workingdayoverride_changelist"))
    assert "2027 年" in response.content.decode()
