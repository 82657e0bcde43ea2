"""Organizations, users, memberships and API keys."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from core.models import ApiKey, Membership, Organization, Role
from core.services import api_key_create, membership_set, organization_create

PASSWORD = "correct-horse-battery"


class OrganizationFactory(factory.django.DjangoModelFactory):
    """Made by `organization_create` (its settings and sequences come with it)."""

    class Meta:
        model = Organization

    slug = factory.Sequence(lambda n: f"org-{n}")
    name = factory.LazyAttribute(lambda o: f"{o.slug.replace('-', ' ').title()} Inc")
    currency = "USD"

    @classmethod
    def _create(cls, model_class, *, slug: str, name: str, currency: str, **kwargs) -> Organization:
        return organization_create(slug=slug, name=name, currency=currency, **kwargs)


class UserFactory(factory.django.DjangoModelFactory):
    """A console user whose password is PASSWORD."""

    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user-{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return model_class.objects.create_user(*args, password=PASSWORD, **kwargs)


class MembershipFactory(factory.django.DjangoModelFactory):
    """Made by `membership_set` (audited like a console change)."""

    class Meta:
        model = Membership

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.OWNER

    @classmethod
    def _create(cls, model_class, *, organization, user, role, **kwargs) -> Membership:
        return membership_set(organization=organization, user=user, role=role, **kwargs)


class ApiKeyFactory(factory.django.DjangoModelFactory):
    """Made by `api_key_create`; the returned key carries its clear `secret` (the only time it exists)."""

    class Meta:
        model = ApiKey

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"key {n}")
    scopes = factory.List(["admin"])

    @classmethod
    def _create(cls, model_class, *, organization, name, scopes, **kwargs) -> ApiKey:
        created = api_key_create(organization=organization, name=name, scopes=list(scopes), **kwargs)
        created.key.secret = created.secret  # type: ignore[attr-defined]
        return created.key
