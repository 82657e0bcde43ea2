"""Celery tasks that work for one organization run inside its tenant scope (`rls.scoped_task`): a query
that forgets its organization filter inside such a task sees only that tenant's rows, also when the task
runs eagerly inside another tenant's request. Two tenants with API keys of their own throughout."""

from __future__ import annotations

import pytest

from billing import services as billing_services
from billing import tasks as billing_tasks
from config.celery import app
from core import rls
from core.models import ApiKey
from invoicing import tasks as invoicing_tasks
from tests.invoicing.conftest import make_customer
from tests.invoicing.test_views_invoice_ops import make_invoice

pytestmark = pytest.mark.django_db


def organizations_seen() -> set[str]:
    """A forgetful query: every API key's organization, no filter."""
    return set(ApiKey.objects.values_list("organization_id", flat=True))


@app.task(name="tests.core.keys_seen_by_organization_task")
@rls.scoped_task("organization_id")
def keys_seen(organization_id: str) -> list[str]:
    return sorted(organizations_seen())


def _organization_of_key(key_id: str) -> str | None:
    return ApiKey.objects.filter(pk=key_id).values_list("organization_id", flat=True).first()


@app.task(name="tests.core.keys_seen_by_key_task", bind=True)
@rls.scoped_task(_organization_of_key)
def keys_seen_by_key(self, key_id: str) -> list[str]:  # bound, like the retrying tasks
    assert self.name == "tests.core.keys_seen_by_key_task"
    return sorted(organizations_seen())


def test_a_task_for_one_organization_sees_only_its_tenant(tenant_a, tenant_b):
    assert organizations_seen() == {tenant_a.org.id, tenant_b.org.id}  # outside any scope: everything
    assert keys_seen.apply(args=(tenant_a.org.id,)).get() == [tenant_a.org.id]
    assert keys_seen.apply(kwargs={"organization_id": tenant_b.org.id}).get() == [tenant_b.org.id]
    # eager inside tenant B's request: the task leaves B's scope and enters A's, then B's comes back
    with rls.tenant_scope(tenant_b.org.id):
        assert keys_seen.apply(args=(tenant_a.org.id,)).get() == [tenant_a.org.id]
        assert organizations_seen() == {tenant_b.org.id}
    assert organizations_seen() == {tenant_a.org.id, tenant_b.org.id}


def test_the_organization_can_come_from_the_tasks_object(tenant_a, tenant_b):
    key_b = ApiKey.objects.filter(organization=tenant_b.org).first()
    assert keys_seen_by_key.apply(args=(key_b.id,)).get() == [tenant_b.org.id]
    # the object is gone: the body runs unscoped, as before, and handles that itself
    assert keys_seen_by_key.apply(args=("missing",)).get() == sorted([tenant_a.org.id, tenant_b.org.id])


def test_billing_tasks_run_in_their_organizations_scope(tenant_a, tenant_b, monkeypatch):
    seen: list[set[str]] = []
    monkeypatch.setattr(
        billing_services, "entitlement_snapshot_refresh", lambda **_: seen.append(organizations_seen())
    )
    monkeypatch.setattr(
        billing_services, "entitlements_usage_landed", lambda **_: seen.append(organizations_seen())
    )
    billing_tasks.entitlement_snapshot_refresh.apply(args=(tenant_a.org.id, "01ENTITLEMENT"))
    billing_tasks.usage_landed.apply(args=(tenant_b.org.id, ["s-1"], "2026-01-01T00:00:00+00:00"))
    assert seen == [{tenant_a.org.id}, {tenant_b.org.id}]


def test_an_invoice_email_task_runs_in_the_invoices_organization(tenant_a, tenant_b, monkeypatch):
    invoice = make_invoice(
        tenant_b, make_customer(tenant_b, "globex"), number="GLOBEX-1", total="9.00", days=0
    )
    seen: list[set[str]] = []
    monkeypatch.setattr(
        invoicing_tasks, "invoice_email_send", lambda **_: seen.append(organizations_seen()) or "sent"
    )
    with rls.tenant_scope(tenant_a.org.id):
        assert invoicing_tasks.invoice_email_send_task.apply(args=(invoice.id,)).get() == "sent"
    assert seen == [{tenant_b.org.id}]
