"""`core.providers.Providers`: replace one provider, restore it, refuse unknown names (no database)."""

import pytest

from core.providers import Providers


def _real(**kwargs):
    return "real"


def _other(**kwargs):
    return "other"


def test_set_replaces_one_provider_and_none_restores_the_default():
    table = Providers({"usage": _real, "plan": _real})
    table.set("usage", _other)
    assert table["usage"] is _other
    assert table["plan"] is _real
    table.set("usage", None)
    assert table["usage"] is _real


def test_unknown_names_are_refused():
    table = Providers({"usage": _real})
    with pytest.raises(KeyError):
        table.set("nope", _other)
    with pytest.raises(KeyError):
        table["nope"]


def test_tables_do_not_share_replacements():
    a = Providers({"usage": _real})
    b = Providers({"usage": _real})
    a.set("usage", _other)
    assert b["usage"] is _real
