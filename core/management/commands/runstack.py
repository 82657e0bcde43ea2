"""`make run`: migrate, load the demo, then run web (gunicorn), a Celery worker and Celery beat.

This process holds the embedded PostgreSQL (when DATABASE_URL is unset) for as long as the
children run, and stops them all on Ctrl-C / SIGTERM.
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

QUEUES = "default,metering,billing"


class Command(BaseCommand):
    help = "Run the whole stack: web server, Celery worker and Celery beat."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--no-demo", action="store_true")

    def handle(self, *args, **opts):
        call_command("migrate", interactive=False, verbosity=1)
        if not opts["no_demo"]:
            call_command("demo_load", base_url=f"http://{opts['host']}:{opts['port']}")
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
        procs = {name: subprocess.Popen(cmd, env=env) for name, cmd in commands.items()}
        self.stdout.write(
            self.style.SUCCESS(
                f"Serving on http://{opts['host']}:{opts['port']}/console/  (broker: {settings.CELERY_BROKER_KIND}; "
                "Ctrl-C stops everything)"
            )
        )
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        exit_code = 0
        while not stopping:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    self.stderr.write(f"{name} exited with status {proc.returncode}; stopping the stack.")
                    exit_code = proc.returncode or 1
                    stopping = True
                    break
            time.sleep(0.5)
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        self.stdout.write("Stopped web, worker and beat.")
        if exit_code:
            sys.exit(exit_code)
