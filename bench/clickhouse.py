"""ClickHouse store benchmarks, side by side with PostgreSQL (run by bench/run.py; `BENCH=clickhouse make bench`).

ClickHouse runs in this process (chdb) on a temporary data directory made for the run and removed after it
(under BENCH_CLICKHOUSE_TMP, default the system's temporary directory): every figure is from data made in
the same run.
  (e) drain throughput: BENCH_CH_EVENTS events (10% of the batches accepted twice) accepted into the inbox
      in batches of 1000, then timed while the drain stores and deduplicates them: into ClickHouse, and into
      PostgreSQL with the same batches (the production path of either store);
  (f) the 30-day meter query of bench/metering.py (one subject, 30 days by day) over each size of
      BENCH_CH_SIZES (default 10M and 100M) events generated inside ClickHouse with numbers() (60 days,
      1000 subjects, the same shape as the PostgreSQL data set); rollups (the production path) and raw events
      only for comparison. The PostgreSQL figure over its 10M data set is measured in the same run when
      that data set exists in this database (made by `BENCH=metering`), else reported as absent.

How a data set is made: the meter's rollup view is created first (`rollups.ensure`, the production path),
the events are generated into a staging table of the same definition, folded into the meter's rollups by
the view's own SELECT over the staging table, and attached partition by partition to `metering_event`
(an attach does not run the views, so nothing is folded twice). Generated events bypass the drain, so
they are not in the dedup index (`metering_event_key`); nothing ingests their ids again.

Knobs (environment): BENCH_CH_EVENTS (default 100000; 0 skips (e)), BENCH_CH_SIZES (default
"10000000,100000000"), BENCH_CLICKHOUSE_TMP.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.metering import bench_query, log, make_event

N = int(os.environ.get("BENCH_CH_EVENTS", "100000"))
SIZES = [int(s) for s in os.environ.get("BENCH_CH_SIZES", "10000000,100000000").split(",") if s]
TMP_PARENT = os.environ.get("BENCH_CLICKHOUSE_TMP") or None
DATA_DIR = Path()  # set by run(): a temporary directory, removed after the run
SPAN_SECONDS = 60 * 86400  # 60 days from 2025-01-01, as bench/metering.py's 10M data set


def _org(slug: str):
    from core.models import Organization
    from core.services import organization_create
    from metering import services
    from metering.models import Meter

    org = Organization.objects.filter(slug=slug).first() or organization_create(slug=slug, name=slug)
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
    return org, meter


def _use(store: str) -> None:
    from django.conf import settings

    settings.METERING_STORE = store
    settings.CLICKHOUSE_URL = f"chdb://{DATA_DIR}"


def bench_drain(store: str, run: str) -> tuple[float, int]:
    """Accept N events (+10% resent batches) into the inbox, then time the drain into `store`."""
    from metering import drain
    from metering import store as event_store
    from metering.clickhouse import schema

    _use(store)
    schema.client()  # the engine starts before the clock does
    org, _meter = _org(f"bench-ch-drain-{store}")
    bodies = []
    for start in range(0, N, 1000):
        events = [make_event(i, f"{run}-{store}") for i in range(start, min(N, start + 1000))]
        bodies.append((json.dumps(events).encode(), len(events)))
    for body, count in bodies + bodies[::10]:
        event_store.inbox_append(organization_id=org.id, body=body, event_count=count, received_at=_now())
    t0 = time.perf_counter()
    results = drain.events_drain_all()
    elapsed = time.perf_counter() - t0
    stored = sum(r.inserted for r in results)
    if stored != N:
        raise RuntimeError(f"{store}: stored {stored} events, expected {N} (dedup or loss)")
    return N / elapsed, sum(r.received for r in results)


def _now():
    from django.utils import timezone

    return timezone.now()


def generate(size: int) -> tuple:
    """An organization with `size` events in ClickHouse, made in the engine (see the module docstring):
    event i lands at (i * 7919 mod size) of the 60 days, subject i mod 1000."""
    from metering import store
    from metering.clickhouse import rollups, schema

    _use("clickhouse")
    org, meter = _org(f"bench-ch-{size}")
    ch = schema.client()
    db = ch.database
    spec = store.MeterSpec.of(meter)
    key = rollups.ensure(spec)  # the view and the (empty) history: the production path
    stage = f"{db}.bench_stage"
    ch.command(f"DROP TABLE IF EXISTS {stage}")
    ch.command(f"CREATE TABLE {stage} AS {db}.{schema.EVENT}")
    log(f"generating {size:,} events in ClickHouse for {org.slug}…")
    t0 = time.perf_counter()
    step = 10_000_000
    for lo in range(0, size, step):
        count = min(size, lo + step) - lo
        ch.command(
            f"INSERT INTO {stage} (organization_id, source, event_id, type, subject, time, data, stored_at, seq, "
            "fp, doc) "
            "SELECT {o:String}, 'gen', concat('g', toString(number)), 'prompt', "
            "concat('customer-', toString(number % 1000)), "
            "toDateTime64('2025-01-01 00:00:00', 6, 'UTC') + "
            "toIntervalSecond(intDiv(((number * 7919) % {n:UInt64}) * {span:UInt64}, {n:UInt64})), "
            'concat(\'{"tokens":\', toString(number % 997), \',"model":"\', model, \'","type":"\', kind, \'"}\'), '
            "now64(6), number + 1, cityHash64(number), "
            'concat(\'{"tokens":"\', toString(number % 997), \'","model":"\', model, \'","type":"\', kind, \'"}\') '
            "FROM (SELECT number, ['gpt-4o','gpt-4o-mini','claude','llama'][1 + number % 4] AS model, "
            "if(number % 2 = 0, 'input', 'output') AS kind FROM numbers_mt({lo:UInt64}, {count:UInt64})) "
            "SETTINGS max_insert_threads = 2, min_insert_block_size_rows = 10000000, "
            "min_insert_block_size_bytes = 4294967296",
            {"o": org.id, "span": SPAN_SECONDS, "n": size, "lo": lo, "count": count},
        )
        log(f"  {lo + count:,} rows ({time.perf_counter() - t0:.0f}s)")
    columns = "organization_id, meter_key, bucket, subject, group_key, event_count, value_count, value_sum, "
    columns += "value_min, value_max"
    ch.command(f"INSERT INTO {db}.{schema.ROLLUP} ({columns}) " + rollups._select(spec, key, stage))
    log(f"  folded into the meter's rollups ({time.perf_counter() - t0:.0f}s)")
    for (partition,) in ch.rows(
        "SELECT DISTINCT partition_id FROM system.parts WHERE database = {d:String} AND table = 'bench_stage' "
        "AND active",
        {"d": db},
    ):
        ch.command(f"ALTER TABLE {db}.{schema.EVENT} ATTACH PARTITION ID '{partition}' FROM {stage}")
    ch.command(f"DROP TABLE {stage}")
    (have,) = ch.rows(
        f"SELECT count() FROM {db}.{schema.EVENT} WHERE organization_id = {{o:String}}", {"o": org.id}
    )[0]
    if have != size:
        raise RuntimeError(f"generated {have} events, expected {size}")
    log(f"  attached to {schema.EVENT} ({time.perf_counter() - t0:.0f}s)")
    return org, meter


def query_cpu_ms(org, meter, n: int = 15) -> float:
    """CPU time of this process per 30-day query, p50: chdb runs the query in this process's threads, so
    this is the work itself, whatever else the machine runs (wall time is not, on a shared machine)."""
    from metering.selectors import meter_query

    frm, to = datetime(2025, 1, 15, tzinfo=UTC), datetime(2025, 2, 14, tzinfo=UTC)
    samples = []
    for _ in range(n):
        c0 = time.process_time()
        meter_query(
            organization=org, meter=meter, from_=frm, to=to, window_size="DAY", subjects=["customer-42"]
        )
        samples.append((time.process_time() - c0) * 1000)
    return statistics.median(samples)


def _pg_query() -> str:
    from core.models import Organization
    from metering.models import Meter

    _use("postgres")
    org = Organization.objects.filter(slug="bench-big-10000000").first()
    meter = org and Meter.objects.filter(organization=org, slug="tokens", deleted_at__isnull=True).first()
    if org is None or meter is None:
        return "absent (no 10M PostgreSQL data set in this database: run BENCH=metering first)"
    res = bench_query(org, meter, None, None)
    return (
        f"PostgreSQL over 10M in this run: p50 {res['rollup_p50']:.1f} ms (raw only {res['raw_p50']:.1f} ms)"
    )


def _data_dir_remove() -> None:
    from metering.clickhouse import schema

    for url, client in list(schema._clients.items()):
        if url.startswith("chdb://"):
            client.close()
            del schema._clients[url]
    shutil.rmtree(DATA_DIR, ignore_errors=True)


def run() -> list[dict]:
    global DATA_DIR
    DATA_DIR = Path(tempfile.mkdtemp(prefix="meterline-bench-ch-", dir=TMP_PARENT))
    try:
        return _run()
    finally:
        _use("postgres")
        _data_dir_remove()


def _run() -> list[dict]:
    load_start = os.getloadavg()[0]
    run_id = f"ch{int(time.time())}"
    rows: list[dict] = []
    if N:
        log(f"(e) drain {N:,} accepted events into each store…")
        ch_rate, received = bench_drain("clickhouse", run_id)
        pg_rate, _ = bench_drain("postgres", run_id)
        rows.append(
            {
                "benchmark": "clickhouse (e) drain: stored and deduplicated",
                "measured": f"ClickHouse {ch_rate:,.0f} events/s; PostgreSQL {pg_rate:,.0f} events/s",
                "target": "(info)",
                "ok": None,
                "notes": f"{received:,} accepted ({N:,} distinct); chdb in-process; load avg at start "
                f"{load_start:.1f} on {os.cpu_count()} CPUs",
            }
        )
    pg_note = _pg_query()
    for size in SIZES:
        t0 = time.perf_counter()
        org, meter = generate(size)
        made = time.perf_counter() - t0
        _use("clickhouse")
        res = bench_query(org, meter, None, None)
        rows.append(
            {
                "benchmark": f"clickhouse (f) query 1 subject, 30 days by day, {size:,} events",
                "measured": f"p50 {res['rollup_p50']:.1f} ms (max {res['rollup_max']:.1f}; CPU p50 "
                f"{query_cpu_ms(org, meter):.1f} ms); raw only p50 {res['raw_p50']:.1f} ms",
                "target": "<= 50 ms" if size >= 100_000_000 else "(info)",
                "ok": res["rollup_p50"] <= 50 if size >= 100_000_000 else None,
                "notes": f"data set made in {made:.0f}s (temporary, removed after the run); load avg "
                f"{os.getloadavg()[0]:.1f}; {pg_note}",
            }
        )
    return rows
