"""The official `lago-python-client`, unchanged, against the live test server (`api_url=<server>/lago/`)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, TypeVar

import pytest

M = TypeVar("M")


def build(model: type[M], **fields: Any) -> M:
    """A lago-python-client model from its fields (the client's own validation, fields left out are None)."""
    return model.parse_obj(fields)  # type: ignore[attr-defined]


def at(text: str) -> datetime:
    """'2026-10-16' or '2026-10-16 12:30' as UTC."""
    fmt = "%Y-%m-%d %H:%M" if " " in text else "%Y-%m-%d"
    return datetime.strptime(text, fmt).replace(tzinfo=UTC)


def unix(text: str, fraction: str = "") -> str:
    """Lago's event timestamp: Unix seconds (with fractions), as a string."""
    return f"{int(at(text).timestamp())}{fraction}"


@pytest.fixture
def lago_clients(live_server, tenant_a, tenant_b):
    """(A's client, B's client): each with its organization's admin key."""
    from lago_python_client.client import Client

    url = f"{live_server.url}/lago/"
    return (
        Client(api_key=tenant_a.keys["admin"], api_url=url, max_retries=0),
        Client(api_key=tenant_b.keys["admin"], api_url=url, max_retries=0),
    )


@pytest.fixture
def receiver():
    """(base URL, what each path received: [{"headers", "body"}])."""
    got: dict[str, list[dict]] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"]))
            headers = {k.lower(): v for k, v in self.headers.items()}
            got.setdefault(self.path, []).append({"headers": headers, "body": body})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", got
    server.shutdown()
