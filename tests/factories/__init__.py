"""factory-boy factories for test data, one module per app; fixtures in the conftest files are built on them.

    org = OrganizationFactory()                         # through core.services.organization_create
    key = ApiKeyFactory(organization=org, scopes=["ingest"]); key.secret
    meter = MeterFactory(organization=org, slug="tokens")
    plan = PlanVersionFactory(organization=org, phases=[phase(rate_cards=[rate_card("base", price=flat("30"))])])
    customer = CustomerFactory(organization=org, key="acme", subjects=["subj-acme"])
    sub = SubscriptionFactory(customer=customer, billing_anchor=datetime(2026, 1, 1, tzinfo=UTC))

Rows that carry an invariant (an organization's sequences, a hashed key secret, a validated meter) are made
by the app's own service; plain rows by the model. Every factory takes an `organization` (made anew when
omitted), so a test's second tenant gets data of its own the same way.
"""

from tests.factories.billing import (
    CustomerFactory,
    CustomerSubjectFactory,
    SubscriptionFactory,
    SubscriptionItemFactory,
)
from tests.factories.catalog import (
    AddonVersionFactory,
    FeatureFactory,
    PlanVersionFactory,
    flat,
    phase,
    rate_card,
    unit,
)
from tests.factories.core import PASSWORD, ApiKeyFactory, MembershipFactory, OrganizationFactory, UserFactory
from tests.factories.invoicing import InvoiceFactory, InvoiceLineFactory
from tests.factories.metering import MeterFactory

__all__ = [
    "PASSWORD",
    "AddonVersionFactory",
    "ApiKeyFactory",
    "CustomerFactory",
    "CustomerSubjectFactory",
    "FeatureFactory",
    "InvoiceFactory",
    "InvoiceLineFactory",
    "MembershipFactory",
    "MeterFactory",
    "OrganizationFactory",
    "PlanVersionFactory",
    "SubscriptionFactory",
    "SubscriptionItemFactory",
    "UserFactory",
    "flat",
    "phase",
    "rate_card",
    "unit",
]
