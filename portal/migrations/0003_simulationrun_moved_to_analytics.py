# SimulationRun moved to the analytics app (analytics.0001 takes over its state and table).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('portal', '0002_token_customer_fk'),
        ('analytics', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='SimulationRun')],
            database_operations=[],
        ),
    ]
