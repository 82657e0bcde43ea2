"""Features in the console: create through a Django form (domain errors next to their inputs), archive
through its own view, another organization's features out of reach."""

import pytest
from django.test import Client

from catalog.models import Feature
from core.models import AuditLog
from tests.catalog.factories import make_feature, make_meter
from tests.conftest import PASSWORD


@pytest.fixture
def setup(tenant_a, tenant_b):
    for t in (tenant_a, tenant_b):
        make_meter(t.org)
    b_feature = make_feature(tenant_b, "globex_tokens")
    client = Client()
    assert client.login(username=tenant_a.user.username, password=PASSWORD)
    return tenant_a, tenant_b, client, b_feature


def test_create_puts_each_domain_error_next_to_its_input_and_writes_nothing(setup):
    a, _, client, _ = setup
    r = client.post(
        "/console/features/",
        {"name": "", "key": "Bad Key", "meterSlug": "llm_tokens", "filters": "region=eu"},
    )
    assert r.status_code == 400
    errors = r.context["errors"]
    assert errors["name"] == "This field is required."
    assert errors["key"].startswith("Lowercase letters and digits")
    assert errors["filters"] == "Meter 'llm_tokens' has no group-by dimension 'region' (it has: model, type)."
    assert not Feature.objects.filter(organization=a.org).exists()


def test_create_then_archive_each_through_its_own_view(setup):
    a, b, client, b_feature = setup
    r = client.post(
        "/console/features/",
        {
            "name": "GPT-4o output",
            "key": "gpt4o_out",
            "meterSlug": "llm_tokens",
            "filters": "model=gpt-4o, type=output",
        },
    )
    assert r.status_code == 302
    feature = Feature.objects.get(organization=a.org, key="gpt4o_out")
    assert feature.meter_group_by_filters == {"model": "gpt-4o", "type": "output"}
    assert client.post("/console/features/archive/", {"feature": feature.id}).status_code == 302
    assert not Feature.objects.filter(organization=a.org, key="gpt4o_out").exists()  # unused: deleted
    assert AuditLog.objects.filter(
        organization=a.org, action="feature.deleted", object_id="gpt4o_out"
    ).exists()
    # another organization's feature: not found, untouched
    client.post("/console/features/archive/", {"feature": b_feature["id"]})
    assert Feature.objects.filter(organization=b.org, key="globex_tokens", archived_at=None).exists()
    page = client.get("/console/features/")
    assert b"globex_tokens" not in page.content
    assert client.head("/console/features/").status_code == 200
    assert client.delete("/console/features/").status_code == 405
