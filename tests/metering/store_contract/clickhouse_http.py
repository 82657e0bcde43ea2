"""ClickHouse's HTTP interface in front of chdb (ClickHouse in this process), so that the production client path
(`ServerClient`: clickhouse-connect over HTTP) runs against the real engine in tests.

It is a transport only: every request is executed by the engine, nothing is answered from canned data.
What it speaks of https://clickhouse.com/docs/interfaces/http:

- `GET /ping`; `GET` (read-only, as a server's `readonly=2`) and `POST /` with the query in the `query`
  parameter and/or the body (the body follows the `query` parameter, as on a server);
- `database`, `default_format` (TabSeparated when the query names none), `query_id`, `param_<name>` (the
  engine binds them, as `{name:Type}` server-side parameters), every other URL parameter a setting of this
  query (`SET` in the engine session serving the request, undone with `SET … = DEFAULT` before the session
  serves another: settings never outlive the request);
- `session_id`: a second request of a session still running is refused with SESSION_IS_LOCKED, as a server
  does (session state itself is not kept: nothing here relies on it);
- an `INSERT … FORMAT <fmt>` whose data follows in the body (clickhouse-connect sends Native, its own
  encoding): the data is handed to the engine's input format for `<fmt>` unchanged (staged in a file the
  engine reads with `file()`), with the request's settings (`insert_deduplication_token` among them);
- request bodies whole or chunked (an insert is streamed), compressed with `Content-Encoding` lz4 (frame), zstd, gzip or deflate; answers compressed
  likewise when `enable_http_compression=1` and the client accepts it;
- Basic authentication (or `X-ClickHouse-User`/`-Key`) against one user: otherwise 403 with code 516;
- errors as the server answers them: the HTTP status ClickHouse gives the error code, the
  `X-ClickHouse-Exception-Code` header and `Code: N. DB::Exception: …` in the body; headers
  `X-ClickHouse-Summary`, `-Query-Id`, `-Format`, `-Timezone` (the engine's `timezone()`; `timezone=`
  plays a server configured with another one: every engine session gets it as `session_timezone`).
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import tempfile
import threading
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import lz4.frame
from chdb import session as chdb_session

try:  # the zstd module clickhouse-connect uses (standard library from Python 3.14, else the backport)
    from compression import zstd  # type: ignore[import-not-found]
except ImportError:
    from backports import zstd  # type: ignore[import-not-found,no-redef]

# Parameters of ClickHouse's HTTP handler that are not settings of the query.
_RESERVED = {
    "query",
    "database",
    "default_format",
    "query_id",
    "session_id",
    "session_timeout",
    "session_check",
    "user",
    "password",
    "quota_key",
    "compress",
    "decompress",
    "buffer_size",
    "wait_end_of_query",
    "client_protocol_version",
    "stacktrace",
    "role",
}
# ClickHouse's HTTP status per error code (src/Server/HTTPHandler.cpp, exceptionCodeToHTTPStatus), the codes
# this store can meet; every other code is 500.
_STATUS = {
    516: 403,  # AUTHENTICATION_FAILED
    192: 403,  # UNKNOWN_USER
    193: 403,  # WRONG_PASSWORD
    164: 403,  # READONLY
    62: 400,  # SYNTAX_ERROR
    27: 400,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    6: 400,  # CANNOT_PARSE_TEXT
    41: 400,  # CANNOT_PARSE_DATETIME
    53: 400,  # TYPE_MISMATCH
    36: 400,  # BAD_ARGUMENTS
    43: 400,  # ILLEGAL_TYPE_OF_ARGUMENT
    46: 400,  # UNKNOWN_FUNCTION
    47: 400,  # UNKNOWN_IDENTIFIER
    115: 400,  # UNKNOWN_SETTING
    456: 400,  # UNKNOWN_QUERY_PARAMETER
    457: 400,  # BAD_QUERY_PARAMETER
    60: 404,  # UNKNOWN_TABLE
    81: 404,  # UNKNOWN_DATABASE
    373: 500,  # SESSION_IS_LOCKED
}
_CODE = re.compile(r"Code: (\d+)\.")
_INSERT = re.compile(
    rb"^\s*INSERT\s+INTO\s+(?P<target>.+?)\s+FORMAT\s+(?P<fmt>\w+)[ \t]*(\r?\n|$)", re.I | re.S
)
_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.I)
_WRITE = re.compile(
    r"^\s*(INSERT|CREATE|DROP|ALTER|DELETE|TRUNCATE|RENAME|OPTIMIZE|SYSTEM|KILL|ATTACH|DETACH|GRANT|REVOKE)\b",
    re.I,
)


class ClickHouseError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class ChdbHttpServer:
    """`url` answers ClickHouse HTTP requests by executing them on chdb with its data in `path`."""

    def __init__(self, path: str, user: str, password: str, timezone: str | None = None) -> None:
        self.path = path
        self.server_timezone = timezone  # a server configured with another timezone than the engine's
        self.user, self.password = user, password
        self.staging = tempfile.mkdtemp(prefix="chdb-http-")
        self.requests: list[dict[str, Any]] = []  # what clients sent (tests look at the settings)
        self._sessions: set[str] = set()
        self._sessions_lock = threading.Lock()
        self._pool: list[Any] = []
        self._pool_lock = threading.Lock()
        probe = self._session_take()
        try:
            self.timezone = probe.query("SELECT timezone()", "TabSeparated").bytes().decode().strip()
        finally:
            self._session_give(probe, [])
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="chdb-http", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        for s in self._pool:
            s.close()
        for name in os.listdir(self.staging):
            os.unlink(os.path.join(self.staging, name))
        os.rmdir(self.staging)

    # --- one request ---------------------------------------------------------------------------------

    def execute(
        self, params: list[tuple[str, str]], body: bytes, *, readonly: bool
    ) -> tuple[bytes, str, dict[str, str]]:
        """Run one request's statement; (answer, its format, summary). Raises ClickHouseError."""
        named = dict(params)
        query = named.get("query", "").encode()
        full = query + (b"\n" if query and body else b"") + body
        if not full.strip():
            raise ClickHouseError(62, "Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)")
        session_id = named.get("session_id")
        if session_id:
            with self._sessions_lock:
                if session_id in self._sessions:
                    raise ClickHouseError(
                        373,
                        f"Code: 373. DB::Exception: Session {session_id} is locked by a concurrent client. "
                        "(SESSION_IS_LOCKED)",
                    )
                self._sessions.add(session_id)
        try:
            return self._run(named, params, full, readonly)
        finally:
            if session_id:
                with self._sessions_lock:
                    self._sessions.discard(session_id)

    def _run(
        self, named: dict[str, str], params: list[tuple[str, str]], full: bytes, readonly: bool
    ) -> tuple[bytes, str, dict[str, str]]:
        bound = {k[len("param_") :]: v for k, v in params if k.startswith("param_")}
        settings = [(k, v) for k, v in params if k not in _RESERVED and not k.startswith("param_")]
        staged: str | None = None
        insert = _INSERT.match(full)
        if insert and full[insert.end() :]:
            # The data goes to the engine's own input format, byte for byte.
            staged = os.path.join(self.staging, f"{uuid.uuid4().hex}.data")
            with open(staged, "wb") as f:
                f.write(full[insert.end() :])
            target, fmt = insert["target"].decode(), insert["fmt"].decode()
            sql = f"INSERT INTO {target} SELECT * FROM file('{staged}', '{fmt}')"
        else:
            sql = full.decode()
        if readonly and _WRITE.match(sql):
            raise ClickHouseError(
                164, "Code: 164. DB::Exception: Cannot execute query in readonly mode. (READONLY)"
            )
        found = _FORMAT.search(sql)
        out_format = found[1] if found else named.get("default_format", "TabSeparated")
        s = self._session_take()
        applied: list[str] = []
        try:
            s.query(f"USE `{named.get('database', 'default').replace('`', '')}`")
            for key, value in settings:
                if not re.fullmatch(r"\w+", key):
                    raise ClickHouseError(
                        115, f"Code: 115. DB::Exception: Unknown setting '{key}'. (UNKNOWN_SETTING)"
                    )
                s.query(f"SET {key} = '{_escape(value)}'")
                applied.append(key)
            result = s.query(sql, out_format, params=bound or None)
            summary = {
                "read_rows": str(result.rows_read()),
                "read_bytes": str(result.bytes_read()),
                "elapsed_ns": str(int(result.elapsed() * 1e9)),
            }
            return result.bytes(), out_format, summary
        except ClickHouseError:
            raise
        except Exception as exc:  # the engine's error: Code: N. DB::Exception: ...
            message = str(exc).strip()
            code = _CODE.search(message)
            raise ClickHouseError(int(code[1]) if code else 1001, message) from exc
        finally:
            if staged:
                os.unlink(staged)
            self._session_give(s, applied)

    def _session_take(self) -> Any:
        """An engine session with no setting changed (opening one costs as much as a query: they are reused)."""
        with self._pool_lock:
            if self._pool:
                return self._pool.pop()
        s = chdb_session.Session(self.path)
        if self.server_timezone:
            s.query(f"SET session_timezone = '{_escape(self.server_timezone)}'")
        return s

    def _session_give(self, s: Any, applied: list[str]) -> None:
        """Back to the pool once the request's settings are undone (they never outlive the request)."""
        try:
            for key in applied:
                s.query(f"SET {key} = DEFAULT")
        except Exception:
            s.close()
            return
        with self._pool_lock:
            self._pool.append(s)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _decompress(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if not encoding or encoding == "identity":
        return body
    if encoding == "lz4":
        return bytes(lz4.frame.decompress(body))
    if encoding == "zstd":
        return bytes(zstd.decompress(body))
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    raise ClickHouseError(
        1001, f"Code: 1001. DB::Exception: Unknown HTTP Content-Encoding '{encoding}'. (STD_EXCEPTION)"
    )


def _compress(body: bytes, accept: str) -> tuple[bytes, str | None]:
    for encoding in (e.split(";")[0].strip().lower() for e in accept.split(",")):
        if encoding == "lz4":
            return bytes(lz4.frame.compress(body)), "lz4"
        if encoding == "zstd":
            return bytes(zstd.compress(body)), "zstd"
        if encoding == "gzip":
            return gzip.compress(body), "gzip"
    return body, None


def _handler(server: ChdbHttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet in tests
            return

        def do_GET(self) -> None:
            if urlsplit(self.path).path == "/ping":
                self._send(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
                return
            self._query(readonly=True)

        def do_POST(self) -> None:
            self._query(readonly=False)

        def _authenticated(self, params: dict[str, str]) -> bool:
            user, password = params.get("user", "default"), params.get("password", "")
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            elif self.headers.get("X-ClickHouse-User"):
                user = self.headers["X-ClickHouse-User"]
                password = self.headers.get("X-ClickHouse-Key", "")
            return (user, password) == (server.user, server.password)

        def _query(self, *, readonly: bool) -> None:
            params = parse_qsl(urlsplit(self.path).query, keep_blank_values=True)
            named = dict(params)
            query_id = named.get("query_id") or str(uuid.uuid4())
            raw = self._body()
            base = {"X-ClickHouse-Query-Id": query_id, "X-ClickHouse-Timezone": server.timezone}
            try:
                if not self._authenticated(named):
                    raise ClickHouseError(
                        516,
                        "Code: 516. DB::Exception: default: Authentication failed: password is incorrect, or "
                        "there is no user with such name. (AUTHENTICATION_FAILED)",
                    )
                body = _decompress(raw, self.headers.get("Content-Encoding", ""))
                server.requests.append(
                    {
                        "params": named,
                        "encoding": self.headers.get("Content-Encoding"),
                        "insert": bool(_INSERT.match(named.get("query", "").encode() + b"\n" + body)),
                    }
                )
                answer, fmt, summary = server.execute(params, body, readonly=readonly)
            except ClickHouseError as exc:
                text = str(exc)
                self._send(
                    _STATUS.get(exc.code, 500),
                    (
                        text if text.startswith("Code:") else f"Code: {exc.code}. DB::Exception: {text}"
                    ).encode()
                    + b"\n",
                    {
                        **base,
                        "Content-Type": "text/plain; charset=UTF-8",
                        "X-ClickHouse-Exception-Code": str(exc.code),
                    },
                )
                return
            headers = {
                **base,
                "Content-Type": "application/octet-stream"
                if fmt == "Native"
                else "text/plain; charset=UTF-8",
                "X-ClickHouse-Format": fmt,
                "X-ClickHouse-Summary": json.dumps(summary),
            }
            if named.get("enable_http_compression") == "1":
                answer, encoding = _compress(answer, self.headers.get("Accept-Encoding", ""))
                if encoding:
                    headers["Content-Encoding"] = encoding
            self._send(200, answer, headers)

        def _body(self) -> bytes:
            """The request body, sent whole (Content-Length) or in chunks (an insert streamed by the client)."""
            if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
