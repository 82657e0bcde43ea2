"""core.audit.audit_object: one row about a model of an organization, saved now or built for a bulk insert."""

from __future__ import annotations

from core.audit import audit_object, audit_record_many
from core.models import ApiKey, AuditLog


def test_audit_object_unsaved_rows_are_inserted_together_in_their_organization(tenant_a, tenant_b):
    key_a = ApiKey.objects.filter(organization=tenant_a.org).first()
    key_b = ApiKey.objects.filter(organization=tenant_b.org).first()
    rows = [
        audit_object(key_a, "api_key.probed", "invoice_run", after={"n": 1}, save=False),
        audit_object(key_b, "api_key.probed", tenant_b.user, after={"n": 2}, save=False),
    ]
    assert not AuditLog.objects.filter(action="api_key.probed").exists()  # nothing saved yet
    audit_record_many(rows)
    a = AuditLog.objects.get(organization=tenant_a.org, action="api_key.probed")
    assert (a.object_type, a.object_id, a.actor_label, a.after) == (
        "api_key",
        key_a.pk,
        "invoice_run",
        {"n": 1},
    )
    b = AuditLog.objects.get(organization=tenant_b.org, action="api_key.probed")
    assert (b.object_id, b.actor_label, b.after) == (key_b.pk, "user:globex-owner", {"n": 2})


def test_audit_object_of_a_deleted_row_keeps_the_id_given(tenant_a, tenant_b):
    key = ApiKey.objects.filter(organization=tenant_a.org).first()
    key_id = key.pk
    key.delete()
    audit_object(key, "api_key.deleted", None, object_id=key_id, before={"name": key.name})
    entry = AuditLog.objects.get(action="api_key.deleted")
    assert (entry.organization_id, entry.object_id, entry.actor_label) == (tenant_a.org.pk, key_id, "system")
    assert not AuditLog.objects.filter(organization=tenant_b.org, action="api_key.deleted").exists()
