"""综合评价 without joins (docs/performance.md §7).

- Case.first_source: the source of the earliest report among the case and the cases merged
  into it (漏报), filled for every case that absorbed a duplicate; null elsewhere.
- CaseHistory.street / community / grid: the case's place copied onto each history row.
- Covering indexes for the three kinds of indicator query, replacing the plain ones.

The history is append-only (trigger from 0002): the backfill disables that trigger for its
one UPDATE, inside this migration's transaction, and enables it again. The UPDATE rewrites
every history row, so it runs with as little to maintain as possible: the index it replaces
is dropped first and the new one built after, and the foreign keys are added once the
columns are filled (one validating scan instead of a key check and a row lock per row).
"""

import django.db.models.deletion
from django.db import migrations, models

FIRST_SOURCE = """
UPDATE events_case t
SET first_source = (
    SELECT c.source FROM events_case c
    WHERE c.id = t.id OR c.merged_into_id = t.id
    ORDER BY c.reported_at, c.id
    LIMIT 1
)
WHERE t.id IN (SELECT merged_into_id FROM events_case WHERE merged_into_id IS NOT NULL);
"""

PLACES = [
    ("street", "geodata.street", "geodata_street", "街道"),
    ("community", "geodata.community", "geodata_community", "社区"),
    ("grid", "geodata.grid", "geodata_grid", "网格"),
]

HISTORY_PLACE = (
    "ALTER TABLE events_casehistory "
    + ", ".join(f"ADD COLUMN {name}_id bigint NULL" for name, *_ in PLACES)
    + """;
ALTER TABLE events_casehistory DISABLE TRIGGER events_casehistory_append_only;
UPDATE events_casehistory h
SET street_id = c.street_id, community_id = c.community_id, grid_id = c.grid_id
FROM events_case c
WHERE c.id = h.case_id;
ALTER TABLE events_casehistory ENABLE TRIGGER events_casehistory_append_only;
ALTER TABLE events_casehistory """
    + ", ".join(
        f"ALTER COLUMN {name}_id SET NOT NULL, "
        f"ADD CONSTRAINT events_casehistory_{name}_id_fk_{table}_id FOREIGN KEY ({name}_id) "
        f"REFERENCES {table} (id) DEFERRABLE INITIALLY DEFERRED"
        for name, _, table, _ in PLACES
    )
    + ";"
)

HISTORY_PLACE_REVERSE = "ALTER TABLE events_casehistory " + ", ".join(f"DROP COLUMN {name}_id" for name, *_ in PLACES)


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0004_incident_rollup"),
        ("geodata", "0004_grid_design_proposals"),
    ]

    operations = [
        migrations.AddField(
            model_name="case",
            name="first_source",
            field=models.CharField(
                blank=True,
                choices=[
                    ("grid_worker", "网格员上报"),
                    ("hotline", "12345热线"),
                    ("public", "公众/Open311"),
                    ("video", "视频监控"),
                ],
                max_length=16,
                null=True,
                verbose_name="首报来源",
            ),
        ),
        migrations.RunSQL(FIRST_SOURCE, migrations.RunSQL.noop),
        migrations.RemoveIndex(model_name="case", name="case_due_idx"),
        migrations.RemoveIndex(model_name="case", name="case_filed_idx"),
        migrations.RemoveIndex(model_name="casehistory", name="history_action_time_idx"),
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(HISTORY_PLACE, HISTORY_PLACE_REVERSE)],
            state_operations=[
                migrations.AddField(
                    model_name="casehistory",
                    name=name,
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=model,
                        verbose_name=verbose,
                    ),
                )
                for name, model, _, verbose in PLACES
            ],
        ),
        migrations.AddIndex(
            model_name="case",
            index=models.Index(
                fields=["due_at"],
                include=(
                    "id",
                    "state",
                    "street",
                    "community",
                    "grid",
                    "current_department",
                    "closed_at",
                    "handled_at",
                ),
                name="case_due_cover_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="case",
            index=models.Index(
                fields=["filed_at"],
                include=("id", "street", "community", "grid", "source", "first_source"),
                name="case_filed_cover_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="casehistory",
            index=models.Index(
                fields=["action", "created_at"],
                include=("id", "street", "community", "grid", "department", "actor", "step_deadline"),
                name="history_action_time_cover_idx",
            ),
        ),
    ]
