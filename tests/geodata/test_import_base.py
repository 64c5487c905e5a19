"""What every layer importer shares: one-array look-ups, COPY and when it refreshes statistics,
the cached choices."""

import pytest
from django.db import connection

from geodata.importing import columns as c
from geodata.importing.layers.base import copy_rows, existing
from geodata.models import Household
from tests.factories import HouseholdFactory

pytestmark = pytest.mark.django_db


def _known_rows(table: str) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
        return cursor.fetchone()[0]


def test_copy_refreshes_the_statistics_of_a_table_it_more_than_doubles_only():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE import_probe (n int)")
    assert _known_rows("import_probe") == -1  # never analysed

    assert copy_rows("import_probe", ["n"], ([n] for n in range(1500))) == 1500
    assert _known_rows("import_probe") == 1500  # from nothing: analysed

    assert copy_rows("import_probe", ["n"], ([n] for n in range(1200))) == 1200
    assert _known_rows("import_probe") == 1500  # 1 200 onto 1 500: the statistics still describe it

    assert copy_rows("import_probe", ["n"], ([n] for n in range(1600))) == 1600
    assert _known_rows("import_probe") == 4300  # more rows than the statistics knew: analysed

    assert copy_rows("import_probe", ["n"], ([n] for n in range(999))) == 999
    assert _known_rows("import_probe") == 4300  # under ANALYZE_AFTER_ROWS: never


def test_existing_looks_values_up_in_one_array_and_ignores_empty_ones(django_assert_num_queries):
    first, second = HouseholdFactory(), HouseholdFactory()
    wanted = [first.code, "", "HH-NOT-THERE", second.code, first.code, *(f"X{n}" for n in range(20_000))]
    with django_assert_num_queries(1) as captured:
        found = existing(Household, "code", wanted, "id")
    assert found == {
        first.code: {"code": first.code, "id": first.pk},
        second.code: {"code": second.code, "id": second.pk},
    }
    assert "= ANY(" in captured.captured_queries[0]["sql"]
    with django_assert_num_queries(0):
        assert existing(Household, "code", ["", ""], "id") == {}


def test_existing_finds_values_with_the_characters_of_an_array_literal():
    odd = ['HH"1', "HH\\2", "HH,3", "{HH4}", "NULL", " HH6 ", "户7"]
    households = {code: HouseholdFactory(code=code).pk for code in odd}
    found = existing(Household, "code", [*odd, "HH1", "HH2"], "id")
    assert {code: row["id"] for code, row in found.items()} == households


def test_choices_are_read_by_code_or_label_and_refused_with_the_allowed_labels():
    assert c.choice("常住户", "户类型", Household.Type) == "resident"
    assert c.choice(" Resident ", "户类型", Household.Type) == "resident"
    assert c.choice("户籍", "户类型", Household.Type, extra={"户籍": "registered"}) == "registered"
    with pytest.raises(c.RowError, match="户类型“别墅”无法识别，可用："):
        c.choice("别墅", "户类型", Household.Type)
