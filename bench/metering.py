"""Metering benchmarks (run by bench/run.py; `BENCH=metering make bench`).

All figures come from one run on the same database (DATABASE_URL, else the embedded server):
  (a) raw COPY of N events into a bare table (no index, no constraint): the physical limit;
  (a2) the same COPY into a table with the event store's keys (identity PK, dedup and query indexes);
      each the median of COPY_REPEATS COPYs (a new table each), the targets' reference;
  (a3) the same COPY into the store's own tables (the dedup key table and the partitioned event table,
      holding >= BIG events), rolled back: what writing these rows costs where the drain writes them;
  (b) batched HTTP ingest through a real gunicorn started here (several client threads, batches of
      1000, 10% of batches resent so dedup really works) with a drainer process running (one thread per
      drain lane, DRAIN_LANES), into an event table that already holds BIG events: the rate at which
      requests are durably accepted (204), and (b') the rate from the first request until every event
      is stored and deduplicated, nothing else arriving (the issue's sustained burst), with the backlog
      (accepted, not yet stored) sampled every second;
  (b'') the same burst again (new ids), and (c) single-event HTTP ingest at a fixed 200 req/s (open loop)
      started at its last 204, so the requests run while its backlog drains: (c) p50/p99 from the
      scheduled send time and when the requests over 25 ms were sent, (b'') the burst's stored rate with
      (c) competing for the cores (its single events are not waited for);
  (d) meter query for one subject, 30 days by day, over >= BIG stored events (generated server-side once
      and reused), with rollups (the production path) and raw-only for comparison;
  (e) sustained ingest: batches (10% resent) offered on a fixed schedule at BENCH_SUSTAIN_SHARE of (a2)
      for BENCH_SUSTAIN_SECONDS, the drainer storing meanwhile: the rate stored over the window, whether
      the backlog stayed bounded (at most 1 s of the load when the window ends), and its curve.
The run's own events are removed at the end, so every run stores into the same >= BIG events.

Knobs (environment): BENCH_EVENTS (default 500000), BENCH_BIG_EVENTS (10000000), BENCH_WORKERS (2),
BENCH_THREADS (4), BENCH_CLIENTS (4), BENCH_BATCH (1000), BENCH_RATE (200), BENCH_SECONDS (10),
BENCH_DRAIN_NICE (idle: the drainer's `--nice`), BENCH_SUSTAIN_SECONDS (20), BENCH_SUSTAIN_SHARE (0.5);
DRAIN_LANES (the web workers' and the drainer's setting; unset, 2: the dedicated drainer as docs/scaling.md
sets it up on two cores).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
N = int(os.environ.get("BENCH_EVENTS", "500000"))
BIG = int(os.environ.get("BENCH_BIG_EVENTS", "10000000"))
WORKERS = os.environ.get("BENCH_WORKERS", "2")
THREADS = os.environ.get("BENCH_THREADS", "4")
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
BATCH = int(os.environ.get("BENCH_BATCH", "1000"))
RATE = int(os.environ.get("BENCH_RATE", "200"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
DRAIN_NICE = os.environ.get("BENCH_DRAIN_NICE", "idle")
# The drain lanes of the web workers (they split batches by lane) and of the drainer, as in production
LANES = os.environ.get("DRAIN_LANES") or "2"
SUSTAIN_SECONDS = int(os.environ.get("BENCH_SUSTAIN_SECONDS", "20"))
SUSTAIN_SHARE = float(os.environ.get("BENCH_SUSTAIN_SHARE", "0.5"))  # offered load, as a share of (a2)
SLOW_SECONDS = 0.025  # (c)'s p99 target
MODELS = ["gpt-4o", "gpt-4o-mini", "claude", "llama"]


def log(msg: str) -> None:
    print(f"   {msg}", flush=True)


def make_event(i: int, run: str) -> dict:
    t = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=i % 2_592_000)
    return {
        "id": f"{run}-{i}",
        "source": "bench",
        "specversion": "1.0",
        "type": "prompt",
        "subject": f"customer-{i % 1000}",
        "time": t.isoformat().replace("+00:00", "Z"),
        "data": {"tokens": i % 997, "model": MODELS[i % 4], "type": "input" if i % 2 else "output"},
    }


# --- setup -------------------------------------------------------------------------------------


def setup_tenant():
    from django.core.management import call_command

    from core.models import Organization
    from core.services import api_key_create, organization_create
    from metering import services

    call_command("migrate", verbosity=0)
    run = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    org = organization_create(slug=f"bench-{run}", name="Bench")
    key = api_key_create(organization=org, name="bench", scopes=["ingest", "read"]).secret
    services.meter_create(
        organization=org,
        slug="tokens",
        event_type="prompt",
        aggregation="SUM",
        value_property="$.tokens",
        group_by={"model": "$.model", "type": "$.type"},
    )
    assert Organization.objects.filter(pk=org.pk).exists()
    return org, key, run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(port: int) -> subprocess.Popen:
    env = dict(os.environ, DB_CONN_MAX_AGE="600", PYTHONUNBUFFERED="1", DRAIN_LANES=LANES)
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        WORKERS,
        "--worker-class",
        "gthread",
        "--threads",
        THREADS,
        "--backlog",
        "2048",
        "--log-level",
        "warning",
        "--keep-alive",
        "30",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    deadline = time.monotonic() + 120  # a loaded machine imports slowly
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("gunicorn did not start")


def run_threads(target, count: int) -> None:
    """`target(0)` … `target(count - 1)`, each in its own thread, all at once; returns when all are done."""
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def client_connection(port: int, timeout: float) -> http.client.HTTPConnection:
    """A keep-alive connection with TCP_NODELAY, as gateways' HTTP clients use (Go's net/http and nginx
    set it by default). Python's http.client does not: a 200 KB batch then ends with a partial segment
    that Nagle holds until the server's delayed ACK, adding several ms to every request."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def copy_rows(cur, sql: str, rows: list[tuple]) -> None:
    """COPY `rows` with psycopg's COPY (`sql`: a `COPY … FROM STDIN`) on a Django cursor."""
    with cur.cursor.copy(sql) as copy:
        for r in rows:
            copy.write_row(r)


