"""`metering_event` partitioned by event month, with its dedup key in `metering_eventkey`; per-organization
event retention.

The existing table is converted in this migration's transaction and keeps every row: the partitioned
table is created beside it, a partition is created for each month that holds events (plus the months
around now), the rows are copied with their `seq`, their keys are copied into `metering_eventkey`, the
sequence continues after the largest `seq`, and the old table is dropped. The copy takes time on a large
table (storing events waits; accepting goes on into the inbox). Not reversible.
"""

# Partition names and column lists are fixed fragments; every value is a bound parameter.
# ruff: noqa: S608
from datetime import UTC, datetime

import django.db.models.deletion
from django.db import migrations, models

COLUMNS = "seq, organization_id, source, event_id, type, subject, time, data, stored_at"

CREATE = """
ALTER TABLE metering_event RENAME TO metering_event_unpartitioned;
ALTER INDEX metering_event_query RENAME TO metering_event_unpartitioned_query;
CREATE SEQUENCE metering_event_ingest_seq AS bigint;
CREATE TABLE metering_event (
    seq bigint NOT NULL DEFAULT nextval('metering_event_ingest_seq'),
    organization_id varchar(26) NOT NULL,
    source text NOT NULL,
    event_id text NOT NULL,
    type text NOT NULL,
    subject text NOT NULL,
    time timestamptz NOT NULL,
    data jsonb NULL,
    stored_at timestamptz NOT NULL
) PARTITION BY RANGE (time);
ALTER SEQUENCE metering_event_ingest_seq OWNED BY metering_event.seq;
CREATE INDEX metering_event_query ON metering_event (organization_id, type, subject, time);
CREATE INDEX metering_event_org_seq ON metering_event (organization_id, seq);
CREATE TABLE metering_event_default PARTITION OF metering_event DEFAULT;
"""


def convert(apps, schema_editor):
    # The partition helper of the running code (metering.store.partitions) is not used here: a migration
    # must keep doing what it did when it was written.
    with schema_editor.connection.cursor() as cur:
        cur.execute(CREATE)
        cur.execute(
            "SELECT DISTINCT date_trunc('month', time AT TIME ZONE 'UTC') FROM metering_event_unpartitioned "
            "WHERE time >= '1970-01-01' AND time < '2100-01-01'"
        )
        months = {m.replace(tzinfo=UTC) for (m,) in cur.fetchall()}
        now = datetime.now(UTC)
        current = now.year * 12 + now.month - 1
        months |= {datetime(i // 12, i % 12 + 1, 1, tzinfo=UTC) for i in range(current - 1, current + 4)}
        for month in sorted(months):
            i = month.year * 12 + month.month
            end = datetime(i // 12, i % 12 + 1, 1, tzinfo=UTC)
            cur.execute(
                f"CREATE TABLE metering_event_p{month:%Y%m} PARTITION OF metering_event "
                "FOR VALUES FROM (%s) TO (%s)",
                [month, end],
            )
        cur.execute(
            f"INSERT INTO metering_event ({COLUMNS}) SELECT {COLUMNS} FROM metering_event_unpartitioned"
        )
        cur.execute(
            "INSERT INTO metering_eventkey (organization_id, source, event_id, seq, time) "
            "SELECT organization_id, source, event_id, seq, time FROM metering_event_unpartitioned"
        )
        cur.execute(
            "SELECT setval('metering_event_ingest_seq', greatest(coalesce(max(seq), 0), "
            "coalesce(pg_sequence_last_value(pg_get_serial_sequence('metering_event_unpartitioned', 'seq')), 0), 1)) "
            "FROM metering_event_unpartitioned"
        )
        cur.execute("DROP TABLE metering_event_unpartitioned")


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0004_jobfailure"),
        ("metering", "0004_meter_event_from_in_range"),
    ]

    operations = [
        migrations.CreateModel(
            name="EventKey",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "organization",
                        "source",
                        "event_id",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "organization",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="core.organization",
                    ),
                ),
                ("source", models.TextField()),
                ("event_id", models.TextField()),
                ("seq", models.BigIntegerField()),
                ("time", models.DateTimeField()),
            ],
        ),
        migrations.CreateModel(
            name="EventRetention",
            fields=[
                (
                    "organization",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="core.organization",
                    ),
                ),
                ("days", models.PositiveIntegerField()),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(model_name="event", name="metering_event_dedup"),
                migrations.AddIndex(
                    model_name="event",
                    index=models.Index(fields=["organization", "seq"], name="metering_event_org_seq"),
                ),
            ],
            database_operations=[migrations.RunPython(convert, migrations.RunPython.noop)],
        ),
    ]
