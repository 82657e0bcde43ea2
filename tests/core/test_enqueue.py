"""core.enqueue: services queue tasks by registered name (no import of tasks.py), inline when eager."""

import os
import subprocess
import sys

import pytest

from core.enqueue import enqueue, enqueue_on_commit, task_by_name, tasks_run_inline
from core.models import Heartbeat

pytestmark = pytest.mark.django_db


def test_enqueue_runs_the_named_task_inline_when_eager():
    assert tasks_run_inline()
    enqueue("core.tasks.heartbeat")
    assert Heartbeat.objects.get(name="beat").runs == 1


def test_enqueue_on_commit_waits_for_the_commit(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        enqueue_on_commit("core.tasks.heartbeat")
        assert not Heartbeat.objects.exists()  # queued, not run, inside the transaction
    assert len(callbacks) == 1
    assert Heartbeat.objects.get(name="beat").runs == 1


def test_an_unknown_task_name_fails_in_the_caller(django_capture_on_commit_callbacks):
    with pytest.raises(LookupError, match=r"metering\.tasks\.no_such_task"):
        task_by_name("metering.tasks.no_such_task")
    with django_capture_on_commit_callbacks(execute=False) as callbacks, pytest.raises(LookupError):
        enqueue_on_commit("metering.tasks.no_such_task")
    assert callbacks == []


def test_a_task_module_nobody_imported_is_found_by_name():
    """A web process may never have imported an app's tasks.py: the name is found through Celery's own
    discovery of the installed apps' task modules (checked in a fresh interpreter)."""
    code = (
        "import sys, django; django.setup(); "
        "assert 'metering.tasks' not in sys.modules; "
        "from core.enqueue import task_by_name; "
        "print(task_by_name('metering.tasks.events_drain').name)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "metering.tasks.events_drain"
