"""`make run` (manage.py runstack) stopped by a signal stops web, worker, beat and the embedded
PostgreSQL. Real processes: the stack runs on its own embedded server in a temporary data directory,
on a free port, with no key configured (so the installation generates its own)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from config import embedded_pg

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_processes(pg_path: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and str(pg_path) in " ".join(cmdline):
            found.append(proc)
    return found


def stack_environ(data_dir: Path, port: int) -> dict[str, str]:
    drop = {
        "DATABASE_URL",
        "REDIS_URL",
        "CELERY_BROKER_URL",
        "SECRET_KEY",
        "FIELD_ENCRYPTION_KEY",
        "MET_ALLOW_INSECURE_SECRET",
        "DEBUG",
        "DJANGO_SETTINGS_MODULE",
    }
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(
        DATA_DIR=str(data_dir),
        PORT=str(port),
        WEB_CONCURRENCY="1",
        CELERY_CONCURRENCY="1",
        HEALTH_BEAT_MAX_AGE_SECONDS="600",
        LOG_LEVEL="WARNING",
    )
    return env


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"runstack exited early with status {proc.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return json.loads(r.read())
        except Exception as exc:
            last = exc
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout}s: {last}")


@pytest.fixture
def data_dir():
    path = Path(tempfile.mkdtemp(prefix="ml-", dir="/tmp"))  # short: the Unix socket lives inside
    yield path
    pg = embedded_pg.pg_dir(path)
    if embedded_pg.server_running(pg):  # only after a failure
        embedded_pg.server_stop(pg)
    shutil.rmtree(path, ignore_errors=True)


def run_and_stop(data_dir: Path, signum: int) -> tuple[int, str, dict]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runstack", "--no-demo", "--port", str(port)],
        cwd=ROOT,
        env=stack_environ(data_dir, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a signal to this test's group never reaches the stack by accident
    )
    try:
        health = wait_healthy(f"http://127.0.0.1:{port}/healthz", proc, timeout=120)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert postgres_processes(embedded_pg.pg_dir(data_dir)), "the embedded server should be running"
        proc.send_signal(signum)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], f"children left running: {alive}"
    return proc.returncode, output, health


def kill_a_process_holding_the_server(data_dir: Path) -> None:
    """What an installation lives through sooner or later: a process that joined the embedded server
    (a management command, a worker) dies by SIGKILL (OOM killer, `kill -9`) without its exit handlers."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from config import embedded_pg; "
            "embedded_pg.database_url(Path(sys.argv[1])); print('joined', flush=True); time.sleep(600)",
            str(data_dir),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "joined\n"
    holder.kill()
    holder.wait()


def test_a_signal_stops_the_whole_stack_and_the_embedded_postgres(data_dir):
    kill_a_process_holding_the_server(data_dir)
    code, output, health = run_and_stop(data_dir, signal.SIGTERM)
    assert health["database"] == {"status": "ok", "vendor": "postgresql", "embedded": True}
    assert health["status"] == "ok"
    pg = embedded_pg.pg_dir(data_dir)
    assert postgres_processes(pg) == []
    assert not embedded_pg.server_running(pg)
    assert code == 0, output
    assert "Stopped web, worker and beat and the embedded PostgreSQL." in output
    # the installation generated its own keys (no SECRET_KEY in the environment), private to its owner
    for name in ("secret_key", "field_encryption_key"):
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600
    first_key = (data_dir / "secret_key").read_text()

    # Ctrl-C (SIGINT) on a second start of the same installation: same key, same clean stop
    code, output, _ = run_and_stop(data_dir, signal.SIGINT)
    assert code == 0, output
    assert "Stopped web, worker and beat and the embedded PostgreSQL." in output
    assert postgres_processes(pg) == []
    assert (data_dir / "secret_key").read_text() == first_key
