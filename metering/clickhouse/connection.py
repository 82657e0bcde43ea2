"""The connection seam: the ClickHouse store sends the very same SQL to an in-process engine (`chdb`, tests and
single-machine development) or to a ClickHouse server (`clickhouse-connect`, production).

`CLICKHOUSE_URL` selects it:
- `http://user:password@host:8123/meterline` (or `https://`): a server, through clickhouse-connect's HTTP
  client; the path is the database (default `meterline`).
- `chdb:///path/to/dir` (optionally `?database=meterline`): ClickHouse in this process, its data in that
  directory. One directory per process: chdb keeps one engine per process.

`schema.client()` is the process's client for `CLICKHOUSE_URL`, its tables created on first use.

SQL uses ClickHouse's server-side parameters (`{org:String}`, `{ids:Array(String)}`), bound by the engine
in both cases, and `{db}` for the database name (formatted here, an identifier checked once). Results come
back as tuples of plain Python values (str, int, Decimal, aware UTC datetime, None, list) either way.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

# chdb and clickhouse_connect are imported where a client of that kind is made: a deployment installs only
# the one it uses.

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_TS = "%Y-%m-%d %H:%M:%S.%f"
# Decimals and 64-bit integers as JSON strings (exact); chdb answers in JSONCompact.
_CHDB_SETTINGS = "output_format_json_quote_decimals=1, output_format_json_quote_64bit_integers=1"


class Client(Protocol):
    database: str

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None: ...

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]: ...

    def insert(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], token: str
    ) -> None: ...


def ts(value: datetime) -> str:
    """A datetime as ClickHouse reads a DateTime64(6, 'UTC') parameter or value."""
    return value.astimezone(UTC).strftime(_TS)


def literal(value: Any) -> str:
    """A value as a ClickHouse literal inside an Array(...) parameter."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, datetime):
        return f"'{ts(value)}'"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(literal(v) for v in value) + "]"
    return str(value)


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})


def _chdb_param(value: Any) -> str:
    """A parameter's value as the engine reads it: in the escaped text format (a backslash escapes), as a
    server reads `param_<name>` (clickhouse-connect escapes them alike)."""
    if isinstance(value, datetime):
        return ts(value)
    if isinstance(value, (list, tuple)):
        return literal(value)
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    return str(value)


_DECIMAL = re.compile(r"^(Nullable\()?Decimal")
_DATETIME = re.compile(r"^(Nullable\()?DateTime")
_INT64 = re.compile(r"^(Nullable\()?U?Int(64|128|256)")


def _convert(value: Any, ch_type: str) -> Any:
    if value is None:
        return None
    if _DECIMAL.match(ch_type):
        return Decimal(value)
    if _DATETIME.match(ch_type):
        return datetime.strptime(value if "." in value else value + ".000000", _TS).replace(tzinfo=UTC)
    if _INT64.match(ch_type):
        return int(value)
    return value


class ChdbClient:
    """ClickHouse in this process (chdb), its data in `path`."""

    def __init__(self, path: str, database: str) -> None:
        from chdb import session  # optional dependency, loaded only when configured

        self.database = database
        self.path = path
        self._session = session.Session(path)
        self._lock = threading.Lock()  # one statement at a time on the in-process engine
        self._session.query(f"CREATE DATABASE IF NOT EXISTS {database}")

    def _run(self, sql: str, params: Mapping[str, Any] | None, fmt: str) -> Any:
        bound = {k: _chdb_param(v) for k, v in (params or {}).items()} or None
        with self._lock:
            return self._session.query(sql, fmt, params=bound)

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._run(sql, params, "CSV")

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        sep = " , " if " SETTINGS " in sql else " SETTINGS "
        raw = self._run(f"{sql}{sep}{_CHDB_SETTINGS}", params, "JSONCompact").bytes()
        if not raw:
            return []
        doc = json.loads(raw)
        types = [c["type"] for c in doc["meta"]]
        return [tuple(_convert(v, t) for v, t in zip(row, types, strict=True)) for row in doc["data"]]

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], token: str) -> None:
        if not rows:
            return
        lines = "\n".join(
            json.dumps(
                {c: (ts(v) if isinstance(v, datetime) else v) for c, v in zip(columns, row, strict=True)},
                ensure_ascii=False,
            )
            for row in rows
        )
        token_sql = "'" + token.replace("'", "") + "'"
        self._run(
            f"INSERT INTO {table} ({', '.join(columns)}) SETTINGS insert_deduplication_token = {token_sql} "
            f"FORMAT JSONEachRow\n{lines}",
            None,
            "CSV",
        )

    def close(self) -> None:
        self._session.close()


class ServerClient:
    """A ClickHouse server over HTTP (clickhouse-connect)."""

    def __init__(self, url: str, database: str) -> None:
        import clickhouse_connect  # optional dependency, loaded only when configured

        parsed = urlparse(url)
        self.database = database
        self._client = clickhouse_connect.get_client(
            host=parsed.hostname or "localhost",
            port=parsed.port or (8443 if parsed.scheme == "https" else 8123),
            username=unquote(parsed.username or "default"),
            password=unquote(parsed.password or ""),
            secure=parsed.scheme == "https",
            database="default",
            # One client serves every thread of the process: requests must not share a server session (a
            # server refuses a session's second concurrent query with SESSION_IS_LOCKED), and nothing here
            # uses session state.
            autogenerate_session_id=False,
        )
        self._client.command(f"CREATE DATABASE IF NOT EXISTS {database}")

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._client.command(sql, parameters=dict(params or {}))

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        result = self._client.query(sql, parameters=dict(params or {}))
        return [tuple(_aware(v) for v in row) for row in result.result_rows]

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], token: str) -> None:
        if rows:
            self._client.insert(
                table, list(rows), column_names=list(columns), settings={"insert_deduplication_token": token}
            )

    def close(self) -> None:
        self._client.close()


def _aware(value: Any) -> Any:
    """A datetime as aware UTC (as the in-process client answers): clickhouse-connect gives naive UTC for UTC
    columns, or the server's timezone for a column it reads without one."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def make_client(url: str) -> ChdbClient | ServerClient:
    parsed = urlparse(url)
    if parsed.scheme == "chdb":
        database = parse_qs(parsed.query).get("database", ["meterline"])[0]
        if not _IDENT.match(database) or not parsed.path:
            raise ImproperlyConfigured("CLICKHOUSE_URL=chdb:///<directory>[?database=<name>]")
        return ChdbClient(unquote(parsed.path), database)
    if parsed.scheme in ("http", "https"):
        database = parsed.path.strip("/") or "meterline"
        if not _IDENT.match(database):
            raise ImproperlyConfigured(f"CLICKHOUSE_URL: {database!r} is not a database name")
        return ServerClient(url, database)
    raise ImproperlyConfigured("CLICKHOUSE_URL must start with http://, https:// or chdb://")
