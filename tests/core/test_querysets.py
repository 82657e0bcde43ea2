"""`core.querysets.first_or_not_found`: the row, or NotFound for a lookup that matches none (another
organization's row included)."""

import pytest

from core.errors import NotFound
from core.models import Organization
from core.querysets import first_or_not_found
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db


def test_the_first_row_or_not_found_and_no_other_organization_leaks():
    org = OrganizationFactory()
    other = OrganizationFactory()
    assert first_or_not_found(Organization.objects.filter(id=org.id), "No such org.") == org
    with pytest.raises(NotFound) as caught:
        first_or_not_found(Organization.objects.filter(id=org.id).exclude(id=org.id), "No such org.")
    assert caught.value.detail == "No such org."
    assert caught.value.status == 404
    mine = Organization.objects.filter(id=other.id, slug=org.slug)
    with pytest.raises(NotFound):
        first_or_not_found(mine, "No such org.")
