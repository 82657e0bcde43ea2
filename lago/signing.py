"""Lago's webhook signatures, both of them.

- **hmac** (the default): `X-Lago-Signature` is the Base64 of the HMAC-SHA256 of the raw body, keyed with
  the endpoint's signing secret (the whole `whsec_…` string as UTF-8).
- **jwt**: `X-Lago-Signature` is a JWT signed RS256 with the organization's private key, whose claims are
  `data` (the raw body, as a string) and `iss` (this API's base, `<public base URL>/lago`). The receiver
  checks it with the organization's public key, served Base64-encoded (PEM inside) at
  `GET /lago/api/v1/webhooks/public_key` (and `json_public_key`, which `client.webhooks.public_key()`
  reads), and compares `data` with the body, exactly as with Lago.

Each organization gets its own 2048-bit RSA key pair the first time one is needed (`signing_key`); the
private key is stored encrypted (`core.fields.EncryptedTextField`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.db import IntegrityError, transaction

from lago.models import WebhookSigningKey

ALGORITHM = "RS256"
KEY_BITS = 2048


def hmac_signature(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def issuer() -> str:
    """The `iss` claim: where this API lives (`api_url` without its trailing slash)."""
    return f"{str(getattr(settings, 'PUBLIC_BASE_URL', '') or '').rstrip('/')}/lago"


def _new_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def signing_key(*, organization_id: str) -> WebhookSigningKey:
    """The organization's key pair, made on first use (two first uses at once agree on one)."""
    found = WebhookSigningKey.objects.filter(organization_id=organization_id).first()
    if found is not None:
        return found
    private, public = _new_pair()
    try:
        with transaction.atomic():
            return WebhookSigningKey.objects.create(
                organization_id=organization_id, private_key=private, public_key=public
            )
    except IntegrityError:  # another request made it first
        return WebhookSigningKey.objects.get(organization_id=organization_id)


def public_key_base64(*, organization_id: str) -> str:
    """The public key as Lago serves it: Base64 of the PEM text."""
    return base64.b64encode(signing_key(organization_id=organization_id).public_key.encode()).decode()


def jwt_signature(body: bytes, *, organization_id: str) -> str:
    key = signing_key(organization_id=organization_id)
    return jwt.encode({"data": body.decode(), "iss": issuer()}, key.private_key, algorithm=ALGORITHM)
