"""Customers (with their subjects), subscriptions and subscription items, as rows."""

from __future__ import annotations

from datetime import UTC, datetime

import factory

from billing.models import Customer, CustomerSubject, Subscription, SubscriptionItem
from tests.factories.core import OrganizationFactory


class CustomerFactory(factory.django.DjangoModelFactory):
    """A customer with one usage subject, `subj-<key>` (pass `subjects=[...]` for others, `[]` for none)."""

    class Meta:
        model = Customer
        skip_postgeneration_save = True  # the subjects hook writes its own rows, the customer is saved

    organization = factory.SubFactory(OrganizationFactory)
    key = factory.Sequence(lambda n: f"customer-{n}")
    name = factory.LazyAttribute(lambda c: f"{c.key.title()} Ltd")
    primary_email = factory.LazyAttribute(lambda c: f"billing@{c.key}.test")
    currency = "USD"
    billing_address = factory.LazyFunction(
        lambda: {"line1": "1 Main Street", "city": "Springfield", "postalCode": "12345", "country": "US"}
    )

    @factory.post_generation
    def subjects(customer, create, extracted, **kwargs):
        keys = [f"subj-{customer.key}"] if extracted is None else extracted
        for key in keys if create else ():
            CustomerSubject.objects.create(
                organization=customer.organization, customer=customer, subject_key=key
            )


class CustomerSubjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomerSubject

    customer = factory.SubFactory(CustomerFactory, subjects=[])
    organization = factory.SelfAttribute("customer.organization")
    subject_key = factory.Sequence(lambda n: f"subject-{n}")


class SubscriptionFactory(factory.django.DjangoModelFactory):
    """A monthly subscription row to plan `pro` v1, anchored 2026-01-01 UTC, with no items (add them with
    SubscriptionItemFactory)."""

    class Meta:
        model = Subscription

    customer = factory.SubFactory(CustomerFactory)
    organization = factory.SelfAttribute("customer.organization")
    plan_key = "pro"
    plan_version = 1
    name = factory.LazyAttribute(lambda s: s.plan_key.title())
    currency = factory.LazyAttribute(lambda s: s.customer.currency or "USD")
    timezone = "UTC"
    billing_cadence = "P1M"
    billing_anchor = datetime(2026, 1, 1, tzinfo=UTC)
    active_from = factory.SelfAttribute("billing_anchor")
    active_to = None
    plan_snapshot = factory.LazyAttribute(
        lambda s: {"key": s.plan_key, "version": s.plan_version, "phases": []}
    )


class SubscriptionItemFactory(factory.django.DjangoModelFactory):
    """An item of a subscription: a flat 30 in-advance fee by default."""

    class Meta:
        model = SubscriptionItem

    subscription = factory.SubFactory(SubscriptionFactory)
    organization = factory.SelfAttribute("subscription.organization")
    key = factory.Sequence(lambda n: f"item_{n}")
    name = factory.LazyAttribute(lambda i: i.key.replace("_", " ").title())
    feature_key = ""
    price = factory.LazyFunction(lambda: {"type": "flat", "amount": "30", "paymentTerm": "in_advance"})
    payment_term = "in_advance"
    billing_cadence = factory.SelfAttribute("subscription.billing_cadence")
    active_from = factory.SelfAttribute("subscription.active_from")
    active_to = factory.SelfAttribute("subscription.active_to")
