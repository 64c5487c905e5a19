"""Cells strictly inside one grid, for the point → grid look-up (docs/performance.md §2).

geodata_gridcell lists, per grid and for its validity period, the cells of 1/8000° whose
box (widened by 1e-9°, far more than the rounding of floor(x * 8000)) lies strictly inside
the grid and touches no other grid whose validity period overlaps. geodata.services takes a
point's grid from its cell when there is a row for the day, else it tests the grids
exactly; the answer is the same either way (only one grid can contain such a cell's points).

Statement-level triggers on geodata_grid keep the table for every writer (the ORM, redraws,
importers, SQL): after an insert, or an update of a grid's polygon or validity dates, the
changed grids' cells are computed afresh and cells of other grids that a changed grid now
touches in an overlapping period are removed. A row is never needed for correctness, only
for speed: loaders that switch triggers off call geodata_grid_cells_refresh(ids) after.
"""

import django.db.models.deletion
from django.db import migrations, models

FUNCTIONS = """
CREATE FUNCTION geodata_grid_cell_box(cell_y int, cell_x int) RETURNS geometry
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ST_Expand(ST_MakeEnvelope(cell_x / 8000.0, cell_y / 8000.0, (cell_x + 1) / 8000.0, (cell_y + 1) / 8000.0,
                                     4326), 1e-9)
$$;

CREATE FUNCTION geodata_grid_cells_refresh(ids bigint[]) RETURNS void LANGUAGE sql AS $$
    -- cells of other grids that a changed grid now touches in an overlapping period
    -- (a range on cell_y, the key's leading column: a join on generate_series made the
    -- planner scan the key by cell_x alone, ≈ 11 s a grid at scale 1)
    DELETE FROM geodata_gridcell c
    USING geodata_grid g
    WHERE g.id = ANY(ids) AND c.grid_id <> g.id
      AND c.cell_y BETWEEN floor(ST_YMin(g.geom) * 8000)::int AND floor(ST_YMax(g.geom) * 8000)::int
      AND c.cell_x BETWEEN floor(ST_XMin(g.geom) * 8000)::int AND floor(ST_XMax(g.geom) * 8000)::int
      AND c.valid_from < coalesce(g.valid_to, 'infinity') AND coalesce(c.valid_to, 'infinity') > g.valid_from
      AND ST_Intersects(g.geom, geodata_grid_cell_box(c.cell_y, c.cell_x));
    DELETE FROM geodata_gridcell WHERE grid_id = ANY(ids);
    INSERT INTO geodata_gridcell (cell_y, cell_x, grid_id, valid_from, valid_to)
    WITH changed AS (SELECT * FROM geodata_grid WHERE id = ANY(ids)),
    -- grids whose interior meets a changed grid's interior in an overlapping period: only
    -- these can touch a cell strictly inside it (none where the grids tile the ground)
    rivals AS (
        SELECT c.id AS grid_id, h.geom
        FROM changed c JOIN geodata_grid h ON h.id <> c.id AND h.geom && c.geom
         AND h.valid_from < coalesce(c.valid_to, 'infinity') AND coalesce(h.valid_to, 'infinity') > c.valid_from
         AND ST_Relate(h.geom, c.geom, 'T********')
    )
    SELECT cy, cx, g.id, g.valid_from, g.valid_to
    FROM changed g,
         generate_series(floor(ST_YMin(g.geom) * 8000)::int, floor(ST_YMax(g.geom) * 8000)::int) cy,
         generate_series(floor(ST_XMin(g.geom) * 8000)::int, floor(ST_XMax(g.geom) * 8000)::int) cx
    WHERE ST_ContainsProperly(g.geom, geodata_grid_cell_box(cy, cx))
      AND NOT EXISTS (
          SELECT 1 FROM rivals r WHERE r.grid_id = g.id AND ST_Intersects(r.geom, geodata_grid_cell_box(cy, cx))
      )
$$;

CREATE FUNCTION geodata_grid_cells_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM geodata_grid_cells_refresh(ARRAY(SELECT id FROM new_grids));
    RETURN NULL;
END
$$;

CREATE FUNCTION geodata_grid_cells_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM geodata_grid_cells_refresh(ARRAY(
        SELECT n.id FROM new_grids n JOIN old_grids o ON o.id = n.id
        WHERE ST_AsEWKB(n.geom) IS DISTINCT FROM ST_AsEWKB(o.geom)
           OR n.valid_from IS DISTINCT FROM o.valid_from OR n.valid_to IS DISTINCT FROM o.valid_to
    ));
    RETURN NULL;
END
$$;

CREATE FUNCTION geodata_grid_cells_before_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM geodata_gridcell WHERE grid_id = OLD.id;
    RETURN OLD;
END
$$;

CREATE TRIGGER grid_cells_insert AFTER INSERT ON geodata_grid
    REFERENCING NEW TABLE AS new_grids FOR EACH STATEMENT EXECUTE FUNCTION geodata_grid_cells_after_insert();
CREATE TRIGGER grid_cells_update AFTER UPDATE ON geodata_grid
    REFERENCING OLD TABLE AS old_grids NEW TABLE AS new_grids
    FOR EACH STATEMENT EXECUTE FUNCTION geodata_grid_cells_after_update();
CREATE TRIGGER grid_cells_delete BEFORE DELETE ON geodata_grid
    FOR EACH ROW EXECUTE FUNCTION geodata_grid_cells_before_delete();
"""

DROP_FUNCTIONS = """
DROP TRIGGER grid_cells_delete ON geodata_grid;
DROP TRIGGER grid_cells_update ON geodata_grid;
DROP TRIGGER grid_cells_insert ON geodata_grid;
DROP FUNCTION geodata_grid_cells_before_delete();
DROP FUNCTION geodata_grid_cells_after_update();
DROP FUNCTION geodata_grid_cells_after_insert();
DROP FUNCTION geodata_grid_cells_refresh(bigint[]);
DROP FUNCTION geodata_grid_cell_box(int, int);
"""

FILL = "SELECT geodata_grid_cells_refresh(ARRAY(SELECT id FROM geodata_grid))"


class Migration(migrations.Migration):
    dependencies = [
        ("geodata", "0006_view_population_permission"),
    ]

    operations = [
        migrations.CreateModel(
            name="GridCell",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("cell_y", models.IntegerField(verbose_name="行")),
                ("cell_x", models.IntegerField(verbose_name="列")),
                ("valid_from", models.DateField(verbose_name="启用日期")),
                ("valid_to", models.DateField(blank=True, null=True, verbose_name="停用日期")),
                (
                    "grid",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="geodata.grid",
                        verbose_name="网格",
                    ),
                ),
            ],
            options={
                "verbose_name": "网格内部格元",
                "verbose_name_plural": "网格内部格元",
                "indexes": [models.Index(fields=["grid"], name="grid_cell_grid_idx")],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("cell_y", "cell_x", "grid"), include=("valid_from", "valid_to"), name="grid_cell_key"
                    )
                ],
            },
        ),
        migrations.RunSQL(FUNCTIONS, reverse_sql=DROP_FUNCTIONS),
        migrations.RunSQL(FILL, reverse_sql=migrations.RunSQL.noop),
    ]
