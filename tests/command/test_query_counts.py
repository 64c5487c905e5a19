"""The lists cost a fixed number of queries, plus one per row only where a per-case selector is asked.

The queue asks `case_duplicate_candidates` (operators: 合并) or `case_department_routing`
(dispatchers: 派遣) once per row on the page; everything else is joined or batched.
"""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events.models import Case
from tests.command.flows import logged_in
from tests.events.factories import CaseFactory

pytestmark = pytest.mark.django_db


def queries(world, *, rows: int, state: str, who: str, url: str) -> int:
    start = timezone.now() - dt.timedelta(days=1)
    for n in range(rows):
        CaseFactory(
            number=f"E0102202611207{n:03d}",
            grid=world.grid_sw,
            state=state,
            reported_at=start,
            current_department=world.sanitation if state == "dispatched" else None,
        )
    client = logged_in(getattr(world, who))
    client.get(url)  # session and permission caches warm
    with CaptureQueriesContext(connection) as context:
        assert client.get(url).status_code == 200
    return len(context.captured_queries)


@pytest.mark.parametrize(
    ("state", "who", "url", "per_row"),
    [
        ("reported", "operator", "/command/?tab=reported", 1),  # duplicate candidates
        ("filed", "dispatcher", "/command/?tab=filed", 1),  # routing rules of the category
        ("filed", "operator", "/command/?tab=filed", 1),  # duplicate candidates (合并 is still possible)
        ("dispatched", "leader", "/command/?tab=dispatched", 0),
        ("dispatched", "handler", "/command/department/", 0),
    ],
)
def test_queries_per_row(world, state, who, url, per_row):
    one = queries(world, rows=1, state=state, who=who, url=url)
    Case.objects.all().delete()
    thirty = queries(world, rows=30, state=state, who=who, url=url)
    assert thirty - one == 29 * per_row
