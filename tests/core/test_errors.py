import pytest

from core.errors import (
    Conflict,
    ErrorList,
    ValidationFailed,
    conflict_on_duplicate,
    flatten_errors,
    raise_invalid,
)
from core.models import AuditLog, Organization


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


def test_raise_invalid_lists_every_problem_and_names_the_first_field():
    raise_invalid([])  # nothing to refuse
    errors = ErrorList(prefix="[2].", suffix=" (entry 2)")
    assert not errors
    errors.add("slug", "required")
    errors.add("groupBy.model", "not a path")
    with pytest.raises(ValidationFailed) as caught:
        errors.raise_if_any()
    assert caught.value.errors == [
        {"name": "[2].slug", "reason": "required (entry 2)"},
        {"name": "[2].groupBy.model", "reason": "not a path (entry 2)"},
    ]
    assert caught.value.field == "[2].slug"
    assert caught.value.detail == "[2].slug: required (entry 2); [2].groupBy.model: not a path (entry 2)"


@pytest.mark.django_db
def test_conflict_on_duplicate_turns_a_broken_unique_constraint_into_409_and_writes_nothing():
    Organization.objects.create(slug="acme", name="Acme")
    with pytest.raises(Conflict) as caught, conflict_on_duplicate("Slug taken.", field="slug"):
        Organization.objects.create(slug="beta", name="Beta")
        Organization.objects.create(slug="acme", name="Acme again")
    assert (caught.value.status, caught.value.field, caught.value.detail) == (409, "slug", "Slug taken.")
    assert list(Organization.objects.values_list("slug", flat=True)) == ["acme"]  # beta rolled back too
    assert not AuditLog.objects.exists()
