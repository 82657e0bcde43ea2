"""Model fields of our own."""

from __future__ import annotations

from typing import Any

from django.db import models

from core import crypto


class EncryptedTextField(models.TextField):
    """Text stored encrypted at rest (core.crypto, Fernet); Python code reads and writes the clear value.

    Only equality with the empty string and null checks make sense in queries: the ciphertext differs on
    every write. An empty value is stored empty (nothing to hide, and `field=""` filters keep working).
    """

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        return None if value is None else crypto.decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value in (None, "") or crypto.is_encrypted(value):
            return value
        return crypto.encrypt(value)
