"""Case history is evidence: the database itself refuses UPDATE and DELETE on it."""

from django.db import migrations

CREATE = """
CREATE FUNCTION events_casehistory_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events_casehistory is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER events_casehistory_append_only
    BEFORE UPDATE OR DELETE ON events_casehistory
    FOR EACH ROW EXECUTE FUNCTION events_casehistory_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS events_casehistory_append_only ON events_casehistory;
DROP FUNCTION IF EXISTS events_casehistory_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("events", "0001_case_workflow")]

    operations = [migrations.RunSQL(CREATE, DROP)]
