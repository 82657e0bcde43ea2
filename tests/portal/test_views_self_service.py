"""Self-service in the portal: off by default; once the organization turns it on, a customer changes
plan among the plans it offers (an upgrade now, a downgrade at the end of the billing period, as billing's
`change_default_timing` decides) and cancels at the end of the period, through billing's services,
audited under the customer's name. Another organization's plans and customers never show."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client

from billing.models import Subscription
from billing.services import subscription_create
from catalog.services import plan_create, plan_publish
from core.models import AuditLog
from portal.models import PortalSettings
from portal.services import portal_settings_update
from tests.conftest import PASSWORD
from tests.portal.conftest import make_portal_customer

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
PERIOD_END = datetime(2026, 12, 1, tzinfo=UTC)


def publish(org, key: str, name: str, amount: str) -> None:
    data = {
        "name": name,
        "currency": "USD",
        "billingCadence": "P1M",
        "phases": [
            {
                "key": "standard",
                "name": "Standard",
                "duration": None,
                "rateCards": [
                    {
                        "type": "flat_fee",
                        "key": "base",
                        "name": "Base fee",
                        "billingCadence": "P1M",
                        "price": {"type": "flat", "amount": amount, "paymentTerm": "in_advance"},
                    }
                ],
            }
        ],
    }
    plan = plan_create(organization=org, key=key, data=data)
    plan_publish(organization=org, plan_id=plan.id)


@pytest.fixture
def world(tenant_a, tenant_b, time_machine):
    time_machine.move_to(NOW, tick=False)
    for org in (tenant_a.org, tenant_b.org):
        publish(org, "starter", "Starter", "10")
        publish(org, "pro", "Pro", "50")
        publish(org, "team", "Team", "100")
        publish(org, "enterprise", "Enterprise", "900")  # published, never offered
    publish(tenant_b.org, "secret_b", "Secret B plan", "1")
    a = make_portal_customer(tenant_a, key="cust-1")
    b = make_portal_customer(tenant_b, key="cust-1")
    for pc in (a, b):
        subscription_create(
            organization=pc.tenant.org, customer=pc.customer, plan_key="pro", active_from=START
        )
    return a, b


def portal(token: str) -> Client:
    c = Client()
    assert c.get(f"/portal/{token}").status_code == 302
    return c


def current(pc) -> Subscription:
    return Subscription.objects.filter(customer=pc.customer).order_by("active_from").first()


def test_self_service_is_off_by_default(world):
    a, _b = world
    c = portal(a.token)
    assert 'id="manage-plan"' not in c.get("/portal/").content.decode()
    html = c.get("/portal/plan/").content.decode()
    assert 'id="self-service-off"' in html and "Upgrade now" not in html
    r = c.post("/portal/plan/change/", {"plan": "team"})
    assert r.status_code == 400
    assert c.post("/portal/plan/cancel/").status_code == 400
    assert Subscription.objects.filter(customer=a.customer).count() == 1
    assert current(a).active_to is None


def test_plans_offered_with_their_timing_and_nothing_from_another_org(world, tenant_a, tenant_b):
    a, b = world
    portal_settings_update(
        organization=tenant_a.org, self_service=True, plan_keys=["starter", "team", "secret_b"]
    )
    c = portal(a.token)
    assert 'id="manage-plan"' in c.get("/portal/").content.decode()
    html = c.get("/portal/plan/").content.decode()
    team = html[html.index('id="plan-team"') :].split("</form>")[0]
    starter = html[html.index('id="plan-starter"') :].split("</form>")[0]
    assert "Upgrade: applies now" in team and "Upgrade now" in team
    assert "Downgrade: applies at the end of the period, Dec 1, 2026" in starter
    # the current plan, a plan not offered, and another organization's plan are not listed
    assert 'id="plan-pro"' not in html and 'id="plan-enterprise"' not in html and "Secret B" not in html
    assert 'id="cancel"' in html and "this billing period ends Dec 1, 2026" in html
    # B's portal: self-service stays off there
    assert 'id="self-service-off"' in portal(b.token).get("/portal/plan/").content.decode()
    # a plan that is not offered is refused, nothing written
    for key in ("enterprise", "pro", "secret_b"):
        assert c.post("/portal/plan/change/", {"plan": key}).status_code == 400
    assert Subscription.objects.filter(customer=a.customer).count() == 1


def test_upgrade_applies_now_audited_under_the_customer(world, tenant_a):
    a, b = world
    portal_settings_update(organization=tenant_a.org, self_service=True, plan_keys=["starter", "team"])
    c = portal(a.token)
    r = c.post("/portal/plan/change/", {"plan": "team"})
    assert r.status_code == 302 and r["Location"] == "/portal/plan/?done=changed"
    old, new = Subscription.objects.filter(customer=a.customer).order_by("active_from")
    assert old.active_to == NOW and (new.plan_key, new.active_from, new.previous_id) == ("team", NOW, old.id)
    audit = AuditLog.objects.get(organization=tenant_a.org, action="subscription.changed")
    assert audit.object_id == old.id and "portal:customer:cust-1" in str(audit.actor_label)
    html = c.get(r["Location"]).content.decode()
    assert "Your plan has changed." in html and "Team" in html
    assert current(b).plan_key == "pro" and current(b).active_to is None  # B untouched


def test_downgrade_is_scheduled_at_the_end_of_the_period(world, tenant_a):
    a, _b = world
    portal_settings_update(organization=tenant_a.org, self_service=True, plan_keys=["starter", "team"])
    c = portal(a.token)
    r = c.post("/portal/plan/change/", {"plan": "starter"})
    assert r["Location"] == "/portal/plan/?done=scheduled"
    old, new = Subscription.objects.filter(customer=a.customer).order_by("active_from")
    assert old.active_to == PERIOD_END and (new.plan_key, new.active_from) == ("starter", PERIOD_END)
    html = c.get(r["Location"]).content.decode()
    assert 'id="scheduled-change"' in html and "Changes to <strong>Starter</strong> on Dec 1, 2026" in html
    assert 'id="plan-team"' not in html and 'id="cancel"' not in html  # one change at a time
    assert c.post("/portal/plan/change/", {"plan": "team"}).status_code == 400
    assert Subscription.objects.filter(customer=a.customer).count() == 2


def test_cancel_at_the_end_of_the_period(world, tenant_a):
    a, b = world
    portal_settings_update(organization=tenant_a.org, self_service=True, plan_keys=["starter"])
    c = portal(a.token)
    r = c.post("/portal/plan/cancel/")
    assert r["Location"] == "/portal/plan/?done=canceled"
    sub = current(a)
    assert sub.active_to == PERIOD_END and sub.cancel_requested_at == NOW
    assert AuditLog.objects.filter(
        organization=tenant_a.org, action="subscription.canceled", object_id=sub.id
    ).exists()
    html = c.get(r["Location"]).content.decode()
    assert 'id="scheduled-cancel"' in html and "Dec 1, 2026" in html and 'id="cancel"' not in html
    assert c.post("/portal/plan/cancel/").status_code == 400  # already ends
    assert current(b).active_to is None


def test_console_settings_page(world, tenant_a, tenant_b):
    c = Client()
    assert c.login(username=tenant_a.user.username, password=PASSWORD)
    html = c.get("/console/portal/settings/").content.decode()
    assert "Starter (starter)" in html and "Secret B" not in html
    r = c.post("/console/portal/settings/", {"self_service": "on"})
    assert r.status_code == 400 and 'id="error-plan_keys"' in r.content.decode()
    assert not PortalSettings.objects.filter(organization=tenant_a.org).exists()
    assert c.post("/console/portal/settings/", {"plan_keys": ["secret_b"]}).status_code == 400
    r = c.post("/console/portal/settings/", {"self_service": "on", "plan_keys": ["team", "starter"]})
    assert r.status_code == 302
    row = PortalSettings.objects.get(organization=tenant_a.org)
    assert (row.self_service, row.plan_keys) == (True, ["starter", "team"])
    assert AuditLog.objects.filter(organization=tenant_a.org, action="portal_settings.updated").count() == 1
    assert not PortalSettings.objects.filter(organization=tenant_b.org).exists()
