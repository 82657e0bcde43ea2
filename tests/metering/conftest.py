"""Helpers for metering tests: ingest through the real API, create meters through the service."""

from __future__ import annotations

import json
from typing import Any

import pytest

from metering import drain
from tests.factories import MeterFactory


def ce(
    id_: str,
    *,
    subject: str = "cust-1",
    type_: str = "prompt",
    time: str = "2025-01-01T12:00:00Z",
    source: str = "app",
    data: Any = None,
) -> dict[str, Any]:
    ev = {"id": id_, "source": source, "specversion": "1.0", "type": type_, "subject": subject, "time": time}
    if data is not None:
        ev["data"] = data
    return ev


def post_events(
    client,
    events: Any,
    *,
    content_type: str = "application/cloudevents-batch+json",
    path: str = "/api/v1/events",
):
    """POST, then drain every accepted batch into the event store (what the Celery drain task does), so
    tests can read `Event` directly. Tests of the accepted-but-not-yet-stored state post themselves."""
    body = events if isinstance(events, (bytes, str)) else json.dumps(events)
    response = client.post(path, data=body, content_type=content_type)
    drain.events_drain_all()
    return response


def make_tokens_meter(org):
    """The meter most metering tests read: SUM of `$.tokens` by model and type."""
    return MeterFactory(organization=org, slug="tokens", group_by={"model": "$.model", "type": "$.type"})


@pytest.fixture
def tokens_meter(tenant_a):
    return make_tokens_meter(tenant_a.org)


@pytest.fixture
def tokens_meter_b(tenant_b):
    return make_tokens_meter(tenant_b.org)
