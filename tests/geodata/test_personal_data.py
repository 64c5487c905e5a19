import pytest
from django.db import ProgrammingError, transaction
from django.urls import reverse

from accounts.models import Role
from geodata import pii
from geodata.models import GridAssignment, PersonalDataReveal
from geodata.services import PersonalDataRevealRefused, personal_data_reveal
from tests.factories import BuildingFactory, HouseholdFactory, PersonFactory, UserFactory


@pytest.fixture
def resident(district):
    grid = district["grids"][0]
    building = BuildingFactory(grid=grid)
    household = HouseholdFactory(building=building, grid=grid)
    return PersonFactory(household=household, phone_encrypted=pii.encrypt("13812345678"), phone_masked="138****5678")


def test_grid_worker_reveals_a_resident_of_their_grid_and_the_reveal_is_logged(resident):
    worker = UserFactory(role=Role.GRID_WORKER)
    GridAssignment.objects.create(grid=resident.household.grid, worker=worker)
    assert personal_data_reveal(user=worker, person=resident, field="phone", reason="入户核查") == "13812345678"
    log = PersonalDataReveal.objects.get()
    assert (log.user, log.person, log.field, log.reason) == (worker, resident, "phone", "入户核查")


@pytest.mark.parametrize(
    ("role", "assigned", "reason", "message"),
    [
        (Role.GRID_WORKER, False, "入户核查", "不在您的负责范围内"),
        (Role.PLANNER, False, "统计", "无权查看"),
        (Role.DISPATCHER, False, "派遣", "无权查看"),
        (Role.GRID_WORKER, True, " ", "请填写查看原因"),
    ],
)
def test_refused_reveals_log_nothing(resident, role, assigned, reason, message):
    user = UserFactory(role=role)
    if assigned:
        GridAssignment.objects.create(grid=resident.household.grid, worker=user)
    with pytest.raises(PersonalDataRevealRefused, match=message):
        personal_data_reveal(user=user, person=resident, field="id_number", reason=reason)
    assert PersonalDataReveal.objects.count() == 0


def test_admin_lists_only_masked_values_and_reveal_page_logs(client, resident):
    admin_user = UserFactory(role=Role.ADMIN, is_staff=True, is_superuser=True)
    client.force_login(admin_user)
    clear_id = pii.decrypt(resident.id_number_encrypted)
    listing = client.get(reverse("admin:geodata_person_changelist")).content.decode()
    assert resident.id_number_masked in listing and clear_id not in listing
    change = client.get(reverse("admin:geodata_person_change", args=[resident.pk])).content.decode()
    assert clear_id not in change and "13812345678" not in change

    url = reverse("admin:geodata_person_reveal", args=[resident.pk])
    refused = client.post(url, {"field": "id_number", "reason": ""})
    assert clear_id not in refused.content.decode()
    assert PersonalDataReveal.objects.count() == 0
    shown = client.post(url, {"field": "id_number", "reason": "核对户籍"})
    assert clear_id in shown.content.decode()
    assert PersonalDataReveal.objects.filter(user=admin_user, field="id_number", reason="核对户籍").count() == 1


def test_the_reveal_log_cannot_be_edited_or_deleted(resident):
    worker = UserFactory(role=Role.GRID_WORKER)
    GridAssignment.objects.create(grid=resident.household.grid, worker=worker)
    personal_data_reveal(user=worker, person=resident, field="phone", reason="入户核查")
    with pytest.raises(ProgrammingError, match="append-only"), transaction.atomic():
        PersonalDataReveal.objects.update(reason="改写")
    with pytest.raises(ProgrammingError, match="append-only"), transaction.atomic():
        PersonalDataReveal.objects.all().delete()
    assert PersonalDataReveal.objects.get().reason == "入户核查"
