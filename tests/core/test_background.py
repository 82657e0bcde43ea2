"""`core.background.Refreshed`: a value read at most once per interval per process. No database."""

from __future__ import annotations

from core.background import Refreshed


def test_a_refreshed_value_is_read_once_per_interval_and_again_when_expired(monkeypatch):
    reads: list[int] = []
    clock = [100.0]
    monkeypatch.setattr("core.background.time.monotonic", lambda: clock[0])

    def read() -> int:
        reads.append(len(reads))
        return len(reads)

    value = Refreshed(read, ttl=1.0)
    assert reads == []  # nothing read until asked
    assert value.get() == 1
    clock[0] += 0.9
    assert value.get() == 1 and len(reads) == 1  # within the interval: the kept value
    clock[0] += 0.1
    assert value.get() == 2  # the interval passed: read again
    value.expire()
    assert value.get() == 3
    other = Refreshed(read, ttl=60.0)
    assert other.get() == 4
    Refreshed.expire_all()
    assert (value.get(), other.get()) == (5, 6)
