from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from core.demo import DEMO_API_KEY
from core.models import ApiKey, AuditLog, Membership, Organization

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_org_create_prints_the_id():
    lines = run("org_create", "--slug", "initech", "--name", "Initech", "--currency", "EUR")
    org = Organization.objects.get(slug="initech")
    assert lines == [org.id]
    assert org.default_currency == "EUR"
    assert AuditLog.objects.filter(organization=org, action="organization.created").count() == 1


def test_org_create_rejects_duplicates_and_bad_currency():
    run("org_create", "--slug", "initech", "--name", "Initech")
    with pytest.raises(CommandError, match="already exists"):
        run("org_create", "--slug", "initech", "--name", "Again")
    with pytest.raises(CommandError, match="Unknown currency"):
        run("org_create", "--slug", "other", "--name", "Other", "--currency", "XXQ")
    assert Organization.objects.count() == 1


def test_apikey_create_prints_the_secret_alone_on_the_last_line():
    run("org_create", "--slug", "initech", "--name", "Initech")
    lines = run("apikey_create", "--org", "initech", "--scopes", "ingest,read,admin")
    secret = lines[-1]
    assert secret.startswith("ml_") and " " not in secret
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/organization").json()["slug"] == "initech"
    assert sorted(ApiKey.objects.get().scopes) == ["admin", "ingest", "read"]


def test_apikey_create_errors():
    with pytest.raises(CommandError, match="No organization"):
        run("apikey_create", "--org", "nope", "--scopes", "read")
    run("org_create", "--slug", "initech", "--name", "Initech")
    with pytest.raises(CommandError, match="Unknown scope"):
        run("apikey_create", "--org", "initech", "--scopes", "read,write")


def test_demo_load_is_idempotent():
    first = run("demo_load")
    counts = (
        Organization.objects.count(),
        ApiKey.objects.count(),
        Membership.objects.count(),
        AuditLog.objects.count(),
    )
    second = run("demo_load")
    assert counts == (
        Organization.objects.count(),
        ApiKey.objects.count(),
        Membership.objects.count(),
        AuditLog.objects.count(),
    )
    # The portal magic link is re-signed on each run (same token row), so it may differ; nothing else does.
    assert [line for line in first if not line.startswith("Portal:")] == [
        line for line in second if not line.startswith("Portal:")
    ]
    assert any(DEMO_API_KEY in line for line in first)
    assert any("login: demo / " in line for line in first)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {DEMO_API_KEY}")
    assert client.get("/api/v1/organization").json()["slug"] == "demo"
