"""`manage.py events_drain`: store accepted ingest batches now, with progress (the Celery task's work).

Useful to catch up on a backlog by hand, or (`--follow`) as a dedicated drainer process next to or
instead of the Celery task: it then drains at the background pace (`metering.drain.Pace`: short chunks,
rests while requests arrive) with its CPU priority lowered by `--nice` (default 10; 0 keeps it), so
ingest requests keep their latency while a backlog drains. `--retry-failed` first retries the batches
kept as unprocessable.
"""

import time

from django.core.management.base import BaseCommand

from metering import drain, store


class Command(BaseCommand):
    help = "Store accepted ingest batches (the inbox) into the event store, printing progress."

    def add_arguments(self, parser):
        parser.add_argument("--follow", action="store_true", help="keep draining until interrupted")
        parser.add_argument(
            "--idle", type=float, default=0.05, help="seconds to wait when nothing is pending"
        )
        parser.add_argument(
            "--nice", type=int, default=10, help="with --follow: lower this process's CPU priority by N"
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
        # without --follow: what is pending now, not what keeps arriving
        up_to = None if opts["follow"] else (store.inbox_last_pending() or 0)
        pace = None
        if opts["follow"]:
            drain.drainer_priority_lower(opts["nice"])
            pace = drain.Pace.from_settings()
        started = last_report = time.monotonic()
        stored = duplicates = failed = 0
        while True:
            results = drain.events_drain_all(seconds=1.0, up_to_id=up_to, pace=pace)
            for r in results:
                stored += r.inserted
                duplicates += r.duplicates
                failed += r.failed
            now = time.monotonic()
            if results and now - last_report >= 1.0:
                last_report = now
                rate = (stored + duplicates) / (now - started)
                self.stdout.write(f"  stored {stored:,}, duplicates {duplicates:,}, {rate:,.0f} events/s")
            if not results:
                if not opts["follow"]:
                    break
                time.sleep(opts["idle"])
        self.stdout.write(
            f"done: stored {stored:,} events, dropped {duplicates:,} duplicates, "
            f"{failed} batches kept as unprocessable, in {time.monotonic() - started:.1f}s"
        )
