# The moved SimulationRun takes this app's table and index names.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('analytics', '0001_initial'),
        ('portal', '0003_simulationrun_moved_to_analytics'),
    ]

    operations = [
        migrations.RenameIndex(
            model_name='simulationrun',
            new_name='analytics_s_organiz_0a8ad7_idx',
            old_name='portal_simu_organiz_5a1ea2_idx',
        ),
        migrations.AlterModelTable(
            name='simulationrun',
            table=None,
        ),
    ]