# --- (a) raw COPY ------------------------------------------------------------------------------


COPY_REPEATS = 3  # (a) and (a2) are the median of this many COPYs: a 4-second figure varies ±10% here


def bench_copy(run: str, like_events: bool = False) -> list[float]:
    """The rates of COPY_REPEATS COPYs of the same N rows, each into a new table (bare, or with
    `like_events` the event store's keys), in the order measured."""
    from django.db import connection

    from metering.ingest import dumps

    rows = []
    now = datetime.now(UTC)
    for i in range(N):
        e = make_event(i, run)
        rows.append(
            (
                "x",
                e["source"],
                e["id"],
                e["type"],
                e["subject"],
                datetime.fromisoformat(e["time"]),
                dumps(e["data"]),
                now,
            )
        )
    rates = []
    for _ in range(COPY_REPEATS):
        with connection.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS bench_raw_copy")
            cur.execute(
                "CREATE TABLE bench_raw_copy (organization_id varchar(26), source text, event_id text, "
                "type text, subject text, time timestamptz, data jsonb, stored_at timestamptz)"
            )
            if like_events:  # metering_event's keys: identity PK, dedup unique index, query index
                cur.execute(
                    "ALTER TABLE bench_raw_copy ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
                )
                # the dedup key as the store indexes it (metering.models.EventKey)
                cur.execute(
                    'CREATE UNIQUE INDEX ON bench_raw_copy (event_id COLLATE "C", source COLLATE "C", organization_id)'
                )
                cur.execute("CREATE INDEX ON bench_raw_copy (organization_id, type, subject, time)")
        t0 = time.perf_counter()
        copy_sql = "COPY bench_raw_copy (organization_id, source, event_id, type, subject, time, data, stored_at) FROM STDIN"
        with connection.cursor() as cur:
            copy_rows(cur, copy_sql, rows)
        rates.append(N / (time.perf_counter() - t0))
        with connection.cursor() as cur:
            cur.execute("DROP TABLE bench_raw_copy")
    return rates


