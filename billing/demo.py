"""Demo data for billing: a customer mapped to the demo subject (idempotent). Plans come from catalog."""

from __future__ import annotations

from billing.models import Customer
from core.models import Organization


def demo_load(org: Organization) -> None:
    from billing import services

    if not Customer.objects.filter(organization=org, key="acme", deleted_at__isnull=True).exists():
        services.customer_create(
            organization=org,
            name="ACME Corp",
            key="acme",
            primary_email="billing@acme.test",
            currency=org.default_currency,
            subject_keys=["customer-1"],
            actor="demo_load",
        )
