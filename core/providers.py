"""A named table of provider functions that tests can replace one at a time.

An app module that reads another app through plain functions (`billing.sources`, `invoicing.sources`) keeps
them in a `Providers` table: code calls `providers["usage"](...)`, tests call `providers.set("usage", fake)`
and `providers.set("usage", None)` to restore the default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


class Providers:
    """Provider functions by name; each can be replaced and restored to the one it was created with."""

    def __init__(self, defaults: Mapping[str, Callable[..., Any]]) -> None:
        self._defaults = dict(defaults)
        self._current = dict(defaults)

    def __getitem__(self, name: str) -> Callable[..., Any]:
        return self._current[name]

    def set(self, name: str, fn: Callable[..., Any] | None) -> None:
        """Replace a provider (None restores the default); KeyError for a name the table does not have."""
        if name not in self._defaults:
            raise KeyError(name)
        self._current[name] = fn or self._defaults[name]
