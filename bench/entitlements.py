"""Entitlement value checks over HTTP with 1M events in the current usage period.

Sets up (idempotently) an organization `bench-entitlements` with a SUM meter, a metered feature, a
customer and an entitlement with a monthly allowance; stores 1M events across the current period
through metering's store (COPY), advances rollups, refreshes the balance snapshot, starts gunicorn and
times `GET /api/v1/customers/{key}/entitlements/{feature}/value` on a keep-alive connection.

Env: BENCH_EVENTS (default 1_000_000), BENCH_REQUESTS (default 2000).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SLUG = "bench-entitlements"
API_KEY = "ml_bench_entitlements_000000000000000000000000000"


def _setup(n_events: int) -> tuple[str, int]:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from billing import services as billing
    from billing.models import Customer, Entitlement
    from catalog import services as catalog
    from catalog.models import Feature
    from core.auth import hash_secret
    from core.models import ApiKey, Organization
    from core.services import organization_create
    from metering import services as metering
    from metering import store
    from metering.models import Meter

    org = Organization.objects.filter(slug=SLUG).first() or organization_create(slug=SLUG, name="Bench")
    if not ApiKey.objects.filter(secret_hash=hash_secret(API_KEY)).exists():
        ApiKey.objects.create(
            organization=org,
            name="bench",
            prefix=API_KEY[:11],
            secret_hash=hash_secret(API_KEY),
            scopes=["admin"],
        )
    if not Meter.objects.filter(organization=org, slug="tokens_total", deleted_at__isnull=True).exists():
        metering.meter_create(
            organization=org,
            slug="tokens_total",
            event_type="prompt",
            aggregation="SUM",
            value_property="$.tokens",
        )
    if not Feature.objects.filter(organization=org, key="tokens", archived_at__isnull=True).exists():
        catalog.feature_create(organization=org, key="tokens", name="Tokens", meter_slug="tokens_total")
    cust = Customer.objects.filter(organization=org, key="acme", deleted_at__isnull=True).first()
    if cust is None:
        cust = billing.customer_create(organization=org, name="Acme", key="acme", subject_keys=["customer-1"])
    now = datetime.now(UTC)
    period_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    ent = Entitlement.objects.filter(
        organization=org, customer=cust, feature_key="tokens", deleted_at__isnull=True, active_to__isnull=True
    ).first()
    if ent is None or ent.usage_period_anchor != period_start:
        if ent is not None:
            billing.entitlement_delete(organization=org, entitlement=ent)
        ent = billing.entitlement_create(
            organization=org,
            customer=cust,
            feature_key="tokens",
            type="metered",
            usage_period_interval="MONTH",
            usage_period_anchor=period_start,
            issue_after_reset=10**12,
        )
    # 1M events in this period (more subjects than the customer's, as in real traffic)
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM metering_event WHERE organization_id = %s AND time >= %s",
            [org.id, period_start],
        )
        have = cur.fetchone()[0]
    span = max((now - timedelta(minutes=3) - period_start).total_seconds(), 60.0)
    rnd = random.Random(42)
    batch = 50_000
    i = have
    while i < n_events:
        rows = []
        for j in range(i, min(i + batch, n_events)):
            t = period_start + timedelta(seconds=rnd.random() * span)
            subject = "customer-1" if j % 4 else f"other-{j % 97}"
            rows.append(
                ("bench", f"e{period_start:%Y%m}-{j}", "prompt", subject, t, json.dumps({"tokens": j % 50}))
            )
        store.events_insert(organization_id=org.id, events=rows, received_at=now)
        i += batch
    metering.rollups_advance(organization_id=org.id, max_chunks=10_000)
    with connection.cursor() as cur:  # what autovacuum would do after a bulk load
        cur.execute("ANALYZE metering_event")
        cur.execute("ANALYZE metering_rollup")
    billing.entitlement_snapshot_refresh(organization=org, entitlement_id=ent.id)
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM metering_event WHERE organization_id = %s AND time >= %s",
            [org.id, period_start],
        )
        total = cur.fetchone()[0]
    return ent.id, total


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _time_requests(port: int, path: str, n: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Authorization": f"Bearer {API_KEY}", "Accept": "application/json"}
    out = []
    for k in range(n + 50):
        t0 = time.perf_counter()
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        elapsed = (time.perf_counter() - t0) * 1000
        if resp.status != 200:
            raise RuntimeError(f"{path} answered {resp.status}: {body[:200]!r}")
        if k >= 50:  # warm-up excluded
            out.append(elapsed)
    conn.close()
    return out


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run() -> list[dict]:
    n_events = int(os.environ.get("BENCH_EVENTS", "1000000"))
    n_requests = int(os.environ.get("BENCH_REQUESTS", "2000"))
    t0 = time.monotonic()
    ent_id, total = _setup(n_events)
    setup_s = time.monotonic() - t0
    port = _free_port()
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings", DEBUG="false")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "2",
            "--worker-class",
            "gthread",
            "--threads",
            "4",
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        v1 = _time_requests(port, "/api/v1/customers/acme/entitlements/tokens/value", n_requests)
        v2 = _time_requests(port, f"/api/v2/customers/acme/entitlements/{ent_id}/value", n_requests // 2)
    finally:
        server.terminate()
        server.wait(timeout=10)
    load = os.getloadavg()[0]
    note = (
        f"{total:,} events in period; gunicorn 2 workers x 4 threads (gthread, as make run); setup {setup_s:.0f}s; "
        f"load avg {load:.1f} on {os.cpu_count()} CPUs"
    )
    return [
        {
            "benchmark": "entitlement value v1 p50 (HTTP)",
            "measured": f"{statistics.median(v1):.2f} ms",
            "target": "<= 5 ms",
            "ok": statistics.median(v1) <= 5,
            "notes": note,
        },
        {
            "benchmark": "entitlement value v1 p99 (HTTP)",
            "measured": f"{_pct(v1, 99):.2f} ms",
            "target": "<= 20 ms",
            "ok": _pct(v1, 99) <= 20,
            "notes": f"{len(v1)} requests",
        },
        {
            "benchmark": "entitlement value v2 p50 / p99 (HTTP)",
            "measured": f"{statistics.median(v2):.2f} / {_pct(v2, 99):.2f} ms",
            "target": "<= 5 / 20 ms",
            "ok": statistics.median(v2) <= 5 and _pct(v2, 99) <= 20,
            "notes": f"{len(v2)} requests, by id",
        },
    ]


if __name__ == "__main__":
    import django

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    for row in run():
        print(row)
