"""Demo data: an organization, a login and an API key. Idempotent: loading twice changes nothing.

Other apps add their demo content through `DEMO_LOADERS` (a list of callables taking the
organization, run in app order) so that this module does not import them. A loader may return a
list of lines for `demo_load` to print (e.g. a portal link).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import transaction

from core.auth import hash_secret
from core.models import ApiKey, Organization, Role
from core.services import membership_set, organization_create

DEMO_SLUG = "demo"
DEMO_USER = "demo"
DEMO_PASSWORD = "demo-password"
# A fixed, documented demo key so that `make run` twice prints the same key and creates no rows.
DEMO_API_KEY = "ml_demo_0000000000000000000000000000000000000000"

DEMO_LOADERS: list[Callable[[Organization], list[str] | None]] = []


@dataclass
class DemoInfo:
    organization: Organization
    username: str
    password: str
    api_key: str
    extra_lines: list[str] = field(default_factory=list)


def demo_load() -> DemoInfo:
    with transaction.atomic():
        org = Organization.objects.filter(slug=DEMO_SLUG).first()
        if org is None:
            org = organization_create(slug=DEMO_SLUG, name="Demo AI Co", currency="USD", actor="demo_load")
        User = get_user_model()
        user = User.objects.filter(username=DEMO_USER).first()
        if user is None:
            user = User.objects.create_user(
                username=DEMO_USER, email="demo@example.com", password=DEMO_PASSWORD
            )
            user.is_staff = True
            user.is_superuser = True
            user.save(update_fields=["is_staff", "is_superuser"])
        membership_set(organization=org, user=user, role=Role.OWNER, actor="demo_load")
        if not ApiKey.objects.filter(secret_hash=hash_secret(DEMO_API_KEY)).exists():
            ApiKey.objects.create(
                organization=org,
                name="demo (all scopes)",
                prefix=DEMO_API_KEY[:11],
                secret_hash=hash_secret(DEMO_API_KEY),
                scopes=["admin", "ingest", "read"],
            )
        extra: list[str] = []
        for loader in DEMO_LOADERS:
            extra.extend(loader(org) or [])
    return DemoInfo(org, DEMO_USER, DEMO_PASSWORD, DEMO_API_KEY, extra)
