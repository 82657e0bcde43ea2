from django.core.management.base import BaseCommand

from core.demo import demo_load
from core.links import public_base_url


class Command(BaseCommand):
    help = "Load the demo organization, login and API key (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default=None, help="URL to print (default: PUBLIC_BASE_URL)")

    def handle(self, *args, **opts):
        info = demo_load()
        base = (opts.get("base_url") or public_base_url()).rstrip("/")
        self.stdout.write(
            f"Demo organization: {info.organization.name} ({info.organization.slug}, id {info.organization.id})"
        )
        self.stdout.write(f"Console:  {base}/console/   login: {info.username} / {info.password}")
        self.stdout.write(f"API docs: {base}/api/docs/")
        for line in info.extra_lines:
            self.stdout.write(line.replace("{base}", base))
        self.stdout.write(f"API key:  {info.api_key}")
