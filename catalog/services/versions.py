"""The one versioned-document service: plans and add-ons are both a key with numbered versions
(draft -> published -> archived), each version one validated JSON document. A `Kind` says what differs
(the model, the document's fields, its validator, the words in messages); every write below serves both.

Every write is atomic and leaves an audit row under the key (object type "plan" or "addon"); a published
or archived version never changes (`VersionImmutable`, 409)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog import selectors
from catalog.models import AddonVersion, PlanVersion, VersionStatus
from catalog.pricing import ErrorList, PriceInvalid
from catalog.validation import KEY_HELP, is_valid_key, validate_rate_card
from core.audit import Actor, audit_object
from core.audited import create_audited
from core.errors import Conflict, NotFound, ValidationFailed
from core.models import Organization

V = TypeVar("V", PlanVersion, AddonVersion)


class VersionImmutable(Conflict):
    code = "version-immutable"
    title = "Version is immutable"


def invalid(exc: PriceInvalid) -> ValidationFailed:
    """A parser's errors as the 400 the API and the console show."""
    return ValidationFailed(str(exc), errors=exc.errors)


def document_name(attr: str) -> str:
    """A model attribute's name in the document: `billing_cadence` -> `billingCadence`."""
    first, *rest = attr.split("_")
    return first + "".join(word.capitalize() for word in rest)


@dataclass(frozen=True)
class Kind(Generic[V]):
    """What differs between plans and add-ons."""

    model: type[V]
    get: Callable[..., V]  # its selector: (organization=, id_or_key=, version=None) -> a version, or NotFound
    object_type: str  # "plan" / "addon": audit object type and action prefix
    noun: str  # "Plan" / "Add-on", in messages
    fields: tuple[str, ...]  # the editable body's model attributes (named in camelCase in the document)
    validate: Callable[[Organization, Any, bool], Any]  # (organization, data, for_publish) -> document

    def to_document(self, version: V) -> dict[str, Any]:
        """The editable body of a version (what PUT takes and what the audit log records)."""
        return {document_name(attr): copy.deepcopy(getattr(version, attr)) for attr in self.fields}

    def validated(self, organization: Organization, data: Any, *, for_publish: bool = False) -> Any:
        try:
            return self.validate(organization, data, for_publish)
        except PriceInvalid as exc:
            raise invalid(exc) from None

    def apply(self, version: V, doc: Any) -> None:
        """Copy a validated document onto the version (the document's attributes are the model's)."""
        for attr in self.fields:
            setattr(version, attr, getattr(doc, attr))
        version.feature_keys = doc.feature_keys

    def audit(self, version: V, action: str, actor: Actor, before: Any = None, after: Any = None) -> None:
        audit_object(
            version, f"{self.object_type}.{action}", actor, object_id=version.key, before=before, after=after
        )

    def versions(self, organization: Organization, key: str) -> Any:
        return self.model.objects.filter(organization=organization, key=key).order_by("-version")


def version_create(kind: Kind[V], *, organization: Organization, key: Any, data: Any, actor: Actor) -> V:
    """A new key: version 1, draft."""
    if not is_valid_key(key):
        raise ValidationFailed(KEY_HELP, field="key")
    doc = kind.validated(organization, data)
    if kind.model.objects.filter(organization=organization, key=key).exists():
        raise Conflict(f"{kind.noun} {key!r} already exists; create its next version instead.", field="key")
    version = kind.model(organization=organization, key=key, version=1, status=VersionStatus.DRAFT)
    kind.apply(version, doc)

    def save() -> V:
        version.save()
        return version

    return create_audited(
        save,
        action=f"{kind.object_type}.created",
        object_id=lambda v: v.key,
        after=lambda v: {"version": 1, **kind.to_document(v)},
        actor=actor,
        conflict=f"{kind.noun} {key!r} already exists.",
    )


def version_draft_locked(kind: Kind[V], organization: Organization, version_id: str) -> V:
    """The draft version, locked for update; 404 if missing, 409 if published or archived."""
    version = kind.model.objects.select_for_update().filter(organization=organization, id=version_id).first()
    if version is None:
        raise NotFound(f"No {kind.noun.lower()} version {version_id!r}.")
    if version.status != VersionStatus.DRAFT:
        raise VersionImmutable(
            f"{kind.noun} {version.key!r} version {version.version} is {version.status}; a {version.status} "
            "version never changes. Create the next version to edit it."
        )
    return version


def version_edit(
    kind: Kind[V],
    *,
    organization: Organization,
    version_id: str,
    change: Callable[[dict[str, Any]], None],
    action: str,
    actor: Actor,
) -> V:
    """Apply `change` to a draft's document, re-validate the whole document and save it (PUT replaces the
    document: `change` swaps it)."""
    with transaction.atomic():
        version = version_draft_locked(kind, organization, version_id)
        before = kind.to_document(version)
        data = kind.to_document(version)
        change(data)
        kind.apply(version, kind.validated(organization, data))
        version.save()
        kind.audit(
            version,
            action,
            actor,
            before={"version": version.version, **before},
            after={"version": version.version, **kind.to_document(version)},
        )
    return version


def version_update(
    kind: Kind[V], *, organization: Organization, version_id: str, data: dict[str, Any], actor: Actor
) -> V:
    """Replace a draft's body."""

    def replace(document: dict[str, Any]) -> None:
        document.clear()
        document.update(data)

    return version_edit(
        kind, organization=organization, version_id=version_id, change=replace, action="updated", actor=actor
    )


def _archive_row(kind: Kind[V], version: V, now: Any) -> int:
    return kind.model.objects.filter(pk=version.pk, status=VersionStatus.PUBLISHED).update(
        status=VersionStatus.ARCHIVED, archived_at=now, updated_at=now
    )


