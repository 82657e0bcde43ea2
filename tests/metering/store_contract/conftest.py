"""The store-contract suite runs every test against each event store: PostgreSQL (the default), ClickHouse in
this process (chdb, `ChdbClient`), and ClickHouse over HTTP through clickhouse-connect (`ServerClient`, the
production path) to the same engine behind `clickhouse_http.ChdbHttpServer`. ClickHouse's data is in a
temporary directory for the test session. Expected results are the same constants for every store."""

from __future__ import annotations

import shutil
import tempfile

import pytest

from metering.clickhouse import rollups, schema
from tests.metering.store_contract.clickhouse_http import ChdbHttpServer

HTTP_USER, HTTP_PASSWORD = "meterline", "s3cret:/@"  # characters a URL must quote


@pytest.fixture(scope="session")
def chdb_path():
    path = tempfile.mkdtemp(prefix="meterline-chdb-")
    yield path
    for url, client in list(schema._clients.items()):
        client.close()
        del schema._clients[url]
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def chdb_url(chdb_path):
    return f"chdb://{chdb_path}"


@pytest.fixture(scope="session")
def http_server(chdb_path):
    server = ChdbHttpServer(chdb_path, HTTP_USER, HTTP_PASSWORD)
    yield server
    server.close()


@pytest.fixture(scope="session")
def http_url(http_server):
    """A ClickHouse server URL (its own database on the same engine), as production configures one."""
    return f"http://{HTTP_USER}:s3cret%3A%2F%40@127.0.0.1:{http_server.port}/meterline_http"


CLICKHOUSE_KINDS = ["chdb", "http"]


@pytest.fixture(params=CLICKHOUSE_KINDS)
def use_clickhouse(request, settings, chdb_url, http_url):
    """METERING_STORE=clickhouse for this test, on empty ClickHouse tables; once in process (chdb), once
    through the server client (HTTP)."""
    settings.METERING_STORE = "clickhouse"
    settings.CLICKHOUSE_URL = chdb_url if request.param == "chdb" else http_url
    _empty()
    return settings.CLICKHOUSE_URL


@pytest.fixture(params=["postgres", "clickhouse", "clickhouse-http"])
def store_kind(request, settings, chdb_url, http_url):
    """Each test once per store (ClickHouse twice: in process, and through the server client)."""
    settings.METERING_STORE = "postgres" if request.param == "postgres" else "clickhouse"
    settings.CLICKHOUSE_URL = http_url if request.param == "clickhouse-http" else chdb_url
    if request.param != "postgres":
        _empty()
    return request.param


def _empty() -> None:
    schema.truncate(schema.client())
    rollups._seen_ready.clear()  # the views went with the tables
