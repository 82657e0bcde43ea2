"""`make run`: migrate, load the demo, then run web (gunicorn), a Celery worker and Celery beat.

This process owns the embedded PostgreSQL (when DATABASE_URL is unset): it holds it while the
children run, and on Ctrl-C / SIGINT / SIGTERM (at any moment, also during migrate) it stops the
children, then the embedded server itself (`embedded_pg.server_stop`: pgserver's own last-process
bookkeeping cannot be trusted once a child was killed).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections

from config import embedded_pg

QUEUES = "default,metering,billing"


class Command(BaseCommand):
    help = "Run the whole stack: web server, Celery worker and Celery beat."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--no-demo", action="store_true")

    def handle(self, *args, **opts):
        procs: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(signum, _frame):
            nonlocal stopping
            if not procs and not stopping:
                stopping = True
                raise _Stop(128 + signum)  # still migrating: unwind to the finally below
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        exit_code = 0
        try:
            exit_code = self._run(opts, procs, lambda: stopping)
        except _Stop as exc:
            exit_code = exc.code
        finally:
            # A second Ctrl-C must not interrupt the shutdown itself.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self._stop_children(procs)
            stopped = "Stopped web, worker and beat"
            if settings.EMBEDDED_DATABASE:
                connections.close_all()
                embedded_pg.server_stop(embedded_pg.pg_dir(settings.DATA_DIR))
                stopped += " and the embedded PostgreSQL"
            self.stdout.write(stopped + ".")
        if exit_code:
            sys.exit(exit_code)

    def _run(self, opts, procs: dict[str, subprocess.Popen], stopping) -> int:
        call_command("migrate", interactive=False, verbosity=1)
        if not opts["no_demo"]:
            call_command("demo_load", base_url=f"http://{opts['host']}:{opts['port']}")
        connections.close_all()  # the children open their own
        python = sys.executable
        web_workers = os.environ.get("WEB_CONCURRENCY", "4")
        commands = {
            "web": [
                python,
                "-m",
                "gunicorn",
                "config.wsgi",
                "--bind",
                f"{opts['host']}:{opts['port']}",
                "--workers",
                web_workers,
                "--worker-class",
                "gthread",
                "--threads",
                "4",
                "--access-logfile",
                "-",
                "--graceful-timeout",
                "10",
            ],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-l",
                "info",
                "-Q",
                QUEUES,
                "--concurrency",
                os.environ.get("CELERY_CONCURRENCY", "2"),
                "-n",
                "worker@%h",
            ],
            "beat": [
                python,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "-l",
                "info",
                "--scheduler",
                settings.CELERY_BEAT_SCHEDULER,
            ],
        }
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        for name, cmd in commands.items():
            procs[name] = subprocess.Popen(cmd, env=env)
        self.stdout.write(
            self.style.SUCCESS(
                f"Serving on http://{opts['host']}:{opts['port']}/console/  (broker: {settings.CELERY_BROKER_KIND}; "
                "Ctrl-C stops everything)"
            )
        )
        while not stopping():
            for name, proc in procs.items():
                if proc.poll() is not None:
                    self.stderr.write(f"{name} exited with status {proc.returncode}; stopping the stack.")
                    return proc.returncode or 1
            time.sleep(0.2)
        return 0

    @staticmethod
    def _stop_children(procs: dict[str, subprocess.Popen]) -> None:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class _Stop(Exception):
    def __init__(self, code: int):
        self.code = code