def version_publish(kind: Kind[V], *, organization: Organization, version_id: str, actor: Actor) -> V:
    """Publish a draft: the key's previously published version is archived in the same transaction."""
    with transaction.atomic():
        version = version_draft_locked(kind, organization, version_id)
        kind.validated(organization, kind.to_document(version), for_publish=True)
        now = timezone.now()
        previous = list(
            kind.model.objects.select_for_update()
            .filter(organization=organization, key=version.key, status=VersionStatus.PUBLISHED)
            .order_by("pk")
        )
        for old in previous:
            _archive_row(kind, old, now)
            kind.audit(
                old,
                "archived",
                actor,
                before={"version": old.version, "status": "published"},
                after={"version": old.version, "status": "archived", "supersededBy": version.version},
            )
        updated = kind.model.objects.filter(pk=version.pk, status=VersionStatus.DRAFT).update(
            status=VersionStatus.PUBLISHED, published_at=now, updated_at=now
        )
        if updated != 1:
            raise Conflict("This version changed while publishing; reload and try again.")
        version.refresh_from_db()
        kind.audit(
            version,
            "published",
            actor,
            before={"version": version.version, "status": "draft", "replaces": [o.version for o in previous]},
            after={"version": version.version, "status": "published"},
        )
    return version


def version_archive(kind: Kind[V], *, organization: Organization, version_id: str, actor: Actor) -> V:
    """Archive a published version: nothing new can choose it (what uses it keeps it)."""
    with transaction.atomic():
        version = (
            kind.model.objects.select_for_update().filter(organization=organization, id=version_id).first()
        )
        if version is None:
            raise NotFound(f"No {kind.noun.lower()} version {version_id!r}.")
        if version.status != VersionStatus.PUBLISHED:
            raise Conflict(
                f"Only a published version can be archived; this one is {version.status}. Delete a draft instead."
            )
        _archive_row(kind, version, timezone.now())
        version.refresh_from_db()
        kind.audit(
            version,
            "archived",
            actor,
            before={"version": version.version, "status": "published"},
            after={"version": version.version, "status": "archived"},
        )
    return version


def version_next(kind: Kind[V], *, organization: Organization, source: V, by_key: bool, actor: Actor) -> V:
    """A new draft copied from `source` (or, `by_key`, from the key's newest version)."""
    with transaction.atomic():
        versions = kind.versions(organization, source.key)
        if by_key:
            source = versions.first() or source
        if versions.filter(status=VersionStatus.DRAFT).exists():
            raise Conflict(f"{kind.noun} {source.key!r} already has a draft version; edit it instead.")
        latest = versions.first()
        assert latest is not None
        version = kind.model(
            organization=organization,
            key=source.key,
            version=latest.version + 1,
            status=VersionStatus.DRAFT,
            metadata=dict(source.metadata or {}),
            feature_keys=list(source.feature_keys),
        )
        for attr in kind.fields:
            setattr(version, attr, copy.deepcopy(getattr(source, attr)))
        try:
            with transaction.atomic():
                version.save()
        except IntegrityError:
            raise Conflict(f"{kind.noun} {source.key!r} already has a draft version.") from None
        kind.audit(
            version,
            "version_created",
            actor,
            after={"version": version.version, "copiedFrom": source.version},
        )
    return version


def version_next_from(kind: Kind[V], *, organization: Organization, id_or_key: str, actor: Actor) -> V:
    """A new draft copied from the given version (by id) or from the key's newest version (by key)."""
    source = kind.get(organization=organization, id_or_key=id_or_key)
    return version_next(
        kind, organization=organization, source=source, by_key=source.key == id_or_key, actor=actor
    )


def version_delete(kind: Kind[V], *, organization: Organization, version_id: str, actor: Actor) -> None:
    """Delete a draft version."""
    with transaction.atomic():
        version = version_draft_locked(kind, organization, version_id)
        before = {"version": version.version, **kind.to_document(version)}
        version.delete()
        kind.audit(version, "draft_deleted", actor, before=before)


# --- rate cards: the same list edits in a plan's phase and in an add-on ---------------------------
def check_part(validator: Callable[..., Any], raw: Any, path: str, organization: Organization) -> None:
    """Validate one phase or rate card alone so its errors carry its own short path for forms."""
    errors = ErrorList()
    validator(raw, path=path, features=selectors.feature_refs(organization=organization), errors=errors)
    if errors.items:
        raise ValidationFailed(
            "; ".join(f"{e['name']}: {e['reason']}" for e in errors.items), errors=errors.items
        )


def check_rate_card(rate_card: Any, organization: Organization) -> None:
    check_part(validate_rate_card, rate_card, "rateCard", organization)


def card_upsert(cards: list[dict[str, Any]], rate_card: dict[str, Any], replace_key: str | None) -> None:
    """Add `rate_card` to `cards`, or replace the one keyed `replace_key` (keys stay unique)."""
    keys = [c["key"] for c in cards]
    if replace_key is not None and replace_key not in keys:
        raise NotFound(f"No rate card {replace_key!r}.")
    if rate_card.get("key") != replace_key and rate_card.get("key") in keys:
        raise ValidationFailed(
            f"Rate card key {rate_card.get('key')!r} is already used here.", field="rateCard.key"
        )
    if replace_key is not None:
        cards[keys.index(replace_key)] = rate_card
    else:
        cards.append(rate_card)


def card_remove(cards: list[dict[str, Any]], rate_card_key: str) -> None:
    remaining = [c for c in cards if c["key"] != rate_card_key]
    if len(remaining) == len(cards):
        raise NotFound(f"No rate card {rate_card_key!r}.")
    cards[:] = remaining
