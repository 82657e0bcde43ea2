"""API key authentication (`Authorization: Bearer <key>`) and scope checks."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from core.models import ApiKey

KEY_PREFIX = "ml_"
LAST_USED_RESOLUTION = timedelta(seconds=60)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def generate_secret() -> tuple[str, str]:
    """Return (secret, display prefix). The secret is `ml_` + 43 url-safe characters (256 bits)."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    return secret, secret[:11]


def api_key_lookup(secret: str) -> ApiKey | None:
    """The active key for this secret, or None. Touches `last_used_at` at most once a minute."""
    if not secret.startswith(KEY_PREFIX) or len(secret) > 200:
        return None
    key = ApiKey.objects.select_related("organization").filter(secret_hash=hash_secret(secret)).first()
    if key is None or not key.is_active:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


# --- short in-process cache for hot paths (ingest, entitlement value checks) ---------------------
# A request on these paths must not pay a database round trip for the key. A revoked or expired key
# stops working within API_KEY_CACHE_SECONDS in other processes (immediately in the process that
# revoked it). Failed lookups are never cached.
_key_cache: dict[str, tuple[float, ApiKey]] = {}
_key_cache_lock = threading.Lock()
_KEY_CACHE_MAX = 10_000


def api_key_lookup_cached(secret: str) -> ApiKey | None:
    ttl = settings.API_KEY_CACHE_SECONDS
    if ttl <= 0:
        return api_key_lookup(secret)
    digest = hash_secret(secret)
    now = time.monotonic()
    hit = _key_cache.get(digest)
    if hit is not None and hit[0] > now and hit[1].is_active:
        return hit[1]
    key = api_key_lookup(secret)
    with _key_cache_lock:
        if len(_key_cache) > _KEY_CACHE_MAX:
            _key_cache.clear()
        if key is not None:
            _key_cache[digest] = (now + ttl, key)
        else:
            _key_cache.pop(digest, None)
    return key


def api_key_cache_forget(secret_hash: str) -> None:
    """Drop a key from this process's cache (called when it is revoked)."""
    with _key_cache_lock:
        _key_cache.pop(secret_hash, None)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Bearer API keys. Sets `request.auth` to the ApiKey and `request.organization` on success."""

    keyword = "Bearer"

    @staticmethod
    def lookup(secret: str) -> ApiKey | None:
        return api_key_lookup(secret)

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        secret = self.secret_from_header(header)
        if secret is None:
            return None
        key = self.lookup(secret)
        if key is None:
            raise exceptions.AuthenticationFailed("The API key is invalid, expired or revoked.")
        request._request.organization = key.organization
        return (None, key)

    @classmethod
    def secret_from_header(cls, header: str) -> str | None:
        if not header:
            return None
        parts = header.split(None, 1)
        if len(parts) != 2 or parts[0].lower() != cls.keyword.lower():
            return None
        return parts[1].strip()

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class CachedBearerAuthentication(ApiKeyAuthentication):
    """Bearer keys through the short in-process cache; for endpoints called on every gateway request."""

    @staticmethod
    def lookup(secret: str) -> ApiKey | None:
        return api_key_lookup_cached(secret)


class HasScope(permissions.BasePermission):
    """Grants access when the key carries the view's `required_scope` (or `admin`).

    Views declare `required_scope` (one of ingest/read/admin), or `required_scopes` per HTTP
    method, e.g. {"GET": "read", "POST": "admin"}. A view that declares neither is refused.
    """

    message = "This API key does not have the required scope."

    def has_permission(self, request, view) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            raise exceptions.NotAuthenticated("Send an API key as `Authorization: Bearer <key>`.")
        required = required_scope_for(view, request.method)
        if required is None:
            return False
        if required in key.scopes or "admin" in key.scopes:
            return True
        self.message = f"This API key lacks the `{required}` scope (it has: {', '.join(key.scopes)})."
        return False


def required_scope_for(view, method: str) -> str | None:
    per_method = getattr(view, "required_scopes", None)
    if per_method:
        return per_method.get(method) or per_method.get("*")
    return getattr(view, "required_scope", None)
