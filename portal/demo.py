"""Demo portal link (idempotent): a 7-day portal token for the demo customer `acme`.

The token string is never stored, so a reload cannot print the same string from the database; instead the
loader reuses the live demo token row (created by `demo_load`, more than a day left) and signs a fresh
string for it (`tokens.token_sign` with the row's id and expiry: a valid link to the same token). Only when
no such row exists is a new one minted, so loading twice creates no rows."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from billing.models import Customer
from core.models import Organization
from portal.models import PortalToken
from portal.services import portal_token_create
from portal.tokens import token_sign

DEMO_TOKEN_LABEL = "demo_load"
DEMO_TTL = timedelta(days=7)


def demo_load(org: Organization) -> list[str]:
    customer = Customer.objects.filter(organization=org, key="acme", deleted_at__isnull=True).first()
    if customer is None:
        return []
    now = timezone.now()
    row = (
        PortalToken.objects.filter(
            organization=org,
            customer=customer,
            subject="",
            created_by_label=DEMO_TOKEN_LABEL,
            invalidated_at__isnull=True,
            expires_at__gt=now + timedelta(days=1),
        )
        .order_by("-expires_at")
        .first()
    )
    if row is not None:
        token = token_sign(organization_id=org.id, token_id=row.id, expires_at=row.expires_at)
    else:
        row, token = portal_token_create(
            organization=org, customer=customer.id, expires_in=DEMO_TTL, actor=DEMO_TOKEN_LABEL
        )
    days = max(1, round((row.expires_at - now) / timedelta(days=1)))
    return [f"Portal:   {{base}}/portal/{token} (customer acme, valid {days} days)"]
