"""The server path (`ServerClient`, clickhouse-connect over HTTP) against the real engine behind
`clickhouse_http.ChdbHttpServer`: values and parameters round-trip exactly as through the in-process client,
inserts carry their deduplication token, errors arrive as the server's, concurrent threads share one client,
and what the server path writes is in the engine (the bridge answers nothing itself)."""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from chdb import session as chdb_session
from clickhouse_connect.driver.exceptions import DatabaseError

from metering import selectors, services, store
from metering.clickhouse import schema
from metering.clickhouse.connection import ChdbClient, ServerClient, make_client
from tests.metering.store_contract.clickhouse_http import ChdbHttpServer
from tests.metering.store_contract.conftest import HTTP_PASSWORD, HTTP_USER

pytestmark = pytest.mark.django_db
T = datetime(2025, 3, 1, 10, 30, 1, 123456, tzinfo=UTC)
PARAMS = {
    "s": "it's a \\ 'quoted' ünïcode\tstring",
    "t": T,
    "t_ny": T.astimezone(timezone(timedelta(hours=-5))),  # the same instant in another zone
    "ids": ["a", "b'c", "d\\e"],
    "n": 2**63 + 5,
}
SQL = (
    "SELECT {s:String} AS s, {t:DateTime64(6, 'UTC')} AS t, {t_ny:DateTime64(6, 'UTC')} AS t2, "
    "{ids:Array(String)} AS ids, {n:UInt64} AS n, toDecimal256('12345678901234567890.12345678901234567891', 20) "
    "AS d, CAST(NULL, 'Nullable(Decimal(76, 20))') AS nd, toDecimal256('-0.00000000000000000001', 20) AS tiny, "
    "toStartOfHour({t:DateTime64(6, 'UTC')}) AS hour, has({ids:Array(String)}, 'b''c') AS found"
)


@pytest.fixture
def clients(settings, chdb_url, http_url):
    settings.METERING_STORE = "clickhouse"
    settings.CLICKHOUSE_URL = chdb_url
    in_process = schema.client()
    settings.CLICKHOUSE_URL = http_url
    server = schema.client()
    assert isinstance(in_process, ChdbClient) and isinstance(server, ServerClient)
    schema.truncate(server)
    return in_process, server


def test_values_and_parameters_round_trip_as_in_process(clients):
    in_process, server = clients
    expected = [
        (
            PARAMS["s"],
            T,
            T,
            ["a", "b'c", "d\\e"],
            2**63 + 5,
            Decimal("12345678901234567890.12345678901234567891"),
            None,
            Decimal("-0.00000000000000000001"),
            datetime(2025, 3, 1, 10, tzinfo=UTC),
            1,
        )
    ]
    assert in_process.rows(SQL, PARAMS) == expected
    got = server.rows(SQL, PARAMS)
    assert got == expected
    assert all(v.tzinfo is not None for v in got[0] if isinstance(v, datetime))


def test_a_server_in_another_timezone_answers_the_same_instants(clients, chdb_path):
    """A server whose timezone is not UTC: values come back as the same instants, in UTC."""
    kolkata = ChdbHttpServer(chdb_path, HTTP_USER, HTTP_PASSWORD, timezone="Asia/Kolkata")
    try:
        server = make_client(f"http://{HTTP_USER}:s3cret%3A%2F%40@127.0.0.1:{kolkata.port}/meterline_http")
        assert server.rows("SELECT timezone()") == [("Asia/Kolkata",)]
        table = f"{server.database}.{schema.ROLLUP}"
        server.command(f"INSERT INTO {table} (organization_id, bucket) VALUES ('o', '2025-03-01 10:00:00')")
        expected = [(datetime(2025, 3, 1, 10, tzinfo=UTC), T)]
        sql = f"SELECT bucket, {{t:DateTime64(6, 'UTC')}} FROM {table}"
        got = server.rows(sql, {"t": T})
        assert got == expected
        assert [v.tzinfo for v in got[0]] == [UTC, UTC]
        server.close()
    finally:
        kolkata.close()


