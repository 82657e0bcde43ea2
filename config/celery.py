import os

from celery import Celery, Task

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


class UnscopedTask(Task):
    """Every task runs outside a tenant scope (core/rls.py): background jobs work across tenants by
    design, and a task executed eagerly inside a request must not inherit that request's wall."""

    def __call__(self, *args, **kwargs):
        from core import rls  # here, not above: this module loads with the settings, before the apps

        with rls.unscoped():
            return super().__call__(*args, **kwargs)


app = Celery("meterline", task_cls=UnscopedTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
