"""The fault-injection suite's stack: `manage.py runstack` (gunicorn, a Celery worker, Celery beat) on an
embedded PostgreSQL of its own in a temporary data directory, with a Redis broker this suite starts on a
free port, so a test can stop and start the database or the broker under load. Real processes only."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from config import embedded_pg

ROOT = Path(__file__).resolve().parents[2]
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@dataclass
class Redis:
    port: int
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, 10, "redis to answer")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Stack:
    data_dir: Path
    port: int
    redis: Redis
    proc: subprocess.Popen
    stripe_port: int = 0
    key: str = ""

    @property
    def stripe_log(self) -> Path:
        return self.data_dir / "stripe.jsonl"

    @property
    def pg(self) -> Path:
        return embedded_pg.pg_dir(self.data_dir)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environ(self) -> dict[str, str]:
        drop = {
            "DATABASE_URL",
            "CELERY_BROKER_URL",
            "SECRET_KEY",
            "FIELD_ENCRYPTION_KEY",
            "DJANGO_SETTINGS_MODULE",
        }
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env.update(
            DATA_DIR=str(self.data_dir),
            REDIS_URL=self.redis.url,
            PORT=str(self.port),
            WEB_CONCURRENCY="2",
            CELERY_CONCURRENCY="1",
            HEALTH_BEAT_MAX_AGE_SECONDS="600",
            LOG_LEVEL="WARNING",
            MET_ALLOW_INSECURE_SECRET="false",
            STRIPE_API_BASE=f"http://127.0.0.1:{self.stripe_port}",
            STRIPE_TIMEOUT_SECONDS="1",
            # the tests start their invoice runs themselves and count what is due: beat's invoice clock
            # (every 5 minutes by default) must not invoice a tenant while a test is still setting it up
            INVOICE_CLOCK_SECONDS="86400",
        )
        return env

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.environ(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(
            host=str(self.pg), user="postgres", dbname="postgres", connect_timeout=5
        ) as conn:
            return conn.execute(query, params).fetchall()

    def request(
        self, method: str, path: str, body: object = None, *, timeout: float = 10
    ) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.key}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def healthy(self) -> dict | None:
        try:
            with urllib.request.urlopen(self.base_url + "/healthz", timeout=2) as r:
                return json.loads(r.read())
        except (OSError, ValueError):
            return None


@pytest.fixture(scope="session")
def stack():
    data_dir = Path(tempfile.mkdtemp(prefix="mlf-", dir="/tmp"))  # short: the Unix socket lives inside
    redis = Redis(port=free_port())
    redis.start()
    port = free_port()
    stack = Stack(data_dir=data_dir, port=port, redis=redis, proc=None, stripe_port=free_port())  # type: ignore[arg-type]
    fake_stripe = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests/faults/fake_stripe.py"),
            str(stack.stripe_port),
            str(stack.stripe_log),
        ]
    )
    stack.proc = subprocess.Popen(
        [sys.executable, "manage.py", "runstack", "--no-demo", "--port", str(port)],
        cwd=ROOT,
        env=stack.environ(),
        stdout=open(data_dir / "stack.log", "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(lambda: stack.proc.poll() is not None or stack.healthy(), 180, "the stack to serve /healthz")
        assert stack.proc.poll() is None, (data_dir / "stack.log").read_text()[-3000:]
        stack.manage("org_create", "--slug", "faults", "--name", "Faults Inc")
        stack.key = (
            stack.manage("apikey_create", "--org", "faults", "--scopes", "admin").strip().splitlines()[-1]
        )
        stack.manage("org_create", "--slug", "bystander", "--name", "Bystander Inc")
        yield stack
    finally:
        if stack.proc.poll() is None:
            stack.proc.send_signal(signal.SIGTERM)
            try:
                stack.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(stack.proc.pid, signal.SIGKILL)
                stack.proc.wait()
        if embedded_pg.server_running(stack.pg):
            embedded_pg.server_stop(stack.pg)
        redis.kill()
        fake_stripe.kill()
        fake_stripe.wait()
        shutil.rmtree(data_dir, ignore_errors=True)
