"""`manage.py demo_load` shows the product: acme on ai_pro since the previous month, usage events, and a
portal link that works. Loading twice creates no rows (the portal link may be re-signed: same token row)."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.test import Client

from billing.models import Customer, Entitlement, NotificationEvent, Subscription, SubscriptionItem
from core.models import AuditLog
from metering.models import Event, Meter
from portal.models import PortalToken

pytestmark = pytest.mark.django_db


def _counts() -> dict[str, int]:
    models = (
        Customer,
        Subscription,
        SubscriptionItem,
        Entitlement,
        NotificationEvent,
        Event,
        Meter,
        PortalToken,
    )
    out = {m.__name__: m.objects.count() for m in models}
    out["AuditLog"] = AuditLog.objects.count()
    return out


def _load() -> str:
    out = io.StringIO()
    call_command("demo_load", "--base-url", "http://testserver", stdout=out)
    return out.getvalue()


def test_demo_load_subscribes_acme_with_usage_and_prints_a_portal_link():
    first = _load()
    counts = _counts()
    second = _load()
    assert _counts() == counts  # nothing new the second time

    acme = Customer.objects.get(key="acme", organization__slug="demo")
    sub = Subscription.objects.get(customer=acme)
    assert (sub.plan_key, sub.active_to) == ("ai_pro", None)
    assert sub.active_from.day == 1 and sub.active_from < sub.created_at
    assert Entitlement.objects.filter(customer=acme, feature_key="gpt4o_output_tokens").exists()
    assert Event.objects.filter(subject="customer-1", type="llm_tokens").exists()
    assert Event.objects.filter(subject="customer-1", type="api_request").exists()
    assert PortalToken.objects.filter(customer=acme).count() == 1

    for output in (first, second):
        m = re.search(r"Portal:   http://testserver(/portal/\S+) \(customer acme, valid (\d) days\)", output)
        assert m, output
        assert m.group(2) in ("6", "7")
        client = Client()
        assert client.get(m.group(1)).status_code == 302
        home = client.get("/portal/")
        assert home.status_code == 200 and "ACME Corp" in home.content.decode()
        balances = client.get("/portal/balances/").content.decode()
        assert 'id="ent-gpt4o_output_tokens"' in balances
