"""Invitations instead of adding users by username: an owner/admin invites an e-mail address with a
role; the e-mailed link (signed, expiring, single use, revocable) creates an account or is accepted
with an existing login; the inviter's answers never depend on whether the address has an account;
every step leaves an audit row. A second organization sees and changes none of it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.utils import timezone

from core.models import AuditLog, Invitation, Membership, Role
from tests.conftest import PASSWORD
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

MEMBERS = "/console/settings/members/"
INVALID = "This invitation link is invalid, has expired, or was already used."


def _client(user) -> Client:
    client = Client()
    client.login(username=user.get_username(), password=PASSWORD)
    return client


@pytest.fixture(autouse=True)
def _mail_after_commit(django_capture_on_commit_callbacks):
    """The invitation e-mail goes out after commit; run those callbacks as each test's request commits."""
    global _on_commit
    _on_commit = django_capture_on_commit_callbacks
    yield


def _invite(client: Client, email: str, role: str = Role.PRICING_EDITOR):
    with _on_commit(execute=True):
        return client.post(MEMBERS, {"action": "invite", "email": email, "role": role})


def _link_path(message) -> str:
    return re.search(r"https?://[^/\s]+(/console/invitations/[^\s]+/)", message.body).group(1)


def test_invite_sign_up_and_join_once(tenant_a, tenant_b, settings):
    settings.PUBLIC_BASE_URL = "https://billing.example.com"
    owner_a = _client(tenant_a.user)
    r = _invite(owner_a, "New.Person@Example.COM")
    assert (r.status_code, r["Location"]) == (302, MEMBERS)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["New.Person@example.com"] and message.subject == "Join Acme Inc on Meterline"
    assert "https://billing.example.com/console/invitations/" in message.body
    link = _link_path(message)
    invitation = Invitation.objects.get()
    assert (invitation.organization_id, invitation.email, invitation.role) == (
        tenant_a.org.id,
        "New.Person@example.com",
        Role.PRICING_EDITOR,
    )
    assert invitation.secret_hash not in message.body and link.split("/")[3] not in invitation.secret_hash
    # the inviter's page lists it (the link is never shown there); the other organization's does not
    html = owner_a.get(MEMBERS).content.decode()
    assert "New.Person@example.com" in html and "/console/invitations/" not in html
    assert "New.Person@example.com" not in _client(tenant_b.user).get(MEMBERS).content.decode()

    anonymous = Client()
    page = anonymous.get(link)
    assert page.status_code == 200
    assert "Join Acme Inc" in page.content.decode() and "pricing editor" in page.content.decode()
    mismatch = anonymous.post(link, {"password": "long-enough-1", "password_again": "long-enough-2"})
    assert mismatch.status_code == 400 and "The two passwords differ." in mismatch.content.decode()
    short = anonymous.post(link, {"password": "short", "password_again": "short"})
    assert short.status_code == 400 and "too short" in short.content.decode()
    assert not get_user_model().objects.filter(username="New.Person@example.com").exists()

    joined = anonymous.post(link, {"password": "a-long-password", "password_again": "a-long-password"})
    assert (joined.status_code, joined["Location"]) == (302, "/console/")
    user = get_user_model().objects.get(username="New.Person@example.com")
    assert user.email == "New.Person@example.com" and user.check_password("a-long-password")
    assert list(Membership.objects.filter(user=user).values_list("organization_id", "role")) == [
        (tenant_a.org.id, Role.PRICING_EDITOR)
    ]
    home = anonymous.get("/console/").content.decode()
    assert "<h1>Acme Inc</h1>" in home and "Globex" not in home
    invitation.refresh_from_db()
    assert invitation.accepted_by == user and invitation.accepted_at is not None

    # single use: the same link now answers like any unusable link, for anyone
    for client in (Client(), anonymous, _client(tenant_b.user)):
        again = client.get(link)
        assert again.status_code == 404 and INVALID in again.content.decode()
    assert Client().post(link, {"password": "x" * 12, "password_again": "x" * 12}).status_code == 404
    assert Membership.objects.filter(organization=tenant_a.org).count() == 2
    assert Membership.objects.filter(organization=tenant_b.org).count() == 1
    actions = list(
        AuditLog.objects.filter(organization=tenant_a.org, object_type="invitation")
        .order_by("id")
        .values_list("action", "actor_label")
    )
    assert actions == [
        ("invitation.created", "user:acme-owner"),
        ("invitation.accepted", "user:New.Person@example.com"),
    ]
    assert not AuditLog.objects.filter(organization=tenant_b.org, object_type="invitation").exists()


def test_an_existing_login_accepts_and_keeps_its_other_organization(tenant_a, tenant_b):
    _invite(_client(tenant_a.user), tenant_b.user.email, Role.VIEWER)
    link = _link_path(mail.outbox[0])
    # signing up for an address that has an account: only the link holder learns it, and is sent to log in
    tenant_b.user.username = tenant_b.user.email
    tenant_b.user.save()
    clash = Client().post(link, {"password": "a-long-password", "password_again": "a-long-password"})
    assert clash.status_code == 400
    assert "An account with this e-mail address already exists: log in to accept." in clash.content.decode()
    assert get_user_model().objects.filter(email=tenant_b.user.email).count() == 1

    b_owner = _client(tenant_b.user)
    page = b_owner.get(link).content.decode()
    assert f"Accept as {tenant_b.user.username}" in page
    r = b_owner.post(link)
    assert (r.status_code, r["Location"]) == (302, "/console/")
    assert dict(Membership.objects.filter(user=tenant_b.user).values_list("organization_id", "role")) == {
        tenant_a.org.id: Role.VIEWER,
        tenant_b.org.id: Role.OWNER,
    }
    assert b_owner.session["organization_id"] == tenant_a.org.id
    assert b_owner.get(link).status_code == 404


