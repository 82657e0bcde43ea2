"""Faults injected into a real running stack (tests/faults/conftest.py): the embedded PostgreSQL stopped
and started under ingest load, the broker killed and brought back. Exact counts, read straight from the
stack's database; a second organization's data must never move."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest

from config import embedded_pg
from tests.faults.conftest import Stack, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.processes]

BATCH = 10


def _events(source: str, batch: int) -> list[dict]:
    return [
        {
            "specversion": "1.0",
            "id": f"{batch}-{i}",
            "source": source,
            "type": "fault.ping",
            "subject": f"subject-{i % 3}",
            "time": "2026-11-20T12:00:00Z",
            "data": {"n": 1},
        }
        for i in range(BATCH)
    ]


def _post_batch(stack: Stack, events: list[dict], timeout: float = 5) -> int:
    req = urllib.request.Request(
        stack.base_url + "/api/v1/events",
        data=json.dumps(events).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {stack.key}",
            "Content-Type": "application/cloudevents-batch+json",
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, TimeoutError):
        return 0  # no answer: connection refused or reset, timeout


def _stored(stack: Stack, source: str) -> tuple[int, int]:
    rows = stack.sql(
        "SELECT count(*), count(DISTINCT event_id) FROM metering_event WHERE source = %s", (source,)
    )
    return rows[0]


def _ensure_meter(stack: Stack) -> None:
    status, body = stack.request("GET", "/api/v1/meters/fault_pings")
    if status == 404:
        status, body = stack.request(
            "POST",
            "/api/v1/meters",
            {"slug": "fault_pings", "eventType": "fault.ping", "aggregation": "COUNT"},
        )
        assert status == 201, body


def _counted(stack: Stack) -> int:
    status, body = stack.request(
        "GET", "/api/v1/meters/fault_pings/query?from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z"
    )
    assert status == 200, body
    return int(sum(float(row["value"]) for row in json.loads(body)["data"]))


def _bystander_rows(stack: Stack) -> int:
    return stack.sql(
        "SELECT count(*) FROM metering_event e JOIN core_organization o ON o.id = e.organization_id "
        "WHERE o.slug = 'bystander'"
    )[0][0]


def test_postgres_stopped_and_started_while_clients_ingest_with_retries(stack):
    """Three clients send 90 batches of 10 events (paced: about 4 s of traffic), each retrying a batch until
    it is answered 204, while
    the embedded PostgreSQL is stopped (fast shutdown) for two seconds and started again. Every event
    acknowledged with 204 is stored and counted exactly once: a retry of a batch whose answer was lost
    is deduplicated on (source, id)."""
    _ensure_meter(stack)
    before = _counted(stack)
    source = f"pg-restart-{uuid.uuid4().hex[:8]}"
    pending = list(range(90))
    lock = threading.Lock()
    acknowledged: list[int] = []
    refused: list[int] = []  # answers other than 204 (and no answer at all) seen during the outage
    deadline = time.monotonic() + 90

    def client() -> None:
        while True:
            with lock:
                if not pending:
                    return
                batch = pending.pop(0)
            while time.monotonic() < deadline:
                status = _post_batch(stack, _events(source, batch))
                if status == 204:
                    with lock:
                        acknowledged.append(batch)
                    time.sleep(0.1)
                    break
                with lock:
                    refused.append(status)
                time.sleep(0.2)

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    wait_for(lambda: len(acknowledged) >= 10, 30, "ten batches acknowledged before the fault")
    embedded_pg.server_stop(stack.pg, forget_handles=False)
    assert not embedded_pg.server_running(stack.pg)
    time.sleep(2)
    embedded_pg.server_start(stack.pg)
    for t in threads:
        t.join(timeout=120)
    assert sorted(acknowledged) == list(range(90))
    assert refused, "the outage should have refused some requests"
    assert set(refused) <= {0, 500, 502, 503}, refused  # no answer, or an error: never a false 204 or a 400
    # the drain (Celery beat every 10 s, and web processes after each accept) stores every batch, once
    wait_for(lambda: _stored(stack, source) == (900, 900), 60, "the 900 acknowledged events to be stored")
    assert _counted(stack) - before == 900
    assert stack.sql("SELECT count(*) FROM metering_inboxbatch WHERE failed_at IS NOT NULL")[0][0] == 0
    assert _bystander_rows(stack) == 0
    assert stack.healthy()["database"]["status"] == "ok"


def test_broker_unreachable_ingest_still_accepts_and_the_drain_catches_up(stack):
    """The Redis broker is killed: ingest still answers 204 at once (the request only writes the inbox;
    asking for a drain fails quietly), nothing is stored while no worker gets a task, and once the
    broker is back the periodic drain stores every accepted event exactly once."""
    _ensure_meter(stack)
    before = _counted(stack)
    source = f"broker-down-{uuid.uuid4().hex[:8]}"
    stack.redis.kill()
    try:
        statuses = [_post_batch(stack, _events(source, b), timeout=10) for b in range(20)]
        assert statuses == [204] * 20
        time.sleep(3)
        assert _stored(stack, source) == (0, 0)  # accepted, waiting in the inbox for a drain
    finally:
        stack.redis.start()
    wait_for(lambda: _stored(stack, source) == (200, 200), 60, "the drain to store the 200 events")
    assert _counted(stack) - before == 200
    assert _bystander_rows(stack) == 0
