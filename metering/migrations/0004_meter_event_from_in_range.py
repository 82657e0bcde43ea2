"""Meters saved before core.limits with an `eventFrom` outside [1970, 2100): such a value could not even be
read back (PostgreSQL kept years BC, Python cannot load them), which failed every organization's rollups.
Before 1970 means "every event" (no event before 1970 is accepted): NULL; 2100 or later counts nothing:
2100-01-01."""

from django.db import migrations

SQL = """
UPDATE metering_meter SET event_from = NULL WHERE event_from < '1970-01-01T00:00:00Z';
UPDATE metering_meter SET event_from = '2100-01-01T00:00:00Z' WHERE event_from >= '2100-01-01T00:00:00Z';
"""


class Migration(migrations.Migration):
    dependencies = [("metering", "0003_inbox")]

    operations = [migrations.RunSQL(SQL, reverse_sql=migrations.RunSQL.noop)]
