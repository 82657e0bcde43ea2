"""The cost of the row-level security wall (core/rls.py) on the two hottest paths.

Two gunicorn servers on the same database, one with `DATABASE_RLS=true` (the default) and one with
`DATABASE_RLS=false`, are timed in alternating rounds on keep-alive connections:
the entitlement value check (`GET /api/v1/customers/acme/entitlements/tokens/value`, the tenant of
bench/entitlements.py with BENCH_RLS_EVENTS events) and single-event ingest (`POST /api/v1/events`,
one CloudEvent per request, sequential, into an organization of its own). The wall adds two statements per request (enter and leave
the scope) and the policy's filter on each query; for single-event ingest the two are sent with the insert
in one pipeline (`rls.execute_raw`), so they cost no round trip of their own.

Env: BENCH_RLS_EVENTS (default 100_000), BENCH_RLS_REQUESTS (default 1000 per server and path).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(port: int, rls: bool) -> subprocess.Popen:
    env = dict(
        os.environ, DJANGO_SETTINGS_MODULE="config.settings", DEBUG="false", DATABASE_RLS=str(rls).lower()
    )
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "1",
            "--worker-class",
            "gthread",
            "--threads",
            "2",
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    for _ in range(150):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("gunicorn did not start")


def _timed(
    conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None, headers: dict
) -> float:
    t0 = time.perf_counter()
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    elapsed = (time.perf_counter() - t0) * 1000
    if resp.status not in (200, 204):
        raise RuntimeError(f"{method} {path} answered {resp.status}: {data[:200]!r}")
    return elapsed


INGEST_SLUG = "bench-rls-ingest"
INGEST_KEY = "ml_bench_rls_ingest_0000000000000000000000000000000"


def _ingest_tenant() -> None:
    """Ingest goes to an organization of its own: a read flushes its organization's accepted events first,
    which would add a drain to every value check."""
    from core.auth import hash_secret
    from core.models import ApiKey, Organization
    from core.services import organization_create

    org = Organization.objects.filter(slug=INGEST_SLUG).first() or organization_create(
        slug=INGEST_SLUG, name="Bench RLS ingest"
    )
    if not ApiKey.objects.filter(secret_hash=hash_secret(INGEST_KEY)).exists():
        ApiKey.objects.create(
            organization=org,
            name="bench",
            prefix=INGEST_KEY[:11],
            secret_hash=hash_secret(INGEST_KEY),
            scopes=["ingest"],
        )


def _round(port: int, key: str, n: int, run: str, offset: int) -> tuple[list[float], list[float]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    read = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    write = {"Authorization": f"Bearer {INGEST_KEY}", "Content-Type": "application/cloudevents+json"}
    values, ingests = [], []
    for i in range(n):
        values.append(_timed(conn, "GET", "/api/v1/customers/acme/entitlements/tokens/value", None, read))
        event = {
            "specversion": "1.0",
            "id": f"rls-{run}-{offset + i}",
            "source": "bench-rls",
            "type": "prompt",
            "subject": "customer-1",
            "data": {"tokens": 1},
        }
        ingests.append(_timed(conn, "POST", "/api/v1/events", json.dumps(event).encode(), write))
    conn.close()
    return values, ingests


def run() -> list[dict]:
    from bench import entitlements

    n_events = int(os.environ.get("BENCH_RLS_EVENTS", "100000"))
    n = int(os.environ.get("BENCH_RLS_REQUESTS", "1000"))
    entitlements._setup(n_events)
    _ingest_tenant()
    run_id = uuid.uuid4().hex[:8]
    ports = {True: _free_port(), False: _free_port()}
    servers = {flag: _start(port, flag) for flag, port in ports.items()}
    results: dict[bool, tuple[list[float], list[float]]] = {True: ([], []), False: ([], [])}
    try:
        for flag in (True, False):  # warm-up, not counted
            _round(ports[flag], entitlements.API_KEY, 50, run_id + ("w1" if flag else "w0"), 0)
        rounds = 10
        for r in range(rounds):
            for flag in (True, False) if r % 2 == 0 else (False, True):
                v, i = _round(ports[flag], entitlements.API_KEY, n // rounds, run_id + str(int(flag)), r * n)
                results[flag][0].extend(v)
                results[flag][1].extend(i)
    finally:
        for server in servers.values():
            server.terminate()
            server.wait(timeout=10)
    on_v, on_i = (statistics.median(x) for x in results[True])
    off_v, off_i = (statistics.median(x) for x in results[False])
    note = (
        f"{n} requests per server and path, alternating rounds; 1 gunicorn worker x 2 threads each; "
        f"load avg {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    return [
        {
            "benchmark": "RLS cost: entitlement value p50 (on / off)",
            "measured": f"{on_v:.2f} / {off_v:.2f} ms ({on_v - off_v:+.2f} ms)",
            "target": "a small fraction of the check",
            "ok": None,
            "notes": note,
        },
        {
            "benchmark": "RLS cost: single-event ingest p50 (on / off)",
            "measured": f"{on_i:.2f} / {off_i:.2f} ms ({on_i - off_i:+.2f} ms)",
            "target": "a small fraction of the request",
            "ok": None,
            "notes": note,
        },
    ]


if __name__ == "__main__":
    import django

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    for row in run():
        print(row)
