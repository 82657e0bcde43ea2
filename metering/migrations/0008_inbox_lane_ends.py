"""Batches split by lane at accept: the body holds one JSON array per lane, back to back, and `lane_ends`
the byte offset where each ends (metering.store.inbox). Existing rows keep NULL: drained as before."""

import django.contrib.postgres.fields
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("metering", "0007_inbox_lanes"),
    ]

    operations = [
        migrations.AddField(
            model_name="inboxbatch",
            name="lane_ends",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.IntegerField(), blank=True, null=True, size=None
            ),
        ),
    ]
