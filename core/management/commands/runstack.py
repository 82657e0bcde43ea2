"""`make run`: migrate, load the demo, then run web (gunicorn), a Celery worker and Celery beat, and
print one banner (console URL, login, API key, portal link) last, once `/healthz` shows the web server,
the broker and a heartbeat run by the worker since this start: everything is up.

This process owns the embedded PostgreSQL (when DATABASE_URL is unset): it holds it while the
children run, and on Ctrl-C / SIGINT / SIGTERM (at any moment, also during migrate) it stops the
children, then the embedded server itself (`embedded_pg.server_stop`: pgserver's own last-process
bookkeeping cannot be trusted once a child was killed).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections

from config import embedded_pg

QUEUES = "default,metering,billing"
READY_TIMEOUT_SECONDS = 120


def stack_ready(report: dict, *, since: datetime) -> bool:
    """Whether a `/healthz` report shows the whole stack up: database and broker ok, and a heartbeat
    (scheduled by beat, run by a worker) newer than `since`, so the background jobs of this start run."""
    beat = report.get("beat") or {}
    if (report.get("database") or {}).get("status") != "ok" or (report.get("broker") or {}).get(
        "status"
    ) != "ok":
        return False
    if beat.get("status") != "ok" or not beat.get("lastRunAt"):
        return False
    return datetime.fromisoformat(beat["lastRunAt"]) >= since


def banner(*, lines: list[str], jobs_up: bool, broker: str) -> str:
    """The last thing `make run` prints: what to open, the login and the key, in one framed block."""
    state = (
        "web, worker and beat are running"
        if jobs_up
        else "the web server is running; background jobs have not answered yet (see /healthz)"
    )
    body = [f"Meterline is up: {state} (broker: {broker}).", *lines, "Ctrl-C stops everything."]
    rule = "=" * max(len(line) for line in body)
    return "\n".join(["", rule, *body, rule, ""])


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
        started = datetime.now().astimezone()
        base = f"http://{opts['host']}:{opts['port']}"
        call_command("migrate", interactive=False, verbosity=1)
        demo = io.StringIO()  # kept for the banner, printed once everything is up
        if not opts["no_demo"]:
            call_command("demo_load", base_url=base, stdout=demo)
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
                os.environ.get("CELERY_LOG_LEVEL", "warning"),
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
                os.environ.get("CELERY_LOG_LEVEL", "warning"),
                "--scheduler",
                settings.CELERY_BEAT_SCHEDULER,
            ],
        }
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        for name, cmd in commands.items():
            procs[name] = subprocess.Popen(cmd, env=env)
        wildcard = opts["host"] in ("0.0.0.0", "::", "")  # noqa: S104 - probe a wildcard bind on loopback
        probe_host = "127.0.0.1" if wildcard else opts["host"]
        probe = f"http://{probe_host}:{opts['port']}/healthz"
        jobs_up = False
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not stopping() and time.monotonic() < deadline and not jobs_up:
            if (code := self._exited(procs)) is not None:
                return code
            jobs_up = stack_ready(_health(probe), since=started)
            time.sleep(0.5)
        if stopping():
            return 0
        lines = [line for line in demo.getvalue().splitlines() if line.strip()]
        lines = lines or [f"Console:  {base}/console/"]
        self.stdout.write(
            self.style.SUCCESS(banner(lines=lines, jobs_up=jobs_up, broker=settings.CELERY_BROKER_KIND))
        )
        self.stdout.flush()
        while not stopping():
            if (code := self._exited(procs)) is not None:
                return code
            time.sleep(0.2)
        return 0

    def _exited(self, procs: dict[str, subprocess.Popen]) -> int | None:
        """The exit status to stop the stack with when a child has exited, else None."""
        for name, proc in procs.items():
            if proc.poll() is not None:
                self.stderr.write(f"{name} exited with status {proc.returncode}; stopping the stack.")
                return proc.returncode or 1
        return None

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


def _health(url: str) -> dict:
    """The `/healthz` report (503 answers carry one too), or {} while the web server is not answering."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own http:// URL
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            return json.loads(exc.read())
        except ValueError:
            return {}
    except (OSError, ValueError):
        return {}


class _Stop(Exception):
    def __init__(self, code: int):
        self.code = code