def rates_text(rates: list[float]) -> str:
    return f"median of {len(rates)} COPYs: " + ", ".join(f"{r:,.0f}" for r in rates)


def bench_copy_store(run: str, org_id: str) -> float:
    """(a3): the same COPY into the store's own tables, metering_eventkey (dedup key) and the partitioned
    metering_event, with their indexes and the >= BIG events they hold, in one transaction rolled back:
    the bare cost of writing these rows where the drain writes them (no parsing, dedup or ordering)."""
    from django.db import connection, transaction

    from metering.ingest import dumps

    now = datetime.now(UTC)
    keys, events = [], []
    for i in range(N):
        e = make_event(i, f"{run}-a3")
        seq, time_ = 2**62 + i, datetime.fromisoformat(e["time"])
        keys.append((org_id, e["source"], e["id"], seq, time_, 0))
        events.append(
            (seq, org_id, e["source"], e["id"], e["type"], e["subject"], time_, dumps(e["data"]), now)
        )
    with transaction.atomic(), connection.cursor() as cur:
        t0 = time.perf_counter()
        copy_rows(
            cur,
            "COPY metering_eventkey (organization_id, source, event_id, seq, time, payload_hash) FROM STDIN",
            keys,
        )
        copy_rows(
            cur,
            "COPY metering_event (seq, organization_id, source, event_id, type, subject, time, data, stored_at) "
            "FROM STDIN",
            events,
        )
        elapsed = time.perf_counter() - t0
        transaction.set_rollback(True)
    return N / elapsed


# --- (b) batched HTTP --------------------------------------------------------------------------


