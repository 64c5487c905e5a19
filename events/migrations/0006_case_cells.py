"""Cases by fine cell: the index behind events.selectors.count_cases_within (docs/performance.md §6).

A B-tree on the case location's cell of 0.0005° × 0.0005° (≈ 48 × 55 m here), row by row,
carrying the location and the columns the within-distance counts filter on. A count of the
cases within some hundred metres reads one contiguous key range per cell row, from the index
alone (no visit of the cases' heap pages, which lie in time order), and tests the distance
exactly only in the cells the circle's edge crosses. The expressions must stay identical to
events.selectors._CELL_X / _CELL_Y, or the planner will not use the index.
"""

from django.db import migrations

CREATE = """
CREATE INDEX case_cell_idx ON events_case (
    (floor(ST_Y(location) * 2000)::int), (floor(ST_X(location) * 2000)::int)
) INCLUDE (location, reported_at, state, category_id)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0005_indicator_columns"),
    ]

    operations = [
        migrations.RunSQL(CREATE, reverse_sql="DROP INDEX case_cell_idx"),
    ]
