"""`manage.py events_drain`: store accepted ingest batches now, with progress (the Celery task's work).

Useful to catch up on a backlog by hand, or (`--follow`) as a dedicated drainer process next to or
instead of the Celery task: it then runs one thread per drain lane (`DRAIN_LANES`),
each draining at the background pace (`metering.drain.Pace`: short chunks, rests while requests arrive)
at the lowest CPU priority (`--nice idle`, the default: the idle scheduling class, so it runs on what
requests leave and a request takes a core from it at once; `--nice N` lowers it by N steps instead, `--nice
0` leaves it), so ingest requests keep their latency while a backlog drains. When its database process was
lowered too (the embedded PostgreSQL), the scheduler does what the rests are for, and it takes none.
`--retry-failed` first retries the batches kept as unprocessable.
"""

import argparse
import threading
import time

from django.core.management.base import BaseCommand
from django.db import connection

from metering import drain, store


def _priority(text: str) -> int | str:
    if text == drain.IDLE_PRIORITY:
        return text
    try:
        steps = int(text)
    except ValueError:
        steps = -1
    if not 0 <= steps <= 19:
        raise argparse.ArgumentTypeError(f"expected 'idle' or a number from 0 to 19, not {text!r}")
    return steps


class Progress:
    """Totals of the drain's chunks, added to from several threads and printed about once a second."""

    def __init__(self, write) -> None:
        self.write = write
        self.started = self.reported = time.monotonic()
        self.stored = self.duplicates = self.failed = 0
        self.lock = threading.Lock()

    def add(self, results: list[store.DrainResult]) -> None:
        with self.lock:
            for r in results:
                self.stored += r.inserted
                self.duplicates += r.duplicates
                self.failed += r.failed
            now = time.monotonic()
            if results and now - self.reported >= 1.0:
                self.reported = now
                rate = (self.stored + self.duplicates) / (now - self.started)
                self.write(f"  stored {self.stored:,}, duplicates {self.duplicates:,}, {rate:,.0f} events/s")

    def summary(self) -> str:
        return (
            f"done: stored {self.stored:,} events, dropped {self.duplicates:,} duplicates, "
            f"{self.failed} batches kept as unprocessable, in {time.monotonic() - self.started:.1f}s"
        )


class Command(BaseCommand):
    help = "Store accepted ingest batches (the inbox) into the event store, printing progress."

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stop = threading.Event()  # set to end --follow (Ctrl-C sets it)

    def add_arguments(self, parser):
        parser.add_argument("--follow", action="store_true", help="keep draining until interrupted")
        parser.add_argument(
            "--idle", type=float, default=0.05, help="seconds to wait when nothing is pending"
        )
        parser.add_argument(
            "--nice",
            type=_priority,
            default=drain.IDLE_PRIORITY,
            help="with --follow: 'idle' (default: the idle scheduling class), or lower the CPU priority by N",
        )
        parser.add_argument(
            "--retry-failed",
            action="store_true",
            help="first put batches kept as unprocessable back in line (after fixing the cause)",
        )

    def handle(self, *args, **opts):
        if opts["retry_failed"]:
            self.stdout.write(f"{store.inbox_failed_retry():,} unprocessable batches put back in line")
        pending = store.inbox_pending()
        total = sum(events for _org, _n, events in pending)
        self.stdout.write(f"{total:,} events pending in {sum(n for _o, n, _e in pending):,} batches")
        progress = Progress(self.stdout.write)
        if opts["follow"]:
            try:
                self._follow(drain.drain_lanes(), opts, progress)
            finally:
                self.stdout.write(progress.summary())
            return
        # what is pending now, not what keeps arriving: every lane's share, one chunk after the other
        up_to = store.inbox_last_pending() or 0
        while results := drain.events_drain_all(seconds=1.0, up_to_id=up_to):
            progress.add(results)
        self.stdout.write(progress.summary())

    def _follow(self, threads: int, opts, progress: Progress) -> None:
        """Drainer threads until `self.stop` is set or the process is interrupted: each lowers its own
        priority (and its database process's), then takes the free lane slots in turn
        (`drain.events_drain_background`)."""
        stop = self.stop

        def drainer() -> None:
            try:
                pace = drain.Pace.from_settings(yields=drain.drainer_priority_lower(opts["nice"]))
                while not stop.is_set():
                    results = drain.events_drain_background(seconds=1.0, pace=pace)
                    progress.add(results)
                    if not results:
                        stop.wait(opts["idle"])
            finally:
                connection.close()

        workers = [threading.Thread(target=drainer, name=f"drainer-{i}", daemon=True) for i in range(threads)]
        # Web processes publish no drain tasks while a dedicated drainer runs (`drain._request_drain`)
        with store.drain_follower():
            for w in workers:
                w.start()
            try:
                while not stop.is_set() and any(w.is_alive() for w in workers):
                    stop.wait(0.2)
            finally:
                stop.set()
                for w in workers:
                    w.join(timeout=30)
