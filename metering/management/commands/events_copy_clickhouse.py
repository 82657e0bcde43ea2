"""`manage.py events_copy_clickhouse --organization <slug or id>`: copy an organization's stored events from
PostgreSQL into the ClickHouse store (CLICKHOUSE_URL), then check every live meter's totals per UTC day on
both; exits non-zero when any day differs. Safe to run again (keys already copied are skipped), so an
interrupted copy resumes. See docs/scaling.md for the switch-over."""

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from core.models import Organization
from metering import store
from metering.clickhouse import copy
from metering.models import Meter


class Command(BaseCommand):
    help = "Copy an organization's events from PostgreSQL to ClickHouse and verify totals per meter and day."

    def add_arguments(self, parser):
        parser.add_argument("--organization", required=True, help="organization slug or id")
        parser.add_argument("--batch", type=int, default=50_000, help="events per copy transaction")
        parser.add_argument("--verify-only", action="store_true", help="only compare the totals")

    def handle(self, *args, **opts):
        ref = opts["organization"]
        org = Organization.objects.filter(Q(slug=ref) | Q(pk=ref.upper())).first()
        if org is None:
            raise CommandError(f"No organization {ref!r}.")
        if not opts["verify_only"]:
            self.stdout.write(f"copying the events of {org.slug} to ClickHouse")
            result = copy.copy_organization(
                organization_id=org.id, batch=max(1, opts["batch"]), progress=self._progress
            )
            self.stdout.write(
                f"copied: {result.read:,} read, {result.inserted:,} inserted, "
                f"{result.already_there:,} already there, {result.conflicts:,} held with another payload"
            )
        meters = Meter.objects.filter(organization=org, deleted_at__isnull=True).order_by("slug")
        mismatches = copy.verify_organization(
            specs=[(m.slug, store.MeterSpec.of(m)) for m in meters], report=self._report
        )
        for bad in mismatches[:50]:
            self.stdout.write(
                f"  MISMATCH {bad.meter} {bad.day:%Y-%m-%d}: postgres {bad.postgres}, clickhouse {bad.clickhouse}"
            )
        if mismatches:
            raise CommandError(f"{len(mismatches)} meter-days differ between PostgreSQL and ClickHouse.")
        self.stdout.write(f"verified: {meters.count()} meters, every day matches")

    def _progress(self, read: int, total: int, seconds: float) -> None:
        share = read / total * 100 if total else 100.0
        rate = read / seconds if seconds > 0 else 0.0
        self.stdout.write(f"  {read:,} / {total:,} events ({share:.1f}%), {rate:,.0f} events/s")

    def _report(self, meter: str, days: int, bad: int) -> None:
        self.stdout.write(f"  {meter}: {days} days, {'all match' if not bad else f'{bad} differ'}")
