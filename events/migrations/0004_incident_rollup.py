"""Incident rollups per grid × local day / month / year, kept by triggers on events_case.

The tables answer the dashboard's incident layers over long periods (docs/dashboard.md,
docs/performance.md §4). Triggers, not application code, keep them: every write to
events_case — services, bulk loaders, SQL by hand — updates them in its own transaction.
The SQL is frozen here; events.rollups.incident_rollups_rebuild repeats the backfill for
loaders that run with triggers off.
"""

import zoneinfo

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# The zone is written into the functions; a later change of TIME_ZONE needs a migration
# that redefines events_incident_day_of and rebuilds the tables.
ZONE = zoneinfo.ZoneInfo(settings.TIME_ZONE).key

FUNCTIONS_AND_TRIGGERS = """
-- The local day of a moment, in the zone the product counts days in (settings.TIME_ZONE).
CREATE FUNCTION events_incident_day_of(moment timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT (moment AT TIME ZONE '__ZONE__')::date $$;

-- Whether a case in `state` is an incident (maps.selectors.NOT_INCIDENTS: 作废, 合并).
CREATE FUNCTION events_incident_counts(case_state text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT case_state NOT IN ('voided', 'merged') $$;

-- Add signed deltas per (day, grid, community, street) to the day, month and year tables.
-- One INSERT ... ON CONFLICT per table, rows in key order, so that concurrent writers lock
-- rollup rows in the same order (no deadlock between them). PL/pgSQL, not SQL: its plans are
-- kept for the session (a SQL function's are made again at every call, ≈ 0.5 ms a report).
CREATE FUNCTION events_incident_rollup_add(
    days date[], grids bigint[], communities bigint[], streets bigint[], deltas integer[]
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events_incident_day AS r (day, grid_id, community_id, street_id, incidents)
    SELECT d, g, c, s, sum(n) FROM unnest(days, grids, communities, streets, deltas) AS t(d, g, c, s, n)
    GROUP BY d, g, c, s HAVING sum(n) <> 0 ORDER BY d, g, c, s
    ON CONFLICT (day, grid_id, community_id, street_id) DO UPDATE SET incidents = r.incidents + EXCLUDED.incidents;
    INSERT INTO events_incident_month AS r (month, grid_id, community_id, street_id, incidents)
    SELECT date_trunc('month', d::timestamp)::date AS m, g, c, s, sum(n)
    FROM unnest(days, grids, communities, streets, deltas) AS t(d, g, c, s, n)
    GROUP BY m, g, c, s HAVING sum(n) <> 0 ORDER BY m, g, c, s
    ON CONFLICT (month, grid_id, community_id, street_id) DO UPDATE SET incidents = r.incidents + EXCLUDED.incidents;
    INSERT INTO events_incident_year AS r (year, grid_id, community_id, street_id, incidents)
    SELECT date_trunc('year', d::timestamp)::date AS y, g, c, s, sum(n)
    FROM unnest(days, grids, communities, streets, deltas) AS t(d, g, c, s, n)
    GROUP BY y, g, c, s HAVING sum(n) <> 0 ORDER BY y, g, c, s
    ON CONFLICT (year, grid_id, community_id, street_id) DO UPDATE SET incidents = r.incidents + EXCLUDED.incidents;
END;
$$;

-- INSERT and DELETE: one call per statement over its transition table (bulk loads stay set-based).
CREATE FUNCTION events_incident_rollup_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM events_incident_rollup_add(array_agg(d), array_agg(g), array_agg(c), array_agg(s), array_agg(n))
    FROM (
        SELECT events_incident_day_of(reported_at) AS d, grid_id AS g, community_id AS c, street_id AS s,
               count(*)::integer AS n
        FROM inserted WHERE events_incident_counts(state) GROUP BY 1, 2, 3, 4
    ) t HAVING count(*) > 0;
    RETURN NULL;
END;
$$;

CREATE FUNCTION events_incident_rollup_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM events_incident_rollup_add(array_agg(d), array_agg(g), array_agg(c), array_agg(s), array_agg(n))
    FROM (
        SELECT events_incident_day_of(reported_at) AS d, grid_id AS g, community_id AS c, street_id AS s,
               -count(*)::integer AS n
        FROM deleted WHERE events_incident_counts(state) GROUP BY 1, 2, 3, 4
    ) t HAVING count(*) > 0;
    RETURN NULL;
END;
$$;

-- UPDATE: per row, and only for rows whose counting changes (the WHEN clause below), so the
-- many updates that only move a case along its open steps cost nothing here.
CREATE FUNCTION events_incident_rollup_updated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was boolean := events_incident_counts(OLD.state);
    is_now boolean := events_incident_counts(NEW.state);
BEGIN
    IF was AND is_now THEN
        PERFORM events_incident_rollup_add(
            ARRAY[events_incident_day_of(OLD.reported_at), events_incident_day_of(NEW.reported_at)],
            ARRAY[OLD.grid_id, NEW.grid_id], ARRAY[OLD.community_id, NEW.community_id],
            ARRAY[OLD.street_id, NEW.street_id], ARRAY[-1, 1]);
    ELSIF was THEN
        PERFORM events_incident_rollup_add(
            ARRAY[events_incident_day_of(OLD.reported_at)], ARRAY[OLD.grid_id], ARRAY[OLD.community_id],
            ARRAY[OLD.street_id], ARRAY[-1]);
    ELSIF is_now THEN
        PERFORM events_incident_rollup_add(
            ARRAY[events_incident_day_of(NEW.reported_at)], ARRAY[NEW.grid_id], ARRAY[NEW.community_id],
            ARRAY[NEW.street_id], ARRAY[1]);
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION events_incident_rollup_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM events_incident_day;
    DELETE FROM events_incident_month;
    DELETE FROM events_incident_year;
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_case_incident_rollup_insert
    AFTER INSERT ON events_case REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION events_incident_rollup_inserted();
CREATE TRIGGER events_case_incident_rollup_delete
    AFTER DELETE ON events_case REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION events_incident_rollup_deleted();
CREATE TRIGGER events_case_incident_rollup_update
    AFTER UPDATE OF state, reported_at, grid_id, community_id, street_id ON events_case
    FOR EACH ROW
    WHEN (
        events_incident_counts(OLD.state) IS DISTINCT FROM events_incident_counts(NEW.state)
        OR (events_incident_counts(NEW.state) AND (
            events_incident_day_of(OLD.reported_at) IS DISTINCT FROM events_incident_day_of(NEW.reported_at)
            OR OLD.grid_id IS DISTINCT FROM NEW.grid_id
            OR OLD.community_id IS DISTINCT FROM NEW.community_id
            OR OLD.street_id IS DISTINCT FROM NEW.street_id
        ))
    )
    EXECUTE FUNCTION events_incident_rollup_updated();
CREATE TRIGGER events_case_incident_rollup_truncate
    AFTER TRUNCATE ON events_case
    FOR EACH STATEMENT EXECUTE FUNCTION events_incident_rollup_truncated();
""".replace("__ZONE__", ZONE)  # a validated zone name, not user input

