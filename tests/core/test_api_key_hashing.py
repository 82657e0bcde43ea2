import pytest
from django.db import connection

from core.auth import api_key_lookup, hash_secret
from core.models import ApiKey
from core.services import api_key_create

pytestmark = pytest.mark.django_db


def test_secret_is_never_stored(tenant_a):
    created = api_key_create(organization=tenant_a.org, name="probe", scopes=["read"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(k)::text FROM core_apikey k")
        rows = " ".join(r[0] for r in cursor.fetchall())
        cursor.execute("SELECT row_to_json(a)::text FROM core_auditlog a")
        rows += " ".join(r[0] for r in cursor.fetchall())
    assert created.secret not in rows
    assert created.secret[11:] not in rows  # not even the part after the displayed prefix
    key = ApiKey.objects.get(pk=created.key.pk)
    assert key.secret_hash == hash_secret(created.secret) and len(key.secret_hash) == 64


def test_lookup_finds_only_the_exact_secret(tenant_a):
    created = api_key_create(organization=tenant_a.org, name="probe", scopes=["read"])
    assert api_key_lookup(created.secret).pk == created.key.pk
    assert api_key_lookup(created.secret + "x") is None
    assert api_key_lookup(created.secret[:-1]) is None
    assert api_key_lookup("") is None


def test_secrets_are_unique_and_long(tenant_a):
    secrets = {
        api_key_create(organization=tenant_a.org, name=f"k{i}", scopes=["read"]).secret for i in range(20)
    }
    assert len(secrets) == 20
    assert all(len(s) >= 40 for s in secrets)
