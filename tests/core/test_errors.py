from core.errors import flatten_errors


def test_flatten_nested_paths():
    detail = {
        "name": ["This field is required."],
        "phases": [{}, {"rateCards": [{"price": {"tiers": [{}, {}, {"upToAmount": ["Must increase."]}]}}]}],
        "non_field_errors": ["Bad combination."],
    }
    assert flatten_errors(detail) == [
        {"name": "name", "reason": "This field is required."},
        {"name": "phases[1].rateCards[0].price.tiers[2].upToAmount", "reason": "Must increase."},
        {"name": "body", "reason": "Bad combination."},
    ]


def test_flatten_batch_index():
    assert flatten_errors([{}, {"subject": ["required"]}]) == [{"name": "[1].subject", "reason": "required"}]
