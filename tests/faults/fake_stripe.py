"""A Stripe API stand-in for the fault-injection suite, run as its own process:
`python tests/faults/fake_stripe.py PORT LOG`.

It answers the four calls the gateway makes (customers, invoices, invoice items, finalize) and injects
faults by the attempt number of each idempotency key: a customer is first refused with 429 (with
`Stripe-Should-Retry: true`, as Stripe sends for lock timeouts); an invoice is first refused with 500,
then created but answered too late for the client (a timeout), then the stored answer is replayed; an
invoice item first gets 500; a finalize is first done but answered too late. As Stripe does, a key whose
request was processed replays the stored answer. Every request is appended to LOG as one JSON line.
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

SLOW_SECONDS = 2.5  # longer than the client's timeout (STRIPE_TIMEOUT_SECONDS=1 in the suite)

lock = threading.Lock()
attempts: dict[str, int] = {}
stored: dict[str, tuple[int, dict]] = {}
ids = itertools.count(1)


def plan(path: str, attempt: int) -> str:
    if path == "/v1/customers":
        return {1: "429"}.get(attempt, "create")
    if path == "/v1/invoices":
        return {1: "500", 2: "create-slow"}.get(attempt, "create")
    if path == "/v1/invoiceitems":
        return {1: "500"}.get(attempt, "create")
    if path.endswith("/finalize"):
        return {1: "create-slow"}.get(attempt, "create")
    return "404"


def make(path: str, form: dict[str, list[str]]) -> dict:
    n = next(ids)
    if path == "/v1/customers":
        return {"id": f"cus_{n}", "object": "customer", "name": form.get("name", [""])[0]}
    if path == "/v1/invoices":
        return {"id": f"in_{n}", "object": "invoice", "status": "draft"}
    if path == "/v1/invoiceitems":
        return {"id": f"ii_{n}", "object": "invoiceitem", "amount": int(form.get("amount", ["0"])[0])}
    invoice_id = path.split("/")[3]
    return {
        "id": invoice_id,
        "object": "invoice",
        "status": "open",
        "hosted_invoice_url": f"https://invoice.example/{invoice_id}",
    }


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        key = self.headers.get("Idempotency-Key") or ""
        with lock:
            attempts[key] = attempts.get(key, 0) + 1
            attempt = attempts[key]
            replay = stored.get(key)
            action = "replay" if replay else plan(self.path, attempt)
            if action in ("create", "create-slow"):
                stored[key] = (200, make(self.path, form))
            entry = {"path": self.path, "key": key, "attempt": attempt, "action": action}
            if action.startswith("create"):
                entry["created"] = stored[key][1]["id"]
            with open(LOG, "a") as fh:
                fh.write(json.dumps(entry) + "\n")
        if action == "429":
            self.answer(429, {"error": {"type": "invalid_request_error", "code": "lock_timeout"}}, retry=True)
        elif action == "500":
            self.answer(500, {"error": {"type": "api_error", "message": "injected"}})
        elif action == "404":
            self.answer(404, {"error": {"type": "invalid_request_error", "message": "unknown path"}})
        else:
            if action == "create-slow":
                time.sleep(SLOW_SECONDS)
            status, body = stored[key]
            self.answer(status, body, replayed=action == "replay")

    def answer(self, status: int, body: dict, *, retry: bool = False, replayed: bool = False) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", f"req_{next(ids)}")
            if retry:
                self.send_header("Stripe-Should-Retry", "true")
            if replayed:
                self.send_header("Idempotent-Replayed", "true")
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (the injected timeout)


if __name__ == "__main__":
    PORT, LOG = int(sys.argv[1]), sys.argv[2]
    ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
