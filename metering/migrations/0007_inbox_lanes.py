"""Drain lanes: a batch records how many lanes its events are split into, and which lanes stored their
share (metering.store.inbox). Existing rows are one lane, none done: drained as before."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("metering", "0006_eventkey_payload_hash"),
    ]

    operations = [
        migrations.AddField(
            model_name="inboxbatch",
            name="lanes",
            field=models.PositiveSmallIntegerField(db_default=1, default=1),
        ),
        migrations.AddField(
            model_name="inboxbatch",
            name="lanes_done",
            field=models.PositiveSmallIntegerField(db_default=0, default=0),
        ),
    ]
