"""The store-contract suite runs every test against both event stores: PostgreSQL (the default) and
ClickHouse (chdb, ClickHouse in this process, its data in a temporary directory for the test session).
Expected results are the same constants for both."""

from __future__ import annotations

import shutil
import tempfile

import pytest

from metering.clickhouse import rollups, schema


@pytest.fixture(scope="session")
def chdb_url():
    path = tempfile.mkdtemp(prefix="meterline-chdb-")
    yield f"chdb://{path}"
    for url, client in list(schema._clients.items()):
        if url.startswith("chdb://"):
            client.close()
            del schema._clients[url]
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def use_clickhouse(settings, chdb_url):
    """METERING_STORE=clickhouse for this test, on empty ClickHouse tables."""
    settings.METERING_STORE = "clickhouse"
    settings.CLICKHOUSE_URL = chdb_url
    _empty()
    return chdb_url


@pytest.fixture(params=["postgres", "clickhouse"])
def store_kind(request, settings, chdb_url):
    """Each test once per store."""
    settings.METERING_STORE = request.param
    settings.CLICKHOUSE_URL = chdb_url
    if request.param == "clickhouse":
        _empty()
    return request.param


def _empty() -> None:
    schema.truncate(schema.client())
    rollups._seen_ready.clear()  # the views went with the tables
