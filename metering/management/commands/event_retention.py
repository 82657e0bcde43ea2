"""`manage.py event_retention <organization slug> [days | forever]`: show or set how long an organization's
raw events are kept (see metering/retention.py); `--expire-now` applies every retention at once."""

from django.core.management.base import BaseCommand, CommandError

from core.errors import ValidationFailed
from core.models import Organization
from metering import retention


class Command(BaseCommand):
    help = "Show or set an organization's event retention in days ('forever' keeps every event)."

    def add_arguments(self, parser):
        parser.add_argument("organization", help="organization slug")
        parser.add_argument("days", nargs="?", help="days to keep events, or 'forever'")
        parser.add_argument("--expire-now", action="store_true", help="then remove expired events now")

    def handle(self, *args, **opts):
        organization = Organization.objects.filter(slug=opts["organization"]).first()
        if organization is None:
            raise CommandError(f"no organization with slug {opts['organization']!r}")
        if opts["days"] is not None:
            raw = opts["days"].strip().lower()
            if raw != "forever" and not raw.isdigit():
                raise CommandError("days: a whole number of days, or 'forever'")
            try:
                retention.event_retention_set(
                    organization=organization, days=None if raw == "forever" else int(raw), actor="cli"
                )
            except ValidationFailed as exc:
                raise CommandError(f"days: {exc.detail}") from exc
        days = retention.event_retention_get(organization=organization)
        self.stdout.write(f"{organization.slug}: events kept {'forever' if days is None else f'{days} days'}")
        if opts["expire_now"]:
            result = retention.events_expire()
            self.stdout.write(
                f"partitions dropped: {len(result.dropped)}, events deleted row by row: {result.deleted:,}"
            )