def start_drainer() -> subprocess.Popen:
    """A dedicated drainer (`manage.py events_drain --follow`): the Celery task's work, in a loop."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", DRAIN_LANES=LANES)
    cmd = [sys.executable, "manage.py", "events_drain", "--follow", "--nice", str(DRAIN_NICE)]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


def pending_events(org_id: str, up_to_id: int | None = None) -> int:
    from metering import store

    return sum(events for _org, _n, events in store.inbox_pending(organization_id=org_id, up_to_id=up_to_id))


def stored_events(org_id: str, prefix: str = "") -> int:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM metering_eventkey WHERE organization_id = %s AND source = 'bench' "
            "AND event_id LIKE %s",
            [org_id, prefix + "%"],
        )
        return int(cur.fetchone()[0])


def send_batches(port: int, key: str, tag: str) -> tuple[int, float, float]:
    """Send every batch (10% twice) from CLIENTS connections: (events sent, start, last 204) in
    perf_counter seconds."""
    bodies = []
    for start in range(0, N, BATCH):
        bodies.append(json.dumps([make_event(i, tag) for i in range(start, min(N, start + BATCH))]).encode())
    resend = bodies[::10]  # 10% of the batches again: duplicates the database must drop
    work = bodies + resend
    sent_events = N + sum(len(json.loads(b)) for b in resend)
    lock = threading.Lock()
    idx = [0]
    failures: list[int] = []
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/cloudevents-batch+json"}

    def client():
        conn = client_connection(port, timeout=60)
        while True:
            with lock:
                if idx[0] >= len(work):
                    break
                body = work[idx[0]]
                idx[0] += 1
            conn.request("POST", "/api/v1/events", body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 204:
                failures.append(resp.status)
        conn.close()

    t0 = time.perf_counter()
    run_threads(lambda _: client(), CLIENTS)
    if failures:
        raise RuntimeError(f"batched ingest failed: {failures[:5]}")
    return sent_events, t0, time.perf_counter()


class BacklogSampler(threading.Thread):
    """Samples the accepted-but-not-stored events (all organizations; with `up_to_id`, only those of the
    batches accepted up to that inbox id) every second from t0 until there are none (with `loaded`: none
    once it is set, that is once the load is over); `done` is set then, `empty_at` is when."""

    def __init__(self, t0: float, up_to_id: int | None = None, loaded: threading.Event | None = None):
        super().__init__(daemon=True)
        self.t0 = t0
        self.up_to_id = up_to_id
        self.loaded = loaded
        self.curve: list[tuple[float, int]] = []
        self.empty_at = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        from django.db import connection

        from metering import store

        try:
            next_sample = 0.0
            while True:
                pending = sum(ev for _org, _n, ev in store.inbox_pending(up_to_id=self.up_to_id))
                now = time.perf_counter() - self.t0
                over = not pending and (self.loaded is None or self.loaded.is_set())
                if now >= next_sample or over:
                    self.curve.append((now, pending))
                    next_sample += 1.0
                if over:
                    self.empty_at = now
                    return
                time.sleep(0.05)
        finally:
            connection.close()
            self.done.set()


def curve_text(curve: list[tuple[float, int]], points: int = 12) -> str:
    step = max(1, len(curve) // points)
    shown = curve[::step] + ([curve[-1]] if (len(curve) - 1) % step else [])
    return ", ".join(f"{t:.0f}s {n / 1000:.0f}k" for t, n in shown)


def bench_burst(
    port: int, key: str, tag: str, org_id: str, meanwhile: Callable[[], Any] | None = None
) -> dict:
    """A burst of N events (ids `tag`-i, 10% of the batches resent) from the first request until every one
    is stored; with `meanwhile`, called at the last 204 (while the burst's backlog drains) and its result
    returned as "meanwhile". Other events accepted meanwhile are not waited for."""
    from metering import store

    before = stored_events(org_id, f"{tag}-")
    sent, t0, accepted_at = send_batches(port, key, tag)
    last = store.inbox_last_pending(organization_id=org_id) or 0  # the burst's newest batch still pending
    sampler = BacklogSampler(t0, up_to_id=last)
    sampler.start()
    backlog = pending_events(org_id)
    during = meanwhile() if meanwhile else None
    sampler.done.wait()
    stored = sampler.empty_at
    if (new := stored_events(org_id, f"{tag}-") - before) != N:
        raise RuntimeError(f"stored {new} events, expected {N} (dedup or loss)")
    log("backlog: " + curve_text(sampler.curve, points=60))
    return {
        "sent": sent,
        "accept_rate": sent / (accepted_at - t0),
        "stored_rate": sent / stored,
        "backlog": backlog,
        "stored_seconds": stored,
        "curve": curve_text(sampler.curve),
        "meanwhile": during,
    }


# --- (e) sustained: a steady offered load ------------------------------------------------------


def bench_sustained(port: int, key: str, run: str, org_id: str, rate: float) -> dict:
    """(e) CLIENTS connections send batches of BATCH events on a fixed schedule (open loop) adding up to
    `rate` events/s for SUSTAIN_SECONDS, every tenth batch one sent before (a resend the dedup must drop),
    while the drainer stores them. Sustained when what was stored kept pace with what was offered: the
    backlog at the end is at most one second of the load (a drain that keeps up holds a few chunks)."""
    batches = max(1, int(rate * SUSTAIN_SECONDS / BATCH))
    fresh = [
        json.dumps([make_event(i, f"{run}-e") for i in range(k * BATCH, (k + 1) * BATCH)]).encode()
        for k in range(batches - batches // 10)
    ]
    work: list[bytes] = []
    for k in range(batches):  # every tenth: the batch sent five new batches before, again
        work.append(fresh[len(work) - k // 10 - 5] if k % 10 == 9 else fresh[k - k // 10])
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/cloudevents-batch+json"}
    failures: list[int] = []
    late: list[float] = []
    start = time.perf_counter() + 0.5
    loaded = threading.Event()
    sampler = BacklogSampler(start, loaded=loaded)  # the backlog through the load and until it is stored
    sampler.start()

    def client(c: int) -> None:
        conn = client_connection(port, timeout=60)
        for k in range(c, batches, CLIENTS):
            scheduled = start + k * BATCH / rate
            if (delay := scheduled - time.perf_counter()) > 0:
                time.sleep(delay)
            else:
                late.append(-delay)
            conn.request("POST", "/api/v1/events", body=work[k], headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 204:
                failures.append(resp.status)
        conn.close()

    run_threads(client, CLIENTS)
    window = time.perf_counter() - start
    left = pending_events(org_id)
    loaded.set()
    sampler.done.wait()
    if failures:
        raise RuntimeError(f"sustained ingest failed: {failures[:5]}")
    if (new := stored_events(org_id, f"{run}-e-")) != len(fresh) * BATCH:
        raise RuntimeError(f"stored {new} events, expected {len(fresh) * BATCH} (dedup or loss)")
    sent = batches * BATCH
    return {
        "offered": sent / window,
        "stored_rate": (sent - left) / window,
        "left": left,
        "late": max(late, default=0.0),
        "sent": sent,
        "window": window,
        "empty_after": sampler.empty_at - window,
        "curve": curve_text(sampler.curve),
    }


# --- (c) single events at a fixed rate ---------------------------------------------------------


def bench_single(port: int, key: str, run: str) -> tuple[float, float, float, int, list[float]]:
    total = RATE * SECONDS
    bodies = [json.dumps(make_event(i, f"{run}-s")).encode() for i in range(total)]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/cloudevents+json"}
    latencies: list[float] = []
    slow: list[float] = []  # when (seconds into the run) the requests over the p99 target were sent
    failures: list[int] = []
    lock = threading.Lock()
    n_threads = 16
    warm_headers = dict(headers)

    def warm(k: int):  # open every keep-alive connection and warm each worker before measuring
        conn = client_connection(port, timeout=10)
        for j in range(20):
            conn.request(
                "POST",
                "/api/v1/events",
                body=json.dumps(make_event(j, f"{run}-warm{k}")).encode(),
                headers=warm_headers,
            )
            conn.getresponse().read()
        conn.close()

    run_threads(warm, n_threads)
    start = time.perf_counter() + 0.5

    def client(k: int):
        conn = client_connection(port, timeout=10)
        for i in range(k, total, n_threads):
            scheduled = start + i / RATE
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            conn.request("POST", "/api/v1/events", body=bodies[i], headers=headers)
            resp = conn.getresponse()
            resp.read()
            done = time.perf_counter()
            with lock:
                latencies.append((done - scheduled) * 1000)
                if done - scheduled > SLOW_SECONDS:
                    slow.append(i / RATE)
                if resp.status != 204:
                    failures.append(resp.status)
        conn.close()

    run_threads(client, n_threads)
    achieved = total / (time.perf_counter() - start)
    if failures:
        raise RuntimeError(f"single ingest failed: {failures[:5]}")
    qs = statistics.quantiles(latencies, n=100)
    return qs[49], qs[98], achieved, total, slow


def lanes_text() -> str:
    return f"{LANES} drain lane" + ("s" if LANES != "1" else "")


def rests_text() -> str:
    """The drainer's rests (`metering.drain.Pace`): none when `drainer_priority_lower` can lower its
    database process too (a --nice other than 0 on the embedded server), else the configured share."""
    from django.conf import settings

    if DRAIN_NICE != "0" and getattr(settings, "EMBEDDED_DATABASE", False):
        return "no rests: its database process runs at the lower priority too"
    return (
        f"rests {settings.DRAIN_REST_PERCENT}% of a chunk, plus the other lanes' turn, while requests arrive "
        "and it keeps up"
    )


def slow_text(slow: list[float]) -> str:
    """Requests over the p99 target, by the second they were sent in: stalls that hit every request at
    once show as many in one second."""
    if not slow:
        return f"none over {SLOW_SECONDS * 1000:.0f} ms"
    by_second = ", ".join(f"{n} in second {s}" for s, n in sorted(Counter(int(t) for t in slow).items()))
    return f"{len(slow)} over {SLOW_SECONDS * 1000:.0f} ms: {by_second}"


# --- (d) query over 10M events -----------------------------------------------------------------


def big_dataset():
    """An organization with >= BIG events over 60 days, 1000 subjects (generated once, then reused), with
    their dedup keys, as the store writes them."""
    from django.db import DatabaseError, connection, transaction

    from core.models import Organization
    from core.services import organization_create
    from metering import services, store
    from metering.models import Meter

    slug = f"bench-big-{BIG}"
    org = Organization.objects.filter(slug=slug).first()
    if org is None:
        org = organization_create(slug=slug, name="Bench 10M")
    meter = Meter.objects.filter(organization=org, slug="tokens", deleted_at__isnull=True).first()
    if meter is None:
        meter = services.meter_create(
            organization=org,
            slug="tokens",
            event_type="prompt",
            aggregation="SUM",
            value_property="$.tokens",
            group_by={"model": "$.model", "type": "$.type"},
        )
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM metering_event WHERE organization_id = %s", [org.id])
        have = cur.fetchone()[0]
    if have < BIG:
        log(f"generating {BIG - have} events for {slug} (once; reused by later runs)…")
        for month in (1, 2, 3):  # the months of the generated and the batched events get partitions
            store.partition_create(datetime(2025, month, 1, tzinfo=UTC))
        t0 = time.perf_counter()
        step = 1_000_000
        for lo in range(have, BIG, step):
            hi = min(BIG, lo + step)
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock_shared(%s)", [store.INGEST_LOCK_KEY])
                cur.execute(
                    "WITH ins AS (INSERT INTO metering_event (organization_id, source, event_id, type, subject, "
                    "time, data, stored_at) SELECT %s, 'gen', 'g' || i, 'prompt', 'customer-' || (i %% 1000), "
                    "timestamptz '2025-01-01' + (i::bigint * 5184000 / %s) * interval '1 second', "
                    "jsonb_build_object('tokens', i %% 997, 'model', (ARRAY['gpt-4o','gpt-4o-mini','claude',"
                    "'llama'])[1 + i %% 4], 'type', CASE WHEN i %% 2 = 0 THEN 'input' ELSE 'output' END), now() "
                    "FROM generate_series(%s, %s) AS i RETURNING organization_id, source, event_id, seq, type, "
                    "subject, time, data) INSERT INTO metering_eventkey (organization_id, source, event_id, seq, "
                    "time, payload_hash) SELECT organization_id, source, event_id, seq, time, "
                    + store.events.PAYLOAD_HASH.format(a="")
                    + " FROM ins",
                    [org.id, BIG, lo, hi - 1],
                )
            log(f"  {hi:,} rows ({time.perf_counter() - t0:.0f}s)")
        # at rest, as a table that has held its history for a while is: vacuumed (hint bits set, the
        # visibility map filled) and checkpointed, so autovacuum's first pass over the new rows and the
        # checkpoint's writes do not land in the first run's measurements
        t0 = time.perf_counter()
        with connection.cursor() as cur:
            cur.execute("VACUUM (ANALYZE) metering_event, metering_eventkey")
            try:
                cur.execute("CHECKPOINT")
            except DatabaseError:  # not a superuser (nor pg_checkpoint) on a server given by DATABASE_URL
                log("  (CHECKPOINT not allowed for this database user: left to the server)")
        log(f"  vacuumed and checkpointed in {time.perf_counter() - t0:.0f}s")
    t0 = time.perf_counter()
    services.rollups_advance(organization_id=org.id)
    with connection.cursor() as cur:
        cur.execute("ANALYZE metering_rollup")  # autovacuum does this in production
    log(f"rollups advanced in {time.perf_counter() - t0:.1f}s")
    return org, meter


def bench_query(org, meter, port: int | None, key: str | None) -> dict[str, float]:
    from metering.selectors import meter_query

    frm, to = datetime(2025, 1, 15, tzinfo=UTC), datetime(2025, 2, 14, tzinfo=UTC)

    def timed(fn, n=30):
        fn()
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t0) * 1000)
        return statistics.median(samples), max(samples)

    def q(use_rollups=True):
        rows = meter_query(
            organization=org,
            meter=meter,
            from_=frm,
            to=to,
            window_size="DAY",
            subjects=["customer-42"],
            use_rollups=use_rollups,
        )
        assert len(rows) == 30, len(rows)

    out = {}
    out["rollup_p50"], out["rollup_max"] = timed(q)
    out["raw_p50"], out["raw_max"] = timed(lambda: q(False), n=5)
    return out


# --- entry point -------------------------------------------------------------------------------


def run() -> list[dict]:
    org, key, run_id = setup_tenant()
    try:
        return _run(org, key, run_id)
    finally:
        purge(org)


def purge(org) -> None:
    """Remove what this run stored (and what (a3) rolled back), then vacuum the store's tables: the next run
    stores into the same events, and autovacuum has none of this run's dead rows left to clean while the
    next one measures."""
    from django.db import connection

    from metering import store

    connection.close()  # a fresh connection: the run's may have been closed under it
    t0 = time.perf_counter()
    deleted = store.events_purge(organization_id=org.id)
    with connection.cursor() as cur:
        cur.execute("VACUUM (ANALYZE) metering_eventkey, metering_event, metering_inboxbatch")
    log(f"removed this run's {deleted:,} events and vacuumed in {time.perf_counter() - t0:.0f}s")


def _run(org, key: str, run_id: str) -> list[dict]:
    from django.conf import settings
    from django.db import connection

    load_start = os.getloadavg()[0]
    rows: list[dict] = []
    log(f"(a) COPY {N} rows into a bare table, {COPY_REPEATS} times…")
    copy_rates = bench_copy(run_id)
    copy_rate = statistics.median(copy_rates)
    rows.append(
        {
            "benchmark": "metering (a) raw COPY, bare table",
            "measured": f"{copy_rate:,.0f} events/s",
            "target": "physical limit",
            "ok": None,
            "notes": f"{N:,} rows, psycopg 3 COPY, {rates_text(copy_rates)}; load avg at start {load_start:.1f} "
            f"on {os.cpu_count()} CPUs",
        }
    )
    log(f"(a2) COPY {N} rows into a table with metering_event's indexes, {COPY_REPEATS} times…")
    copy_idx_rates = bench_copy(run_id, like_events=True)
    copy_idx_rate = statistics.median(copy_idx_rates)
    rows.append(
        {
            "benchmark": "metering (a2) raw COPY, same indexes as events",
            "measured": f"{copy_idx_rate:,.0f} events/s",
            "target": "schema limit",
            "ok": None,
            "notes": "identity PK + unique (id, source, org) in byte order + (org, type, subject, time); "
            f"{rates_text(copy_idx_rates)}",
        }
    )
    log(f"the event table holds >= {BIG:,} events before (b)…")
    big_org, meter = big_dataset()
    connection.close()
    port = free_port()
    proc = start_gunicorn(port)
    drainer = start_drainer()
    try:
        log(f"(b) batched HTTP ingest, {CLIENTS} clients, batches of {BATCH}, drainer running…")
        b = bench_burst(port, key, f"{run_id}-b", org.id)
        log(f"(c) the same burst again, single events at {RATE}/s from its last 204 while it drains…")
        bc = bench_burst(port, key, f"{run_id}-c", org.id, meanwhile=lambda: bench_single(port, key, run_id))
        offered = SUSTAIN_SHARE * copy_idx_rate
        log(f"(e) sustained: {offered:,.0f} events/s offered for {SUSTAIN_SECONDS}s…")
        e = bench_sustained(port, key, run_id, org.id, offered)
    finally:
        for p in (proc, drainer):
            p.terminate()
        for p in (proc, drainer):
            p.wait(timeout=30)
    # after (b) to (e): the rolled-back rows are dead rows autovacuum would clean while they measure
    log(f"(a3) COPY {N} rows into the store's own tables, rolled back…")
    copy_store_rate = bench_copy_store(run_id, org.id)
    rows.append(
        {
            "benchmark": "metering (a3) raw COPY into the store's tables",
            "measured": f"{copy_store_rate:,.0f} events/s",
            "target": "(info)",
            "ok": None,
            "notes": f"metering_eventkey (dedup key) and the partitioned metering_event, holding >= {BIG:,} "
            "events, with their indexes; one transaction, rolled back",
        }
    )
    ratio = b["stored_rate"] / copy_idx_rate
    rows.append(
        {
            "benchmark": "metering (b) batched HTTP ingest, accepted",
            "measured": f"{b['accept_rate']:,.0f} events/s ({b['accept_rate'] / copy_rate:.0%} of (a))",
            "target": ">= 50% of (a)",
            "ok": b["accept_rate"] >= 0.5 * copy_rate,
            "notes": f"{b['sent']:,} events incl. 10% resent, durably accepted (204); gunicorn {WORKERS}w x "
            f"{THREADS}t + 1 drainer ({lanes_text()}); {b['backlog']:,.0f} events still in the inbox "
            "at the last 204",
        }
    )
    rows.append(
        {
            "benchmark": "metering (b') the burst, stored and deduplicated",
            "measured": f"{b['stored_rate']:,.0f} events/s ({b['stored_rate'] / copy_rate:.0%} of (a), "
            f"{ratio:.0%} of (a2), {b['stored_rate'] / copy_store_rate:.0%} of (a3))",
            "target": ">= 50% of (a2)",
            "ok": ratio >= 0.5,
            "notes": f"into a table of >= {BIG:,} events, nothing else arriving; first request to the last of "
            f"them stored {b['stored_seconds']:.1f}s; "
            f"exactly {N:,} events stored; backlog: {b['curve']}",
        }
    )
    under = bc["stored_rate"]
    rows.append(
        {
            "benchmark": "metering (b'') the burst again, stored while (c) arrives",
            "measured": f"{under:,.0f} events/s ({under / copy_idx_rate:.0%} of (a2))",
            "target": "(info)",
            "ok": None,
            "notes": f"{bc['sent']:,} events as in (b), {bc['backlog']:,.0f} in the inbox at the last 204; "
            f"stored in {bc['stored_seconds']:.1f}s from the first request while (c)'s single events "
            f"arrived; backlog: {bc['curve']}",
        }
    )
    p50, p99, achieved, total, slow = bc["meanwhile"]
    rows.append(
        {
            "benchmark": f"metering (c) single-event ingest @ {RATE} req/s while (b'') drains",
            "measured": f"p50 {p50:.1f} ms, p99 {p99:.1f} ms",
            "target": "p99 <= 25 ms",
            "ok": p99 <= 25,
            "notes": f"{total} requests, achieved {achieved:.0f} req/s, from the last 204 of (b''); drainer "
            f"`events_drain --follow` ({lanes_text()}, `--nice {DRAIN_NICE}`, chunks of "
            f"~{settings.DRAIN_CHUNK_MS} ms, {rests_text()}); {slow_text(slow)}",
        }
    )
    sustained = e["left"] <= e["offered"]
    rows.append(
        {
            "benchmark": "metering (e) sustained: steady load, stored and deduplicated",
            "measured": f"{e['stored_rate']:,.0f} events/s stored of {e['offered']:,.0f} offered "
            f"({e['stored_rate'] / copy_idx_rate:.0%} of (a2), {e['stored_rate'] / copy_store_rate:.0%} of (a3))",
            "target": f"keeps pace at {SUSTAIN_SHARE:.0%} of (a2)",
            "ok": sustained,
            "notes": f"{e['sent']:,} events (10% resent) in batches of {BATCH} on a fixed schedule for "
            f"{e['window']:.1f}s; {e['left']:,} still in the inbox at the end (kept pace: at most 1 s of the "
            f"load), stored {e['empty_after']:.1f}s later; clients at most {e['late'] * 1000:.0f} ms behind "
            f"schedule; backlog: {e['curve']}",
        }
    )
    log(f"(d) query over {BIG:,} events…")
    big_org, meter = big_dataset()  # rollups advanced over everything stored since
    res = bench_query(big_org, meter, None, None)
    rows.append(
        {
            "benchmark": "metering (d) query 1 subject, 30 days by day",
            "measured": f"p50 {res['rollup_p50']:.1f} ms (max {res['rollup_max']:.1f})",
            "target": "<= 50 ms",
            "ok": res["rollup_p50"] <= 50,
            "notes": f"{BIG:,} events; rollups + fresh tail",
        }
    )
    rows.append(
        {
            "benchmark": "metering (d') same query, raw events only",
            "measured": f"p50 {res['raw_p50']:.1f} ms",
            "target": "(info)",
            "ok": None,
            "notes": "no rollups: index scan of the subject's raw events",
        }
    )
    return rows
