"""Portal token strings: signed with Django's signing (HMAC-SHA256 keyed by SECRET_KEY), expiring.

`mlp_<signed payload>` where the payload is {"o": organization id, "t": PortalToken id, "e": expiry (unix)}.
The signature makes tampering detectable; the expiry is inside the signed payload and in the row; the row
(the jti) makes invalidation immediate. Verification is: signature → expiry → one indexed row lookup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.core import signing
from django.utils import timezone

TOKEN_PREFIX = "mlp_"
SALT = "portal.token.v1"
MAX_TOKEN_LENGTH = 400


class PortalTokenInvalid(Exception):
    """Tampered, malformed, expired or invalidated: the caller answers 401 / a clear page."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TokenClaims:
    organization_id: str
    token_id: str
    expires_at: datetime


def token_sign(*, organization_id: str, token_id: str, expires_at: datetime) -> str:
    payload = {"o": organization_id, "t": token_id, "e": int(expires_at.timestamp())}
    return TOKEN_PREFIX + signing.dumps(payload, salt=SALT, compress=False)


def token_unsign(raw: str) -> TokenClaims:
    """The claims of a well-signed, unexpired token. Raises PortalTokenInvalid otherwise."""
    if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > MAX_TOKEN_LENGTH:
        raise PortalTokenInvalid("This portal token is malformed.")
    try:
        payload = signing.loads(raw[len(TOKEN_PREFIX) :], salt=SALT)
    except signing.BadSignature:
        raise PortalTokenInvalid("This portal token is invalid (bad signature).") from None
    if not isinstance(payload, dict) or not {"o", "t", "e"} <= payload.keys():
        raise PortalTokenInvalid("This portal token is malformed.")
    expires_at = datetime.fromtimestamp(int(payload["e"]), tz=UTC)
    if expires_at <= timezone.now():
        raise PortalTokenInvalid("This portal token has expired.")
    return TokenClaims(organization_id=str(payload["o"]), token_id=str(payload["t"]), expires_at=expires_at)