BACKFILL = """
LOCK TABLE events_case IN SHARE MODE;
INSERT INTO events_incident_day (day, grid_id, community_id, street_id, incidents)
SELECT events_incident_day_of(reported_at), grid_id, community_id, street_id, count(*)
FROM events_case WHERE events_incident_counts(state) GROUP BY 1, 2, 3, 4;
INSERT INTO events_incident_month (month, grid_id, community_id, street_id, incidents)
SELECT date_trunc('month', day::timestamp)::date, grid_id, community_id, street_id, sum(incidents)
FROM events_incident_day GROUP BY 1, 2, 3, 4;
INSERT INTO events_incident_year (year, grid_id, community_id, street_id, incidents)
SELECT date_trunc('year', month::timestamp)::date, grid_id, community_id, street_id, sum(incidents)
FROM events_incident_month GROUP BY 1, 2, 3, 4;
"""

DROP = """
DROP TRIGGER IF EXISTS events_case_incident_rollup_insert ON events_case;
DROP TRIGGER IF EXISTS events_case_incident_rollup_delete ON events_case;
DROP TRIGGER IF EXISTS events_case_incident_rollup_update ON events_case;
DROP TRIGGER IF EXISTS events_case_incident_rollup_truncate ON events_case;
DROP FUNCTION IF EXISTS events_incident_rollup_inserted();
DROP FUNCTION IF EXISTS events_incident_rollup_deleted();
DROP FUNCTION IF EXISTS events_incident_rollup_updated();
DROP FUNCTION IF EXISTS events_incident_rollup_truncated();
DROP FUNCTION IF EXISTS events_incident_rollup_add(date[], bigint[], bigint[], bigint[], integer[]);
DROP FUNCTION IF EXISTS events_incident_counts(text);
DROP FUNCTION IF EXISTS events_incident_day_of(timestamptz);
"""


def _rollup(name, period_field, period_label, table, label, constraints):
    return migrations.CreateModel(
        name=name,
        fields=[
            ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
            ("incidents", models.IntegerField(verbose_name="案件数")),
            (period_field, models.DateField(verbose_name=period_label)),
            (
                "community",
                models.ForeignKey(
                    db_constraint=False,
                    db_index=False,
                    on_delete=django.db.models.deletion.DO_NOTHING,
                    related_name="+",
                    to="geodata.community",
                    verbose_name="社区",
                ),
            ),
            (
                "grid",
                models.ForeignKey(
                    db_constraint=False,
                    db_index=False,
                    on_delete=django.db.models.deletion.DO_NOTHING,
                    related_name="+",
                    to="geodata.grid",
                    verbose_name="网格",
                ),
            ),
            (
                "street",
                models.ForeignKey(
                    db_constraint=False,
                    db_index=False,
                    on_delete=django.db.models.deletion.DO_NOTHING,
                    related_name="+",
                    to="geodata.street",
                    verbose_name="街道",
                ),
            ),
        ],
        options={
            "verbose_name": label,
            "verbose_name_plural": label,
            "db_table": table,
            "constraints": constraints,
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0003_case_dashboard_indexes"),
        ("geodata", "0004_grid_design_proposals"),
    ]

    operations = [
        _rollup(
            "IncidentDay",
            "day",
            "日期",
            "events_incident_day",
            "网格日案件数",
            [models.UniqueConstraint(fields=("day", "grid", "community", "street"), name="incident_day_key")],
        ),
        _rollup(
            "IncidentMonth",
            "month",
            "月份（当月1日）",
            "events_incident_month",
            "网格月案件数",
            [
                models.UniqueConstraint(fields=("month", "grid", "community", "street"), name="incident_month_key"),
                models.CheckConstraint(condition=models.Q(("month__day", 1)), name="incident_month_first_day"),
            ],
        ),
        _rollup(
            "IncidentYear",
            "year",
            "年份（1月1日）",
            "events_incident_year",
            "网格年案件数",
            [
                models.UniqueConstraint(fields=("year", "grid", "community", "street"), name="incident_year_key"),
                models.CheckConstraint(
                    condition=models.Q(("year__month", 1), ("year__day", 1)), name="incident_year_first_day"
                ),
            ],
        ),
        migrations.RunSQL(FUNCTIONS_AND_TRIGGERS, DROP),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
    ]
