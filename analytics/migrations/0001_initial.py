# SimulationRun moves from the portal app: its state is created here over the existing table
# (portal_simulationrun, created by portal.0001); portal.0003 drops the portal's state and 0002 renames the table.

import core.ids
import django.contrib.postgres.fields
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('core', '0001_initial'),
        ('portal', '0002_token_customer_fk'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='SimulationRun',
                    fields=[
                        ('id', models.CharField(default=core.ids.new_ulid, editable=False, max_length=26, primary_key=True, serialize=False)),
                        ('plan_key', models.CharField(max_length=256)),
                        ('plan_version', models.PositiveIntegerField()),
                        ('period_start', models.DateTimeField()),
                        ('period_end', models.DateTimeField()),
                        ('customer_ids', django.contrib.postgres.fields.ArrayField(base_field=models.CharField(max_length=26), blank=True, default=list, size=None)),
                        ('all_on_plan', models.CharField(blank=True, default='', help_text='Plan key whose current customers are simulated.', max_length=256)),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('running', 'Running'), ('done', 'Done'), ('failed', 'Failed')], default='pending', max_length=10)),
                        ('total', models.PositiveIntegerField(default=0)),
                        ('done', models.PositiveIntegerField(default=0)),
                        ('currency', models.CharField(blank=True, default='', max_length=3)),
                        ('results', models.JSONField(blank=True, default=list)),
                        ('error', models.TextField(blank=True, default='')),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='core.organization')),
                    ],
                    options={
                        'db_table': 'portal_simulationrun',
                        'ordering': ['-created_at', '-id'],
                        'indexes': [models.Index(fields=['organization', '-created_at'], name='portal_simu_organiz_5a1ea2_idx')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
