"""The store's shared SQL fragment helper."""

from metering.store.events import and_given


def test_and_given_keeps_only_the_conditions_with_a_value_in_order():
    where, params = and_given(("a = %s", 1), ("b < %s", None), ("c >= %s", "x"))
    assert where == " AND a = %s AND c >= %s"
    assert params == [1, "x"]


def test_and_given_with_no_value_adds_nothing():
    assert and_given(("a = %s", None)) == ("", [])
    assert and_given() == ("", [])


def test_and_given_keeps_falsy_values_that_are_not_none():
    assert and_given(("n = %s", 0), ("s = %s", "")) == (" AND n = %s AND s = %s", [0, ""])
