"""`manage.py job_failures [--retry] [--job NAME] [--organization SLUG]`: list the background jobs' open
failures (quarantined meters, drains, snapshots, notifications, deliveries, Stripe events) with their
reasons; `--retry` resolves them so the next run tries those objects again (after fixing the cause).
Failed ingest batches are retried with `manage.py events_drain --retry-failed`."""

from django.core.management.base import BaseCommand, CommandError

from core import jobs
from core.models import Organization


class Command(BaseCommand):
    help = "List open background-job failures; --retry puts their objects back in line."

    def add_arguments(self, parser):
        parser.add_argument("--retry", action="store_true", help="retry them on the next run")
        parser.add_argument("--job", help="only this job (e.g. rollups_advance)")
        parser.add_argument("--organization", help="only this organization (slug or id)")

    def handle(self, *args, **opts):
        organization = None
        if opts["organization"]:
            organization = (
                Organization.objects.filter(slug=opts["organization"]).first()
                or Organization.objects.filter(id=opts["organization"]).first()
            )
            if organization is None:
                raise CommandError(f"No organization {opts['organization']!r}.")
        failures = [
            f
            for f in jobs.job_failures_open(organization=organization)
            if not opts["job"] or f.job == opts["job"]
        ]
        for f in failures:
            self.stdout.write(
                f"{f.job} {f.object_type}:{f.object_id} org={f.organization_id or '-'} "
                f"attempts={f.attempts} last={f.last_failed_at.isoformat()} {f.error.splitlines()[0][:200]}"
            )
        if opts["retry"]:
            n = jobs.job_failures_retry(organization=organization, job=opts["job"])
            self.stdout.write(f"{n} failures put back in line; the next run tries their objects again")
        else:
            self.stdout.write(f"{len(failures)} open failures")
