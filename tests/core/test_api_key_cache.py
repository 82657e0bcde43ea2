"""The short in-process key cache used on hot paths (ingest, entitlement value checks)."""

import pytest
from django.utils import timezone

from core import auth
from core.auth import api_key_lookup_cached
from core.models import ApiKey
from core.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: now[0])
    return now


def test_cached_lookup_saves_the_query(tenant_a, django_assert_num_queries):
    created = api_key_create(organization=tenant_a.org, name="hot", scopes=["ingest"])
    assert api_key_lookup_cached(created.secret).pk == created.key.pk
    with django_assert_num_queries(0):
        assert api_key_lookup_cached(created.secret).organization == tenant_a.org


def test_revocation_elsewhere_takes_effect_within_the_ttl(tenant_a, settings, clock):
    settings.API_KEY_CACHE_SECONDS = 10
    created = api_key_create(organization=tenant_a.org, name="hot", scopes=["ingest"])
    assert api_key_lookup_cached(created.secret) is not None
    # revoked by another process: this process's cache still holds it...
    ApiKey.objects.filter(pk=created.key.pk).update(revoked_at=timezone.now())
    clock[0] += 9
    assert api_key_lookup_cached(created.secret) is not None
    # ...until the entry expires
    clock[0] += 2
    assert api_key_lookup_cached(created.secret) is None


def test_revocation_in_this_process_is_immediate(tenant_a):
    created = api_key_create(organization=tenant_a.org, name="hot", scopes=["ingest"])
    assert api_key_lookup_cached(created.secret) is not None
    api_key_revoke(organization=tenant_a.org, key_id=created.key.id)
    assert api_key_lookup_cached(created.secret) is None


def test_zero_ttl_disables_the_cache(tenant_a, settings):
    settings.API_KEY_CACHE_SECONDS = 0
    created = api_key_create(organization=tenant_a.org, name="hot", scopes=["ingest"])
    assert api_key_lookup_cached(created.secret) is not None
    ApiKey.objects.filter(pk=created.key.pk).update(revoked_at=timezone.now())
    assert api_key_lookup_cached(created.secret) is None


def test_failed_lookups_are_not_cached_and_keys_do_not_cross_tenants(tenant_a, tenant_b):
    assert api_key_lookup_cached("ml_" + "x" * 43) is None
    assert auth._key_cache == {}
    a = api_key_create(organization=tenant_a.org, name="a", scopes=["ingest"])
    b = api_key_create(organization=tenant_b.org, name="b", scopes=["ingest"])
    assert api_key_lookup_cached(a.secret).organization == tenant_a.org
    assert api_key_lookup_cached(b.secret).organization == tenant_b.org