def test_a_member_who_accepts_keeps_the_role_they_have(tenant_a, tenant_b):
    MembershipFactory(organization=tenant_a.org, user=tenant_b.user, role=Role.ADMIN)
    _invite(_client(tenant_a.user), "someone@globex.test", Role.VIEWER)
    _client(tenant_b.user).post(_link_path(mail.outbox[0]))
    assert Membership.objects.get(organization=tenant_a.org, user=tenant_b.user).role == Role.ADMIN


def test_the_inviters_answer_does_not_depend_on_whether_the_address_has_an_account(tenant_a, tenant_b):
    owner_a = _client(tenant_a.user)
    known = _invite(owner_a, tenant_b.user.email)  # globex-owner's address
    unknown = _invite(owner_a, "nobody@nowhere.test")
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    page = owner_a.get(MEMBERS).content.decode()
    messages_shown = re.findall(r'<li class="success">([^<]+)</li>', page)
    assert messages_shown == [
        f"Invitation sent to {tenant_b.user.email}.",
        "Invitation sent to nobody@nowhere.test.",
    ]
    assert not Membership.objects.filter(organization=tenant_a.org, user=tenant_b.user).exists()
    # the old username field does nothing any more
    owner_a.post(MEMBERS, {"username": tenant_b.user.username, "role": Role.OWNER})
    assert not Membership.objects.filter(organization=tenant_a.org, user=tenant_b.user).exists()


def test_links_expire_can_be_revoked_and_cannot_be_forged(tenant_a, tenant_b):
    owner_a = _client(tenant_a.user)
    _invite(owner_a, "late@example.com")
    _invite(owner_a, "revoked@example.com")
    late, revoked = _link_path(mail.outbox[0]), _link_path(mail.outbox[1])
    invitation = Invitation.objects.get(email="revoked@example.com")

    # B's owner cannot revoke A's invitation (same answer as an unknown id)
    r = _client(tenant_b.user).post(MEMBERS, {"action": "revoke", "invitation": invitation.id})
    assert r.status_code == 400 and "No such invitation in this organization." in r.content.decode()
    invitation.refresh_from_db()
    assert invitation.revoked_at is None
    owner_a.post(MEMBERS, {"action": "revoke", "invitation": invitation.id})
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    assert "<td>revoked@example.com</td>" not in owner_a.get(MEMBERS).content.decode()
    assert INVALID in Client().get(revoked).content.decode()

    token = late.split("/")[3]
    forged = [
        late.replace(token, token[:-1] + ("A" if token[-1] != "A" else "B")),  # signature changed
        late.replace(token, token.replace(token.split(".")[0], invitation.id, 1)),  # another id
        "/console/invitations/not-a-token/",
    ]
    for path in forged:
        r = Client().get(path)
        assert r.status_code == 404 and INVALID in r.content.decode()
    with time_machine.travel(timezone.now() + timedelta(days=7, seconds=1)):
        expired = Client().get(late)
        assert expired.status_code == 404 and INVALID in expired.content.decode()
    assert Client().get(late).status_code == 200  # within its week
    assert list(
        AuditLog.objects.filter(organization=tenant_a.org, action="invitation.revoked").values_list(
            "object_id", flat=True
        )
    ) == [invitation.id]


def test_roles_bound_who_may_invite_whom(tenant_a, tenant_b):
    admin = MembershipFactory(organization=tenant_a.org, user__username="acme-admin", role=Role.ADMIN).user
    viewer = MembershipFactory(organization=tenant_a.org, user__username="acme-viewer", role=Role.VIEWER).user
    r = _invite(_client(admin), "boss@example.com", Role.OWNER)
    assert r.status_code == 400
    assert "You cannot invite someone with a higher role than your own." in r.content.decode()
    assert _client(viewer).post(MEMBERS, {"email": "x@example.com", "role": Role.VIEWER}).status_code == 403
    bad = _invite(_client(admin), "not-an-address")
    assert bad.status_code == 400 and "Enter a valid email address." in bad.content.decode()
    assert not Invitation.objects.exists() and mail.outbox == []
    _invite(_client(tenant_a.user), "boss@example.com", Role.OWNER)
    _invite(_client(tenant_a.user), "boss@example.com", Role.ADMIN)  # replaces the pending one
    assert list(
        Invitation.objects.filter(email="boss@example.com", revoked_at__isnull=True).values_list(
            "role", flat=True
        )
    ) == [Role.ADMIN]
    assert INVALID in Client().get(_link_path(mail.outbox[0])).content.decode()
    assert Client().get(_link_path(mail.outbox[1])).status_code == 200


def test_members_page_query_budget_is_constant(tenant_a, tenant_b, django_assert_max_num_queries):
    owner_a = _client(tenant_a.user)
    owner_a.get(MEMBERS)
    for i in range(15):
        _invite(owner_a, f"bulk{i}@example.com")
    # session, user, membership (middleware), memberships for the switcher, members, invitations
    with django_assert_max_num_queries(7):
        r = owner_a.get(MEMBERS)
    assert r.content.decode().count("@example.com</td>") == 15
