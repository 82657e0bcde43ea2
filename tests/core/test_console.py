import json
import re
from html import unescape

import pytest

from core.models import ApiKey, AuditLog, Membership, Role
from tests.conftest import PASSWORD
from tests.factories import MembershipFactory, MeterFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(client, tenant_a):
    client.login(username=tenant_a.user.username, password=PASSWORD)
    return client


def test_console_requires_login(client):
    r = client.get("/console/settings/api-keys/")
    assert r.status_code == 302 and r["Location"].startswith("/console/login/")


def test_home_shows_the_current_organization(logged_in, tenant_a, tenant_b):
    html = logged_in.get("/console/").content.decode()
    assert "Acme Inc" in html and "Globex Inc" not in html


def test_switcher_only_switches_to_member_organizations(logged_in, tenant_a, tenant_b):
    r = logged_in.post("/console/switch/", {"organization": tenant_b.org.id}, follow=True)
    assert "not a member" in r.content.decode()
    assert logged_in.session["organization_id"] == tenant_a.org.id
    Membership.objects.create(user=tenant_a.user, organization=tenant_b.org, role=Role.VIEWER)
    logged_in.post("/console/switch/", {"organization": tenant_b.org.id})
    assert logged_in.session["organization_id"] == tenant_b.org.id
    html = logged_in.get("/console/").content.decode()
    assert "<h1>Globex Inc</h1>" in html
    assert logged_in.get("/console/settings/api-keys/").status_code == 403  # only a viewer in Globex


def test_api_keys_page_lists_only_own_keys(logged_in, tenant_a, tenant_b):
    html = logged_in.get("/console/settings/api-keys/").content.decode()
    assert "acme admin" in html and "globex" not in html


def test_create_key_shows_secret_once(logged_in, tenant_a):
    r = logged_in.post("/console/settings/api-keys/", {"name": "from console", "scopes": ["ingest", "read"]})
    html = r.content.decode()
    secret = re.search(r'id="new-key-secret">(ml_[^<]+)<', html).group(1)
    key = ApiKey.objects.get(organization=tenant_a.org, name="from console")
    assert key.scopes == ["ingest", "read"]
    assert secret not in logged_in.get("/console/settings/api-keys/").content.decode()


def test_create_key_validation_error_is_shown_and_nothing_created(logged_in, tenant_a):
    r = logged_in.post("/console/settings/api-keys/", {"name": "no scopes"})
    assert r.status_code == 400
    assert "Choose at least one scope" in r.content.decode()
    assert not ApiKey.objects.filter(name="no scopes").exists()


def test_revoke_from_console_and_not_other_orgs_key(logged_in, tenant_a, tenant_b):
    own = ApiKey.objects.get(organization=tenant_a.org, name="acme read")
    logged_in.post(f"/console/settings/api-keys/{own.id}/revoke/")
    own.refresh_from_db()
    assert own.revoked_at is not None
    other = ApiKey.objects.get(organization=tenant_b.org, name="globex read")
    logged_in.post(f"/console/settings/api-keys/{other.id}/revoke/")
    other.refresh_from_db()
    assert other.revoked_at is None


def test_viewer_cannot_manage_keys(client, tenant_a):
    MembershipFactory(user=UserFactory(username="viewer"), organization=tenant_a.org, role=Role.VIEWER)
    client.login(username="viewer", password=PASSWORD)
    assert client.get("/console/settings/api-keys/").status_code == 403
    assert client.post("/console/settings/api-keys/", {"name": "x", "scopes": ["admin"]}).status_code == 403
    assert not ApiKey.objects.filter(name="x").exists()
    assert client.get("/console/").status_code == 200


def test_members_remove_with_audit(logged_in, tenant_a, tenant_b):
    newbie = UserFactory(username="newbie", email="n@acme.test")
    m = MembershipFactory(organization=tenant_a.org, user=newbie, role=Role.PRICING_EDITOR)
    html = logged_in.get("/console/settings/members/").content.decode()
    assert "newbie" in html and "globex-owner" not in html
    other = Membership.objects.get(organization=tenant_b.org)
    r = logged_in.post("/console/settings/members/", {"action": "remove", "membership": other.pk})
    assert r.status_code == 400 and Membership.objects.filter(pk=other.pk).exists()
    logged_in.post("/console/settings/members/", {"action": "remove", "membership": m.pk})
    assert not Membership.objects.filter(pk=m.pk).exists()
    assert AuditLog.objects.filter(organization=tenant_a.org, action="membership.removed").count() == 1


