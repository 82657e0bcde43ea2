"""The shared factories (tests/factories) make valid rows through the apps' own services where it matters,
and each organization's rows stay its own."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from billing.models import CustomerSubject
from catalog.models import VersionStatus
from core.models import Membership, Role
from invoicing.models import InvoiceStatus
from metering.models import Aggregation
from tests.factories import (
    PASSWORD,
    AddonVersionFactory,
    ApiKeyFactory,
    CustomerFactory,
    CustomerSubjectFactory,
    FeatureFactory,
    InvoiceFactory,
    InvoiceLineFactory,
    MembershipFactory,
    MeterFactory,
    OrganizationFactory,
    PlanVersionFactory,
    SubscriptionFactory,
    SubscriptionItemFactory,
    UserFactory,
    flat,
    phase,
    rate_card,
    unit,
)

pytestmark = pytest.mark.django_db


def test_an_api_key_carries_its_secret_and_authenticates_for_its_organization_only():
    org, other = OrganizationFactory(), OrganizationFactory()
    MeterFactory(organization=org, slug="mine")
    MeterFactory(organization=other, slug="theirs")
    key = ApiKeyFactory(organization=org, scopes=["read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.secret}")
    response = client.get("/api/v1/meters")
    assert response.status_code == 200
    assert [m["slug"] for m in response.json()] == ["mine"]


def test_a_user_logs_in_with_the_shared_password_and_belongs_where_told(client):
    org = OrganizationFactory(slug="hooli")
    user = UserFactory(username="gavin")
    MembershipFactory(organization=org, user=user, role=Role.ADMIN)
    assert client.login(username="gavin", password=PASSWORD)
    assert list(Membership.objects.filter(user=user).values_list("organization__slug", "role")) == [
        ("hooli", "admin")
    ]


def test_meter_defaults_and_count_meters_have_no_value_path():
    tokens = MeterFactory(slug="tokens")
    requests = MeterFactory(organization=tokens.organization, slug="requests", aggregation=Aggregation.COUNT)
    assert (tokens.aggregation, tokens.value_property) == (Aggregation.SUM, "$.tokens")
    assert (requests.aggregation, requests.value_property) == (Aggregation.COUNT, "")


def test_plan_versions_list_their_features_and_publish_on_request():
    org = OrganizationFactory()
    FeatureFactory(organization=org, key="tokens", meter_slug="tokens")
    plan = PlanVersionFactory(
        organization=org,
        key="pro",
        published=True,
        phases=[
            phase(
                rate_cards=[
                    rate_card("base", price=flat("49")),
                    rate_card("tokens", feature_key="tokens", price=unit("0.001")),
                ]
            )
        ],
    )
    assert (plan.status, plan.feature_keys) == (VersionStatus.PUBLISHED, ["tokens"])
    assert [c["type"] for c in plan.phases[0]["rateCards"]] == ["flat_fee", "usage_based"]
    addon = AddonVersionFactory(organization=org)
    assert (addon.status, addon.organization_id) == (VersionStatus.DRAFT, org.id)


def test_customers_subscriptions_and_invoices_share_their_customers_organization():
    customer = CustomerFactory(key="acme")
    CustomerSubjectFactory(customer=customer, subject_key="acme-2")
    other = CustomerFactory(key="globex", subjects=[])
    assert sorted(
        CustomerSubject.objects.filter(customer=customer).values_list("subject_key", flat=True)
    ) == [
        "acme-2",
        "subj-acme",
    ]
    assert not CustomerSubject.objects.filter(customer=other).exists()
    assert customer.organization_id != other.organization_id  # each made its own organization
    item = SubscriptionItemFactory(subscription=SubscriptionFactory(customer=customer))
    line = InvoiceLineFactory(invoice=InvoiceFactory(customer=customer))
    assert item.organization_id == item.subscription.organization_id == customer.organization_id
    assert line.organization_id == customer.organization_id
    assert (line.invoice.status, line.amount) == (InvoiceStatus.DRAFT, Decimal(30))
