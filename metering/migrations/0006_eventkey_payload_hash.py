"""The dedup key keeps a hash of the event's payload, so a drain tells an identical resend from a
conflict with one primary-key probe (no read of the stored event). Existing keys get the hash of their
stored event, computed as metering.store.events.PAYLOAD_HASH does."""

from django.db import migrations, models

FILL = (
    "UPDATE metering_eventkey k SET payload_hash = hashtextextended(concat_ws(chr(31), e.type, e.subject, "
    "extract(epoch FROM e.time)::text, coalesce(e.data::text, chr(30))), 0) "
    "FROM metering_event e WHERE e.organization_id = k.organization_id AND e.seq = k.seq AND e.time = k.time"
)


class Migration(migrations.Migration):
    dependencies = [("metering", "0005_event_partitions")]

    operations = [
        migrations.AddField(
            model_name="eventkey",
            name="payload_hash",
            field=models.BigIntegerField(default=0),
        ),
        migrations.RunSQL(FILL, migrations.RunSQL.noop),
    ]
