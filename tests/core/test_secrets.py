"""The installation's secrets: no public development key outside the development/test setting, a
per-installation key file (0600) for a local installation, Stripe credentials encrypted at rest with a
data migration for rows stored in clear, key rotation. Two tenants: each reads only its own secrets."""

from __future__ import annotations

import base64
import importlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection

from config import keys
from core import crypto
from invoicing.models import StripeSettings
from invoicing.services import stripe_settings_set

ROOT = Path(__file__).resolve().parents[2]
SK_A = "sk_test_A1b2C3d4E5f6G7h8I9j0KlmnOPQR"
WH_A = "whsec_AAAAbbbbCCCCddddEEEEffff9911"
SK_B = "rk_live_ZZyyXXwwVVuuTTssRRqqPP0000"


def _resolve(tmp_path: Path, value: str | None, *, local: bool = False, dev: bool = False) -> str:
    return keys.resolve_secret_key(
        environ_value=value, data_dir=tmp_path, create_local=local, allow_development=dev
    )


def test_the_development_key_is_refused_outside_development(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY is the public development key"):
        _resolve(tmp_path, keys.DEVELOPMENT_SECRET_KEY)
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY is 9 characters long; use at least 32"):
        _resolve(tmp_path, "change-me")
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY is not set and there is no key file"):
        _resolve(tmp_path, None)
    assert _resolve(tmp_path, None, dev=True) == keys.DEVELOPMENT_SECRET_KEY
    assert _resolve(tmp_path, keys.DEVELOPMENT_SECRET_KEY, dev=True) == keys.DEVELOPMENT_SECRET_KEY
    assert list(tmp_path.iterdir()) == []


def test_a_local_installation_generates_its_key_once_mode_0600(tmp_path):
    first = _resolve(tmp_path, None, local=True)
    path = tmp_path / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 60 and first != keys.DEVELOPMENT_SECRET_KEY
    # every later process of the installation reads the same key, even with an external database
    assert _resolve(tmp_path, None, local=True) == first
    assert _resolve(tmp_path, None) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret_key"]  # no temporary file left
    # the environment wins over the file
    assert _resolve(tmp_path, "x" * 40) == "x" * 40
    path.chmod(0o644)
    with pytest.raises(ImproperlyConfigured, match="readable by other users; run `chmod 600"):
        _resolve(tmp_path, None)


def test_field_encryption_keys_are_validated_and_generated(tmp_path):
    generated = keys.resolve_field_encryption_keys(
        environ_value=None, data_dir=tmp_path, create_local=True, allow_development=False
    )
    assert len(generated) == 1 and len(base64.urlsafe_b64decode(generated[0])) == 32
    assert stat.S_IMODE((tmp_path / "field_encryption_key").stat().st_mode) == 0o600
    new, old = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    assert keys.resolve_field_encryption_keys(
        environ_value=f"{new}, {old}", data_dir=tmp_path, create_local=False, allow_development=False
    ) == [new, old]
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEY must hold Fernet keys"):
        keys.resolve_field_encryption_keys(
            environ_value="not-a-key", data_dir=tmp_path, create_local=False, allow_development=False
        )
    with pytest.raises(ImproperlyConfigured, match="public development encryption key"):
        keys.resolve_field_encryption_keys(
            environ_value=keys.DEVELOPMENT_FIELD_ENCRYPTION_KEY,
            data_dir=tmp_path,
            create_local=False,
            allow_development=False,
        )
    with pytest.raises(
        ImproperlyConfigured, match="FIELD_ENCRYPTION_KEY is not set and there is no key file"
    ):
        keys.resolve_field_encryption_keys(
            environ_value=None, data_dir=tmp_path / "none", create_local=False, allow_development=False
        )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"SECRET_KEY": keys.DEVELOPMENT_SECRET_KEY}, "SECRET_KEY is the public development key"),
        ({}, "Environment variable SECRET_KEY is not set and there is no key file"),
    ],
)
def test_start_refuses_the_development_key_outside_development(tmp_path, extra, message):
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "MET_ALLOW_INSECURE_SECRET", "DEBUG", "FIELD_ENCRYPTION_KEY"}
    }
    environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",  # never connected by `check`
        DATA_DIR=str(tmp_path),
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        **extra,
    )
    start = [sys.executable, "-c", "from django.conf import settings; print(len(settings.SECRET_KEY))"]
    result = subprocess.run(start, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert message in result.stderr
    environ.update(SECRET_KEY="k" * 50)
    ok = subprocess.run(start, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60)
    assert (ok.returncode, ok.stdout) == (0, "50\n"), ok.stderr


def _raw(org_id: str) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret_key, webhook_secret FROM invoicing_stripesettings WHERE organization_id = %s",
            [org_id],
        )
        return cursor.fetchone()