def test_inserts_reach_the_engine_with_their_token(clients, http_server, tenant_a):
    _, server = clients
    columns = ("organization_id", "source", "event_id", "type", "subject", "time", "data", "stored_at", "seq")
    columns += ("fp", "doc")
    row = (tenant_a.org.id, "app", "e1", "prompt", "s1", T, '{"n":1}', T, 2**63 + 1, 2**64 - 1, '{"n":"1"}')
    for _ in range(2):  # a retried block: the same token, stored once
        server.insert(f"{server.database}.{schema.EVENT}", columns, [row], "token-e1")
    sent = [
        r
        for r in http_server.requests
        if r["params"].get("insert_deduplication_token") == "token-e1" and r["insert"]
    ]
    assert len(sent) == 2
    # read straight from the engine, not through the bridge
    engine = chdb_session.Session(http_server.path)
    try:
        found = engine.query(
            f"SELECT event_id, toString(time), seq, fp FROM {server.database}.{schema.EVENT} FORMAT JSONCompact",
            "JSONCompact",
        ).bytes()
    finally:
        engine.close()
    assert json.loads(found)["data"] == [["e1", "2025-03-01 10:30:01.123456", 2**63 + 1, 2**64 - 1]]
    assert server.rows(f"SELECT count() FROM {server.database}.{schema.EVENT_KEY}") == [(1,)]


def test_errors_arrive_as_the_servers(clients, http_server, http_url):
    _, server = clients
    with pytest.raises(DatabaseError, match=r"code: 62"):
        server.rows("SELEKT 1")
    with pytest.raises(DatabaseError, match=r"code: 60"):
        server.rows(f"SELECT * FROM {server.database}.no_such_table")
    with pytest.raises(DatabaseError, match=r"code: 456"):
        server.rows("SELECT {missing:String}")
    request = urllib.request.Request(
        f"http://127.0.0.1:{http_server.port}/?query=SELEKT%201", method="POST", headers=_auth()
    )
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(request)
    assert exc.value.code == 400
    assert exc.value.headers["X-ClickHouse-Exception-Code"] == "62"
    assert exc.value.read().startswith(b"Code: 62. DB::Exception:")
    with pytest.raises(DatabaseError, match=r"code: 516"):
        make_client(http_url.replace("s3cret", "wrong"))


def test_one_client_serves_concurrent_threads(clients):
    _, server = clients
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(5):
                assert server.rows("SELECT {i:UInt32} + 1, sleep(0.01)", {"i": i}) == [(i + 1, 0)]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_the_store_through_the_server_path(clients, settings, http_url, tenant_a, tenant_b):
    """The drain's path end to end over HTTP: ingest, a duplicate and a conflict, the meter's answer."""
    settings.CLICKHOUSE_URL = http_url
    meters = [
        services.meter_create(
            organization=t.org,
            slug="tokens",
            event_type="prompt",
            aggregation="SUM",
            value_property="$.tokens",
        )
        for t in (tenant_a, tenant_b)
    ]
    ev = ("app", "e1", "prompt", "s1", T, json.dumps({"tokens": "0.00000000000000000001"}))
    r = services.events_ingest(organization=tenant_a.org, events=[ev, ev])
    assert (r.inserted, r.conflicts) == (1, 0)
    r = services.events_ingest(organization=tenant_a.org, events=[(*ev[:5], json.dumps({"tokens": 5}))])
    assert (r.inserted, r.conflicts) == (0, 1)
    services.events_ingest(organization=tenant_b.org, events=[(*ev[:5], json.dumps({"tokens": 7}))])
    span = {"from_": T - timedelta(minutes=45), "to": T + timedelta(hours=2)}  # partial hours and rollups
    rows = selectors.meter_query(organization=tenant_a.org, meter=meters[0], **span)
    assert [r.value for r in rows] == [Decimal("0.00000000000000000001")]
    rows = selectors.meter_query(organization=tenant_b.org, meter=meters[1], **span)
    assert [r.value for r in rows] == [Decimal(7)]
    assert [(e.id, e.time) for e in store.events_list(organization_id=tenant_a.org.id)] == [("e1", T)]


def _auth() -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{HTTP_USER}:{HTTP_PASSWORD}".encode()).decode()}
