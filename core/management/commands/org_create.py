from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from core.services import organization_create


class Command(BaseCommand):
    help = "Create an organization and print its id."

    def add_arguments(self, parser):
        parser.add_argument("--slug", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--currency", default="USD")
        parser.add_argument("--timezone", default="UTC")

    def handle(self, *args, **opts):
        try:
            org = organization_create(
                slug=opts["slug"],
                name=opts["name"],
                currency=opts["currency"],
                timezone_name=opts["timezone"],
                actor="cli",
            )
        except DomainError as exc:
            raise CommandError(exc.detail) from None
        self.stdout.write(org.id)
