"""Per-process helpers for work that must not run in the request thread: `Coalescer`, a background
flusher, and `Refreshed`, a value read from elsewhere at most once per interval.

The flusher:

Publishing a Celery message from a request costs a broker round trip (3.2 ms p50 with the default
SQLAlchemy broker, ~10 ms when the broker is unreachable; see docs/metering.md). Callers record what they
need in memory and `poke()`; a daemon thread of this process waits `window` seconds, so that requests
arriving meanwhile coalesce, then calls `flush()`. Work recorded while a flush runs is picked up by the
next one. The thread is started lazily per process id, so forked workers (gunicorn, Celery) get their own.
A process killed with work recorded loses it: callers pair this with a periodic beat task.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)
T = TypeVar("T")


class Coalescer:
    def __init__(self, name: str, flush: Callable[[], object], window: float) -> None:
        self.name = name
        self.flush = flush
        self.window = window
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: tuple[int, threading.Thread] | None = None

    def poke(self) -> None:
        """Ask for a flush within `window` seconds (cheap: no I/O in the caller's thread)."""
        self.ensure_thread()
        self._wake.set()

    def ensure_thread(self) -> None:
        pid = os.getpid()
        current = self._thread
        if current is not None and current[0] == pid and current[1].is_alive():
            return
        with self._lock:
            current = self._thread
            if current is not None and current[0] == pid and current[1].is_alive():
                return
            thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread = (pid, thread)
            thread.start()

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(self.window)
            self._wake.clear()
            try:
                self.flush()
            except Exception:
                logger.exception("%s: flush failed", self.name)


class Refreshed(Generic[T]):
    """A value `read()` at most once per `ttl` seconds in this process (the first `get` reads it), for
    figures a hot path consults that may lag by that much (the inbox's backlog, whether a dedicated
    drainer runs). `expire()` makes the next `get` read again."""

    _all: weakref.WeakSet[Refreshed] = weakref.WeakSet()

    def __init__(self, read: Callable[[], T], ttl: float) -> None:
        self.read = read
        self.ttl = ttl
        self._value: T | None = None
        self._read_at = float("-inf")
        Refreshed._all.add(self)

    def get(self) -> T:
        now = time.monotonic()
        if now - self._read_at >= self.ttl:
            self._value, self._read_at = self.read(), now
        return self._value  # type: ignore[return-value]

    def expire(self) -> None:
        self._read_at = float("-inf")

    @classmethod
    def expire_all(cls) -> None:
        """Every instance of this process reads again at its next `get` (the test suite, between tests)."""
        for refreshed in list(cls._all):
            refreshed.expire()