def test_last_owner_cannot_be_removed(logged_in, tenant_a):
    owner = Membership.objects.get(organization=tenant_a.org, user=tenant_a.user)
    r = logged_in.post("/console/settings/members/", {"action": "remove", "membership": owner.pk})
    assert "at least one owner" in r.content.decode()
    assert Membership.objects.filter(pk=owner.pk).exists()


def test_audit_page_shows_own_entries_only(logged_in, tenant_a, tenant_b):
    html = logged_in.get("/console/settings/audit/").content.decode()
    assert "acme admin" in html and "globex" not in html
    assert AuditLog.objects.filter(organization=tenant_b.org).exists()


def test_api_keys_page_query_budget_is_constant(logged_in, tenant_a, django_assert_max_num_queries):
    from core.services import api_key_create

    logged_in.get("/console/settings/api-keys/")
    for i in range(30):
        api_key_create(organization=tenant_a.org, name=f"bulk {i}", scopes=["read"], actor=tenant_a.user)
    # session, user, membership (middleware), memberships for the switcher, keys (+created_by join)
    with django_assert_max_num_queries(6):
        r = logged_in.get("/console/settings/api-keys/")
    assert r.content.decode().count("<td>bulk ") == 30


def test_htmx_create_returns_only_the_panel(logged_in, tenant_a):
    r = logged_in.post(
        "/console/settings/api-keys/", {"name": "hx", "scopes": ["read"]}, HTTP_HX_REQUEST="true"
    )
    html = r.content.decode()
    assert html.lstrip().startswith('<div id="keys-panel">') and "<html" not in html


def test_organization_settings_validate_and_audit(logged_in, tenant_a, tenant_b):
    r = logged_in.post(
        "/console/settings/organization/", {"name": "Acme", "timezone": "Mars/Olympus", "brand_color": "blue"}
    )
    assert r.status_code == 400
    html = r.content.decode()
    assert "Unknown time zone" in html and "hex colour" in html
    tenant_a.org.refresh_from_db()
    assert tenant_a.org.name == "Acme Inc" and tenant_a.org.brand_color == ""
    logged_in.post(
        "/console/settings/organization/",
        {"name": "Acme Corp", "timezone": "Europe/Berlin", "brand_color": "#AA3300"},
    )
    tenant_a.org.refresh_from_db()
    tenant_b.org.refresh_from_db()
    assert (tenant_a.org.name, tenant_a.org.timezone, tenant_a.org.brand_color) == (
        "Acme Corp",
        "Europe/Berlin",
        "#aa3300",
    )
    assert tenant_b.org.name == "Globex Inc" and tenant_b.org.brand_color == ""
    entry = AuditLog.objects.get(organization=tenant_a.org, action="organization.updated")
    assert entry.before["name"] == "Acme Inc" and entry.after["brand_color"] == "#aa3300"


def test_first_event_sample_is_one_the_first_meter_counts(logged_in, tenant_a, tenant_b):
    """The home page's curl example carries the organization's first meter's type, value and group-by."""
    MeterFactory(
        organization=tenant_b.org, slug="globex_calls", event_type="globex_call", value_property="$.secret"
    )
    html = unescape(logged_in.get("/console/").content.decode())
    sample = json.loads(re.search(r"-d '(\{.*\})'</pre>", html).group(1))
    assert sample["type"] == "request" and "data" not in sample  # no meter yet: a plain example
    MeterFactory(
        organization=tenant_a.org,
        slug="llm_tokens",
        event_type="llm_tokens",
        value_property="$.usage.tokens",
        group_by={"model": "$.model"},
    )
    html = unescape(logged_in.get("/console/").content.decode())
    sample = json.loads(re.search(r"-d '(\{.*\})'</pre>", html).group(1))
    assert sample["type"] == "llm_tokens"
    assert sample["data"] == {"usage": {"tokens": 100}, "model": "example-model"}
    assert "globex" not in html