@pytest.mark.django_db
def test_stripe_secrets_are_encrypted_at_rest_and_read_in_clear(tenant_a, tenant_b):
    stripe_settings_set(organization=tenant_a.org, secret_key=SK_A, webhook_secret=WH_A)
    stripe_settings_set(organization=tenant_b.org, secret_key=SK_B)
    raw_key, raw_hook = _raw(tenant_a.org.id)
    assert raw_key.startswith("fernet:") and raw_hook.startswith("fernet:")
    assert SK_A not in raw_key and WH_A not in raw_hook and SK_A[-8:] not in raw_key
    assert _raw(tenant_b.org.id)[1] == ""  # no webhook secret: nothing to hide
    a = StripeSettings.objects.get(organization=tenant_a.org)
    b = StripeSettings.objects.get(organization=tenant_b.org)
    assert (a.secret_key, a.webhook_secret) == (SK_A, WH_A)
    assert (b.secret_key, b.webhook_secret) == (SK_B, "")
    assert StripeSettings.objects.filter(webhook_secret="").get() == b


@pytest.mark.django_db
def test_the_data_migration_encrypts_rows_stored_in_clear(tenant_a, tenant_b):
    stripe_settings_set(organization=tenant_a.org, secret_key=SK_A, webhook_secret=WH_A)
    stripe_settings_set(organization=tenant_b.org, secret_key=SK_B)
    with connection.cursor() as cursor:  # as stored before this migration
        cursor.execute(
            "UPDATE invoicing_stripesettings SET secret_key = %s, webhook_secret = %s WHERE organization_id = %s",
            [SK_A, WH_A, tenant_a.org.id],
        )
    already = _raw(tenant_b.org.id)
    migration = importlib.import_module("invoicing.migrations.0003_stripe_secrets_encrypted")
    with connection.schema_editor() as editor:
        migration.encrypt_existing(None, editor)
    raw_key, raw_hook = _raw(tenant_a.org.id)
    assert crypto.decrypt(raw_key) == SK_A and crypto.decrypt(raw_hook) == WH_A
    assert raw_key.startswith("fernet:") and raw_hook.startswith("fernet:")
    assert _raw(tenant_b.org.id) == already  # an encrypted row is left as it is
    with connection.schema_editor() as editor:
        migration.decrypt_existing(None, editor)
    assert _raw(tenant_a.org.id) == (SK_A, WH_A)
    assert _raw(tenant_b.org.id) == (SK_B, "")


@pytest.mark.django_db
def test_rotation_reencrypts_with_the_new_key(tenant_a, tenant_b, settings):
    stripe_settings_set(organization=tenant_a.org, secret_key=SK_A, webhook_secret=WH_A)
    stripe_settings_set(organization=tenant_b.org, secret_key=SK_B)
    old = settings.FIELD_ENCRYPTION_KEYS
    new = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new, *old]
    call_command("secrets_reencrypt", stdout=open(os.devnull, "w"))  # noqa: SIM115
    settings.FIELD_ENCRYPTION_KEYS = [new]  # the old key dropped: everything still reads
    a = StripeSettings.objects.get(organization=tenant_a.org)
    b = StripeSettings.objects.get(organization=tenant_b.org)
    assert (a.secret_key, a.webhook_secret, b.secret_key, b.webhook_secret) == (SK_A, WH_A, SK_B, "")
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # a lost key: a clear error
    with pytest.raises(crypto.DecryptionFailed, match="cannot be decrypted with FIELD_ENCRYPTION_KEY"):
        StripeSettings.objects.get(organization=tenant_a.org)
