"""Invitations: how people join an organization (services and the link they follow).

An owner or admin invites an e-mail address with a role; the invitee gets a link by e-mail (never
shown to the inviter, so nobody but the mailbox owner can use it) that is signed with SECRET_KEY,
expires after `INVITATION_TTL`, works once, and can be revoked. Following it, the invitee creates an
account (its login is the invited address) or accepts with the login they already have.

Nothing the inviter sees depends on whether the address already has an account, and an invalid,
expired, used or revoked link all give the same answer.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from core.audit import Actor, audit_object
from core.errors import Conflict, NotFound, ValidationFailed
from core.links import absolute_url
from core.models import ROLE_RANK, Invitation, Membership, Organization, Role

log = logging.getLogger(__name__)

INVITATION_TTL = timedelta(days=7)
_SALT = "core.invitation.v1"
INVALID_LINK = "This invitation link is invalid, has expired, or was already used."


class InvitationInvalid(NotFound):
    """One answer for every unusable link: tampered, unknown, expired, used or revoked."""

    def __init__(self) -> None:
        super().__init__(INVALID_LINK)


@dataclass(frozen=True)
class CreatedInvitation:
    invitation: Invitation
    link: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def invitation_link(*, invitation: Invitation, secret: str) -> str:
    token = signing.TimestampSigner(salt=_SALT).sign(f"{invitation.id}.{secret}")
    return absolute_url(reverse("console_invitation", args=[token]))


def _normalise_email(email: str) -> str:
    email = email.strip()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationFailed("Enter a valid e-mail address.", field="email") from None
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}"


def invitation_create(
    *, organization: Organization, email: str, role: str, inviter: Membership, actor: Actor = None
) -> CreatedInvitation:
    """Invite `email` with `role` and e-mail the link after commit. A pending invitation of the same
    address is replaced (revoked). Only an owner may invite an owner."""
    email = _normalise_email(email)
    if role not in Role.values:
        raise ValidationFailed(f"Unknown role {role!r}; use one of {', '.join(Role.values)}.", field="role")
    if ROLE_RANK[Role(role)] > ROLE_RANK[Role(inviter.role)]:
        raise ValidationFailed("You cannot invite someone with a higher role than your own.", field="role")
    now = timezone.now()
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        replaced = list(
            Invitation.objects.select_for_update()
            .filter(
                organization=organization,
                email__iexact=email,
                accepted_at__isnull=True,
                revoked_at__isnull=True,
            )
            .order_by("pk")
        )
        for old in replaced:
            _revoke(old, actor=actor, now=now, reason="replaced")
        invitation = Invitation.objects.create(
            organization=organization,
            email=email,
            role=role,
            secret_hash=_hash(secret),
            invited_by=inviter.user,
            expires_at=now + INVITATION_TTL,
        )
        audit_object(
            invitation,
            "invitation.created",
            actor,
            after={"email": email, "role": role, "expires_at": invitation.expires_at.isoformat()},
        )
        link = invitation_link(invitation=invitation, secret=secret)
        transaction.on_commit(lambda: _send(invitation=invitation, organization=organization, link=link))
    return CreatedInvitation(invitation=invitation, link=link)


def _send(*, invitation: Invitation, organization: Organization, link: str) -> None:
    inviter = invitation.invited_by.get_username() if invitation.invited_by else "An administrator"
    body = (
        f"{inviter} invited you to join {organization.name} on Meterline as "
        f"{Role(invitation.role).label.lower()}.\n\n"
        f"Accept the invitation (the link works once, until "
        f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC):\n{link}\n\n"
        "If you did not expect this e-mail, ignore it.\n"
    )
    try:
        send_mail(
            f"Join {organization.name} on Meterline",
            body,
            settings.DEFAULT_FROM_EMAIL,
            [invitation.email],
        )
    except Exception:  # the invitation stays pending; the inviter can send it again
        log.exception("Could not send invitation %s", invitation.id)


def _revoke(invitation: Invitation, *, actor: Actor, now: datetime, reason: str) -> None:
    invitation.revoked_at = now
    invitation.save(update_fields=["revoked_at"])
    audit_object(
        invitation,
        "invitation.revoked",
        actor,
        before={"email": invitation.email, "role": invitation.role},
        after={"reason": reason},
    )


def invitation_revoke(*, organization: Organization, invitation_id: str, actor: Actor = None) -> Invitation:
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .select_related("organization")
            .filter(organization=organization, pk=invitation_id)
            .first()
        )
        if invitation is None:
            raise NotFound("No such invitation in this organization.")
        if invitation.accepted_at is not None:
            raise Conflict("This invitation was already accepted; remove the member instead.")
        if invitation.revoked_at is None:
            _revoke(invitation, actor=actor, now=timezone.now(), reason="revoked")
    return invitation


def invitation_from_token(token: str, *, for_update: bool = False) -> Invitation:
    """The pending invitation a link names, or InvitationInvalid (one answer for every failure)."""
    try:
        value = signing.TimestampSigner(salt=_SALT).unsign(token, max_age=INVITATION_TTL)
    except signing.BadSignature:  # includes SignatureExpired
        raise InvitationInvalid() from None
    invitation_id, _, secret = value.partition(".")
    qs = Invitation.objects.select_related("organization", "invited_by")
    if for_update:
        qs = qs.select_for_update(of=("self",))
    invitation = qs.filter(pk=invitation_id).first()
    if (
        invitation is None
        or not hmac.compare_digest(invitation.secret_hash, _hash(secret))
        or not invitation.is_pending(timezone.now())
    ):
        raise InvitationInvalid()
    return invitation


def invitation_accept(*, token: str, user: AbstractBaseUser) -> Membership:
    """Accept once, as `user`. A user who is already a member keeps the role they have."""
    with transaction.atomic():
        invitation = invitation_from_token(token, for_update=True)
        organization = invitation.organization
        membership = Membership.objects.filter(organization=organization, user=user).first()  # type: ignore[misc]
        if membership is None:
            membership = Membership.objects.create(
                organization=organization,
                user=user,  # type: ignore[misc]
                role=invitation.role,
            )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user  # type: ignore[assignment]
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        audit_object(
            invitation,
            "invitation.accepted",
            user,
            before={"email": invitation.email, "role": invitation.role},
            after={"user": user.get_username(), "membership": membership.pk, "role": membership.role},
        )
    return membership


def invitation_signup(*, token: str, password: str) -> tuple[AbstractBaseUser, Membership]:
    """Create an account whose login is the invited address, then accept. Only the holder of a valid
    link (the mailbox owner) learns whether that address already has an account."""
    with transaction.atomic():
        invitation = invitation_from_token(token, for_update=True)
        User = get_user_model()
        if User.objects.filter(username__iexact=invitation.email).exists():
            raise Conflict(
                "An account with this e-mail address already exists: log in to accept.", field="password"
            )
        user = User(username=invitation.email, email=invitation.email)
        try:
            password_validation.validate_password(password, user)
        except ValidationError as exc:
            raise ValidationFailed(" ".join(exc.messages), field="password") from None
        user.set_password(password)
        user.save()
        membership = invitation_accept(token=token, user=user)
    return user, membership
