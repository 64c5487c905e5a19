"""The personal-data reveal log is evidence: the database refuses to update or delete it."""

from django.db import migrations

FORWARD = """
CREATE FUNCTION geodata_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER personaldatareveal_append_only
    BEFORE UPDATE OR DELETE ON geodata_personaldatareveal
    FOR EACH ROW EXECUTE FUNCTION geodata_refuse_change();
"""
BACKWARD = """
DROP TRIGGER personaldatareveal_append_only ON geodata_personaldatareveal;
DROP FUNCTION geodata_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("geodata", "0002_person_reveal_permissions")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
