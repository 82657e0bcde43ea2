"""The ingest validator's two paths: the msgspec fast path must never accept what the hand-written rules
(the slow path, which names every bad field) refuse, and the API's decision is the same either way."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ValidationFailed
from metering import ingest

GOOD = {"id": "e1", "source": "app", "specversion": "1.0", "type": "prompt", "subject": "c1"}
TIMES = [
    "2025-01-01T12:00:00Z",
    "2025-01-01t12:00:00z",
    "2025-01-01 12:00:00+05:30",
    "2025-01-01T12:00:00.123456789-15:59",
    "2025-01-01T12:00:00+16:00",
    "2025-01-01T12:00Z",
    "2025-02-30T12:00:00Z",
    "2025-01-01T24:00:00Z",
    "2025-W01-1T12:00:00Z",
    "",
    12,
    None,
]
DATA = [
    {"tokens": 1},
    {"n": "1e12345 as text"},
    '{"tokens": 2}',
    '"just a string"',
    "[1, 2]",
    [1, 2],
    5,
    None,
    {"deep": {"list": [1, 2.5, None]}},
    {"quoted": 'say "1e30" or 12345678901234567890123'},
    {"n": 1e25},
    {"n": 1e-300, "s": "back\\slash"},
]
STRINGS = ["x", "", "y" * 255, "y" * 256, 7, None]


def slow_accepts(body: bytes, strict: bool) -> bool:
    try:
        ingest.check_events(ingest.parse_body(body), strict=strict)
    except ValidationFailed:
        return False
    return True


event = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from(STRINGS),
        "source": st.sampled_from(STRINGS),
        "type": st.sampled_from(STRINGS),
        "subject": st.sampled_from(STRINGS),
        "specversion": st.sampled_from(["1.0", "0.3", 1.0]),
        "time": st.sampled_from(TIMES),
        "data": st.sampled_from(DATA),
        "extension": st.sampled_from(["x", "4e12-8e-1", 1e25, 123456789012345678901234]),
    },
)


@given(events=st.lists(event, min_size=0, max_size=4), single=st.booleans(), strict=st.booleans())
def test_fast_path_is_never_laxer_than_the_named_rules(events, single, strict):
    payload = events[0] if single and events else events
    body = json.dumps(payload).encode()
    fast = ingest._fast_events(body, strict)
    slow = slow_accepts(body, strict)
    if fast is not None:
        assert slow, body
    try:
        stored, count = ingest.validate_body(body, strict=strict)
    except ValidationFailed:
        assert not slow
    else:
        assert slow
        assert json.loads(stored) == (payload if isinstance(payload, list) else [payload])
        assert count == (len(payload) if isinstance(payload, list) else 1)


def test_every_bad_field_is_named_whichever_path_refused():
    batch = [dict(GOOD), dict(GOOD, subject="", time="2025-01-01T12:00:00+16:00"), dict(GOOD, data=5)]
    with pytest.raises(ValidationFailed) as exc:
        ingest.validate_body(json.dumps(batch).encode())
    names = [e["name"] for e in exc.value.errors]
    assert names == ["events[1].subject", "events[1].time", "events[2].data"]


def test_numbers_are_checked_exactly_when_an_exponent_is_huge():
    ok = json.dumps([dict(GOOD, data={"n": "1e12345 as text", "m": 1})]).encode()
    assert ingest.validate_body(ok)[1] == 1
    with pytest.raises(ValidationFailed, match="out of range"):
        ingest.validate_body(json.dumps([dict(GOOD)])[:-2].encode() + b', "data": {"n": 1e999999}}]')
    big = b'[{"id":"a","source":"s","specversion":"1.0","type":"t","subject":"u","data":{"n":1e12345}}]'
    with pytest.raises(ValidationFailed, match="less than 1e20"):  # numeric holds it; money could not
        ingest.validate_body(big)


def test_tiny_numbers_are_checked_exactly_too():
    tiny = b'[{"id":"a","source":"s","specversion":"1.0","type":"t","subject":"u","data":{"n":1e-400}}]'
    assert ingest._fast_events(tiny, False) is None  # a double would round it to 0: the slow path judges
    assert ingest.validate_body(tiny) == (tiny, 1)
    with pytest.raises(ValidationFailed, match="out of range"):
        ingest.validate_body(tiny.replace(b"1e-400", b"1e-20000"))


UUID_IDS = [  # digits and e's in the shape of exponents (4e12, 0e-…), only ever inside strings
    "3fa85f64-5717-4e12-b3fc-2c963f66afa6",
    "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d",
    "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed",
    "6ec0bd7f-11c0-43da-975e-2a8ad9ebae0b",
    "c9e3b0e0-5e1f-4a7e-8e-0123456789012345678901",
]


def test_digits_inside_strings_never_send_a_batch_to_the_slow_path():
    batch = [dict(GOOD, id=i, data={"request": i, "note": 'a "1e300" in quotes'}) for i in UUID_IDS]
    body = json.dumps(batch).encode()
    assert ingest._fast_events(body, False) is not None
    assert ingest.validate_body(body) == (body, len(UUID_IDS))
    # an escaped quote does not end the string; an escaped backslash before the closing quote does
    inside = (
        b'[{"id":"a","source":"s","specversion":"1.0","type":"t","subject":"u","data":{"s":"x\\"1e999\\""}}]'
    )
    assert ingest._fast_events(inside, False) is not None
    outside = inside.replace(b'"x\\"1e999\\""', b'"x\\\\", "n": 1e999')
    assert json.loads(outside)[0]["data"]["n"] == float("inf")
    assert ingest._fast_events(outside, False) is None
    with pytest.raises(ValidationFailed, match=r"events\[0\]\.data\.n: must be less than 1e20"):
        ingest.validate_body(outside)
    # an extension attribute can hold numbers too: such a body is searched whole, its strings skipped
    quoted_ext = b'[{"id":"a","source":"s","specversion":"1.0","type":"t","subject":"u","x":"a\\"1e999\\""}]'
    assert ingest._fast_events(quoted_ext, False) is not None
    number_ext = quoted_ext.replace(b'"a\\"1e999\\""', b'"a\\\\", "n": 1e999')
    assert ingest._fast_events(number_ext, False) is None  # judged exactly: numeric holds it, so accepted
    assert ingest.validate_body(number_ext) == (number_ext, 1)
