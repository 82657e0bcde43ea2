from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from core.models import Organization
from core.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for an organization; the secret is printed alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--scopes", default="ingest,read", help="comma-separated: ingest,read,admin")
        parser.add_argument("--name", default="cli")

    def handle(self, *args, **opts):
        org = Organization.objects.filter(slug=opts["org"]).first()
        if org is None:
            raise CommandError(f"No organization with slug {opts['org']!r}.")
        scopes = [s.strip() for s in opts["scopes"].split(",") if s.strip()]
        try:
            created = api_key_create(organization=org, name=opts["name"], scopes=scopes, actor="cli")
        except DomainError as exc:
            raise CommandError(exc.detail) from None
        self.stdout.write(
            f"Created key {created.key.id} ({created.key.prefix}…) with scopes {','.join(created.key.scopes)}"
        )
        self.stdout.write(created.secret)
