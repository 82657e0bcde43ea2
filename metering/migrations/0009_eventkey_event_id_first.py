"""The dedup key's index leads with the event id, and `source` and `event_id` compare bytes (`C`): an insert's
descent settles nearly every comparison on the first column with `memcmp`, instead of reading the
organization (equal for all of its keys) and the source before reaching the id through `strcoll`
(metering.models.EventKey; measured in docs/performance.md).

The index is rebuilt: on a large table this takes a while (about 15 s for 10 million keys on the 2-core
reference machine) and holds the table's lock meanwhile. Ingest keeps being accepted (the inbox); drains
and reads that would drain wait until it is done. Reversible."""

from django.db import migrations, models

FORWARD = [
    "ALTER TABLE metering_eventkey DROP CONSTRAINT metering_eventkey_pkey",
    'ALTER TABLE metering_eventkey ALTER COLUMN event_id TYPE text COLLATE "C", '
    'ALTER COLUMN source TYPE text COLLATE "C"',
    "ALTER TABLE metering_eventkey ADD CONSTRAINT metering_eventkey_pkey "
    "PRIMARY KEY (event_id, source, organization_id)",
]
BACKWARD = [
    "ALTER TABLE metering_eventkey DROP CONSTRAINT metering_eventkey_pkey",
    'ALTER TABLE metering_eventkey ALTER COLUMN event_id TYPE text COLLATE "default", '
    'ALTER COLUMN source TYPE text COLLATE "default"',
    "ALTER TABLE metering_eventkey ADD CONSTRAINT metering_eventkey_pkey "
    "PRIMARY KEY (organization_id, source, event_id)",
]


class Migration(migrations.Migration):
    dependencies = [("metering", "0008_inbox_lane_ends")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(FORWARD, BACKWARD)],
            state_operations=[
                migrations.AlterField(
                    model_name="eventkey", name="event_id", field=models.TextField(db_collation="C")
                ),
                migrations.AlterField(
                    model_name="eventkey", name="source", field=models.TextField(db_collation="C")
                ),
                migrations.AlterField(
                    model_name="eventkey",
                    name="pk",
                    field=models.CompositePrimaryKey(
                        "event_id",
                        "source",
                        "organization",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
            ],
        )
    ]
