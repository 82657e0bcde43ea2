"""Organization-level invoicing settings: numbering and payment terms, tax rates, the Stripe connection."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.audit import Actor, audit_object
from core.errors import Conflict, NotFound, ValidationFailed, raise_invalid
from core.models import Organization
from core.money import to_decimal
from invoicing.models import (
    InvoiceLine,
    InvoicingSettings,
    StripeSettings,
    TaxRate,
)

# --- settings -----------------------------------------------------------------------------------------
SETTINGS_LIMITS: dict[str, tuple[int, int]] = {  # field -> (min, max)
    "collection_delay_seconds": (0, 30 * 86400),
    "draft_period_seconds": (0, 90 * 86400),
    "due_days": (0, 365),
}
SETTINGS_TEXT = {
    "supplier_name": 200,
    "supplier_address": 2000,
    "supplier_tax_id": 64,
    "supplier_email": 320,
    "payment_instructions": 2000,
}
SETTINGS_FIELDS = (*SETTINGS_LIMITS, "auto_advance", "number_prefix", *SETTINGS_TEXT)
NUMBER_PREFIX_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,19}$")
API_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z_]+)?$")
STRIPE_KEY_PREFIXES = ("sk_test_", "sk_live_", "rk_test_", "rk_live_", "sk_", "rk_")
COLLECTION_METHODS = ("send_invoice", "charge_automatically")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def invoicing_settings_get(*, organization: Organization) -> InvoicingSettings:
    found = InvoicingSettings.objects.filter(organization=organization).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return InvoicingSettings.objects.create(
                organization=organization, number_prefix=organization.slug.upper()[:20]
            )
    except IntegrityError:
        return InvoicingSettings.objects.get(organization=organization)


def invoicing_settings_validate(fields: dict[str, Any]) -> dict[str, Any]:
    """Clean the given settings (snake_case names); every problem is reported at once, named in
    camelCase as the API spells it."""
    errors: list[dict[str, str]] = []
    clean: dict[str, Any] = {}
    for name, value in fields.items():
        api = _camel(name)
        if name not in SETTINGS_FIELDS:
            errors.append({"name": api, "reason": "Unknown setting."})
        elif name in SETTINGS_LIMITS:
            low, high = SETTINGS_LIMITS[name]
            try:
                number = int(str(value).strip())
            except (TypeError, ValueError):
                errors.append({"name": api, "reason": "Must be a whole number."})
                continue
            if isinstance(value, bool) or not (low <= number <= high):
                errors.append({"name": api, "reason": f"Must be between {low} and {high}."})
                continue
            clean[name] = number
        elif name == "auto_advance":
            if not isinstance(value, bool):
                errors.append({"name": api, "reason": "Must be true or false."})
                continue
            clean[name] = value
        elif name == "number_prefix":
            prefix = str(value or "").strip().upper()
            if not NUMBER_PREFIX_RE.match(prefix):
                errors.append(
                    {
                        "name": api,
                        "reason": "1 to 20 characters: letters, digits, '-' or '_', starting with a "
                        "letter or digit.",
                    }
                )
                continue
            clean[name] = prefix
        else:
            text = str(value or "").strip()
            if len(text) > SETTINGS_TEXT[name]:
                errors.append({"name": api, "reason": f"At most {SETTINGS_TEXT[name]} characters."})
                continue
            clean[name] = text
    if errors:
        raise ValidationFailed(
            "; ".join(f"{e['name']}: {e['reason']}" for e in errors), field=errors[0]["name"], errors=errors
        )
    return clean


def invoicing_settings_update(
    *, organization: Organization, actor: Actor = None, **fields: Any
) -> InvoicingSettings:
    """Change some invoicing settings (validated; audit row with what changed, before and after)."""
    clean = invoicing_settings_validate(fields)
    s = invoicing_settings_get(organization=organization)
    before = {_camel(k): getattr(s, k) for k in clean}
    changed = {k: v for k, v in clean.items() if getattr(s, k) != v}
    if not changed:
        return s
    for name, value in changed.items():
        setattr(s, name, value)
    with transaction.atomic():
        s.save(update_fields=list(changed))
        audit_object(
            s,
            "invoicing_settings.updated",
            actor,
            before={_camel(k): before[_camel(k)] for k in changed},
            after={_camel(k): v for k, v in changed.items()},
        )
    return s


def _tax_rate_clean(
    *, name: str | None, percentage: Decimal | str | None, errors: list[dict[str, str]]
) -> tuple[str | None, Decimal | None]:
    clean_name = None if name is None else str(name).strip()
    if clean_name is not None and not (1 <= len(clean_name) <= 100):
        errors.append({"name": "name", "reason": "A name of 1 to 100 characters is required."})
    pct = None
    if percentage is not None:
        try:
            if isinstance(percentage, (int, float)) and not isinstance(percentage, bool):
                raise TypeError
            pct = to_decimal(str(percentage).strip())
        except (TypeError, ValueError):
            errors.append({"name": "percentage", "reason": 'A decimal string such as "19" or "7.5".'})
        else:
            if not (0 <= pct <= 100) or pct.as_tuple().exponent < -4:  # type: ignore[operator]
                errors.append(
                    {"name": "percentage", "reason": "Between 0 and 100, at most 4 decimal places."}
                )
                pct = None
    return clean_name, pct


def _tax_rate_audit(rate: TaxRate) -> dict[str, Any]:
    return {
        "name": rate.name,
        "percentage": str(rate.percentage),
        "inclusive": rate.inclusive,
        "isDefault": rate.is_default,
        "archived": rate.archived_at is not None,
    }


def tax_rate_create(
    *,
    organization: Organization,
    name: str,
    percentage: Decimal | str,
    inclusive: bool = False,
    is_default: bool = False,
    actor: Actor = None,
) -> TaxRate:
    errors: list[dict[str, str]] = []
    clean_name, pct = _tax_rate_clean(name=name, percentage=percentage, errors=errors)
    raise_invalid(errors)
    assert clean_name is not None and pct is not None
    with transaction.atomic():
        if is_default:
            TaxRate.objects.filter(organization=organization, is_default=True).update(is_default=False)
        rate = TaxRate.objects.create(
            organization=organization,
            name=clean_name,
            percentage=pct,
            inclusive=bool(inclusive),
            is_default=bool(is_default),
        )
        audit_object(
            rate,
            "tax_rate.created",
            actor,
            after=_tax_rate_audit(rate),
        )
    return rate


def tax_rate_update(
    *,
    organization: Organization,
    tax_rate_id: str,
    name: str | None = None,
    percentage: Decimal | str | None = None,
    inclusive: bool | None = None,
    is_default: bool | None = None,
    actor: Actor = None,
) -> TaxRate:
    """Change a rate. Issued invoices keep their amounts; drafts and later invoices use the new rate."""
    errors: list[dict[str, str]] = []
    clean_name, pct = _tax_rate_clean(name=name, percentage=percentage, errors=errors)
    raise_invalid(errors)
    with transaction.atomic():
        rate = TaxRate.objects.select_for_update().filter(organization=organization, id=tax_rate_id).first()
        if rate is None:
            raise NotFound(f"No tax rate {tax_rate_id}.")
        if rate.archived_at is not None:
            raise Conflict("An archived tax rate cannot be changed.", field="id")
        before = _tax_rate_audit(rate)
        if clean_name is not None:
            rate.name = clean_name
        if pct is not None:
            rate.percentage = pct
        if inclusive is not None:
            rate.inclusive = bool(inclusive)
        if is_default is not None:
            if is_default and not rate.is_default:
                TaxRate.objects.filter(organization=organization, is_default=True).update(is_default=False)
            rate.is_default = bool(is_default)
        after = _tax_rate_audit(rate)
        if after == before:
            return rate
        rate.save()
        audit_object(
            rate,
            "tax_rate.updated",
            actor,
            before=before,
            after=after,
        )
    return rate


def tax_rate_archive(*, organization: Organization, tax_rate_id: str, actor: Actor = None) -> TaxRate | None:
    """Remove a rate: archived (kept, no longer default or offered) when an invoice line uses it,
    deleted otherwise. Returns the archived rate, or None when it was deleted."""
    with transaction.atomic():
        rate = TaxRate.objects.select_for_update().filter(organization=organization, id=tax_rate_id).first()
        if rate is None:
            raise NotFound(f"No tax rate {tax_rate_id}.")
        before = _tax_rate_audit(rate)
        used = InvoiceLine.objects.filter(organization=organization, tax_rate_id=rate.id).exists()
        if used:
            if rate.archived_at is None:
                rate.archived_at = timezone.now()
                rate.is_default = False
                rate.save(update_fields=["archived_at", "is_default"])
            action, after, result = "tax_rate.archived", _tax_rate_audit(rate), rate
        else:
            rate.delete()
            action, after, result = "tax_rate.deleted", None, None
        audit_object(rate, action, actor, object_id=tax_rate_id, before=before, after=after)
    return result


def _secret_state(old: str, new: str) -> str:
    if new == old:
        return "unchanged" if old else "unset"
    if not new:
        return "removed"
    return "changed" if old else "set"


def stripe_settings_set(
    *,
    organization: Organization,
    secret_key: str | None = None,
    webhook_secret: str | None = None,
    api_version: str | None = None,
    enabled: bool | None = None,
    collection_method: str | None = None,
    actor: Actor = None,
) -> StripeSettings:
    """Connect or reconfigure Stripe. None keeps a value; secrets are validated by prefix and never
    written to the audit log (it records "set"/"changed"/"removed")."""
    current = StripeSettings.objects.filter(organization=organization).first()
    errors: list[dict[str, str]] = []
    if secret_key is not None:
        secret_key = secret_key.strip()
        if not secret_key.startswith(("sk_", "rk_")) or len(secret_key) < 8 or " " in secret_key:
            errors.append({"name": "secretKey", "reason": "A Stripe secret key starts with sk_ or rk_."})
    elif current is None:
        errors.append({"name": "secretKey", "reason": "Required to connect Stripe."})
    if webhook_secret is not None:
        webhook_secret = webhook_secret.strip()
        if webhook_secret and (not webhook_secret.startswith("whsec_") or len(webhook_secret) < 10):
            errors.append({"name": "webhookSecret", "reason": "A webhook signing secret starts with whsec_."})
    if api_version is not None:
        api_version = api_version.strip()
        if api_version and not API_VERSION_RE.match(api_version):
            errors.append({"name": "apiVersion", "reason": "A Stripe API version such as 2026-10-28.endive."})
    if collection_method is not None and collection_method not in COLLECTION_METHODS:
        errors.append({"name": "collectionMethod", "reason": f"One of {', '.join(COLLECTION_METHODS)}."})
    raise_invalid(errors)
    with transaction.atomic():
        obj = StripeSettings.objects.select_for_update().filter(organization=organization).first()
        created = obj is None
        if obj is None:
            obj = StripeSettings(organization=organization)
        old_key, old_hook = obj.secret_key, obj.webhook_secret
        before = {
            "apiVersion": obj.api_version,
            "enabled": obj.enabled,
            "collectionMethod": obj.collection_method,
        }
        if secret_key is not None:
            obj.secret_key = secret_key
        if webhook_secret is not None:
            obj.webhook_secret = webhook_secret
        if api_version:
            obj.api_version = api_version
        if enabled is not None:
            obj.enabled = bool(enabled)
        if collection_method is not None:
            obj.collection_method = collection_method
        obj.save()
        audit_object(
            obj,
            "stripe_settings.created" if created else "stripe_settings.updated",
            actor,
            before=None if created else before,
            after={
                "secretKey": _secret_state(old_key, obj.secret_key),
                "webhookSecret": _secret_state(old_hook, obj.webhook_secret),
                "apiVersion": obj.api_version,
                "enabled": obj.enabled,
                "collectionMethod": obj.collection_method,
            },
        )
    return obj
