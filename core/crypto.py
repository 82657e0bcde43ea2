"""Encryption of credentials at rest (Stripe secret keys, webhook signing secrets).

Fernet (AES-128-CBC + HMAC-SHA256, from the `cryptography` package) with the keys in
`settings.FIELD_ENCRYPTION_KEYS`: the first encrypts, every one decrypts, so a key is rotated by
prepending a new one and running `manage.py secrets_reencrypt`. A stored value is `fernet:` + token,
which tells an encrypted value from a clear one written before encryption existed.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

PREFIX = "fernet:"


class DecryptionFailed(RuntimeError):
    """A stored secret cannot be decrypted with any configured key."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def _current() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def is_encrypted(value: str) -> bool:
    return value.startswith(PREFIX)


def encrypt(clear: str) -> str:
    return PREFIX + _current().encrypt(clear.encode()).decode()


def decrypt(stored: str) -> str:
    """The clear text of a stored value; a value without the prefix (written before encryption) as is."""
    if not is_encrypted(stored):
        return stored
    try:
        return _current().decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise DecryptionFailed(
            "A stored secret cannot be decrypted with FIELD_ENCRYPTION_KEY: the key changed or was lost. "
            "Restore the previous key (list it after the new one to rotate)."
        ) from None


def reencrypt(stored: str) -> str:
    """The value encrypted with the current first key (clear values get encrypted)."""
    if not is_encrypted(stored):
        return encrypt(stored) if stored else stored
    try:
        return PREFIX + _current().rotate(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise DecryptionFailed(
            "A stored secret cannot be decrypted with any key in FIELD_ENCRYPTION_KEY."
        ) from None
