"""Meters."""

from __future__ import annotations

import factory

from metering.models import Aggregation, Meter
from metering.services import meter_create
from tests.factories.core import OrganizationFactory


class MeterFactory(factory.django.DjangoModelFactory):
    """Made by `meter_create` (validated and audited as through the API): a SUM of `$.tokens` by default."""

    class Meta:
        model = Meter

    organization = factory.SubFactory(OrganizationFactory)
    slug = factory.Sequence(lambda n: f"meter-{n}")
    event_type = "prompt"
    aggregation = Aggregation.SUM
    value_property = factory.LazyAttribute(
        lambda m: None if m.aggregation == Aggregation.COUNT else "$.tokens"
    )
    group_by = factory.Dict({})

    @classmethod
    def _create(cls, model_class, **kwargs) -> Meter:
        return meter_create(**kwargs)
