"""Repair subscription schedules saved before times were validated (issue 13).

Before `core.limits.check_time` guarded the API, a change, cancelation or add-on change could be saved
with a timing such as 9999-12-31 (the request answered 500 after the rows were written). Those rows
broke every later read of the subscription (period arithmetic past year 9999 overflows). Schedules
live in [1970-01-01, 2100-01-01) (`core.limits.TIME_MIN`/`TIME_MAX`); a change can never be scheduled
in the past, so only the far end can be out of range. The repair, per subscription, in one transaction:

1. A subscription, phase, item, add-on or entitlement that *starts* at or after 2100 never took effect:
   it is deleted. For a plan change this cancels the pending change (the new subscription goes).
2. An end at or after 2100 is the clip that change left on the rows it replaced: it meant "never" in
   practice, so it becomes open-ended again (NULL), which undoes the clip. A subscription whose
   cancelation was scheduled that far away has its cancelation unscheduled the same way. An
   entitlement whose feature has meanwhile got another live entitlement ends now instead (the one
   live entitlement per feature rule).
3. One audit row per subscription repaired (`subscription.schedule_repaired`, actor "migration")
   lists what was deleted and reopened, so an operator can tell the customer.

The bound is copied here, not imported: a migration must do the same thing whenever it runs.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from django.db import migrations
from django.utils import timezone

TIME_MAX = datetime(2100, 1, 1, tzinfo=UTC)
ACTION = "subscription.schedule_repaired"
ACTOR = "migration billing.0004 (out-of-range schedule repair)"


def repair(apps, schema_editor) -> None:
    Subscription = apps.get_model("billing", "Subscription")
    Phase = apps.get_model("billing", "SubscriptionPhase")
    Item = apps.get_model("billing", "SubscriptionItem")
    Addon = apps.get_model("billing", "SubscriptionAddon")
    Entitlement = apps.get_model("billing", "Entitlement")
    AuditLog = apps.get_model("core", "AuditLog")
    now = timezone.now()
    # subscription id -> {"organization": ..., "deleted": {...}, "reopened": {...}}
    report: dict[str, dict] = defaultdict(
        lambda: {"deleted": defaultdict(list), "reopened": defaultdict(list)}
    )

    def note(kind: str, what: str, subscription_id: str, organization_id: str, row_id: str) -> None:
        entry = report[subscription_id]
        entry["organization"] = organization_id
        entry[kind][what].append(row_id)

    # 1. never started: a pending plan change (the new subscription) or a far-future subscription
    for sub in Subscription.objects.filter(active_from__gte=TIME_MAX).order_by("pk"):
        target = sub.previous_id or sub.pk
        note("deleted", "subscription", target, sub.organization_id, sub.pk)
        for ent_id in Entitlement.objects.filter(subscription_id=sub.pk).values_list("pk", flat=True):
            note("deleted", "entitlement", target, sub.organization_id, ent_id)
        # entitlements outlive a deleted subscription (SET_NULL): remove them first
        Entitlement.objects.filter(subscription_id=sub.pk).delete()
        sub.delete()  # phases, items and add-ons cascade
    spans = [
        (Phase, "phase", "starts_at", "ends_at"),
        (Item, "item", "active_from", "active_to"),
        (Addon, "addon", "active_from", "active_to"),
        (Entitlement, "entitlement", "active_from", "active_to"),
    ]
    for model, what, start, _end in spans:
        rows = model.objects.filter(**{f"{start}__gte": TIME_MAX}).exclude(subscription_id=None)
        for row_id, sub_id, org_id in rows.values_list("pk", "subscription_id", "organization_id"):
            note("deleted", what, sub_id, org_id, row_id)
        rows.delete()

    # 2. ended beyond the range: the clip of the change just canceled, reopened
    for sub in Subscription.objects.filter(active_to__gte=TIME_MAX).order_by("pk"):
        note("reopened", "subscription", sub.pk, sub.organization_id, sub.pk)
        sub.active_to = None
        sub.cancel_requested_at = None
        sub.save(update_fields=["active_to", "cancel_requested_at"])
    for model, what, _start, end in spans[:3]:
        rows = model.objects.filter(**{f"{end}__gte": TIME_MAX})
        for row_id, sub_id, org_id in rows.values_list("pk", "subscription_id", "organization_id"):
            note("reopened", what, sub_id, org_id, row_id)
        rows.update(**{end: None})
    for ent in (
        Entitlement.objects.filter(active_to__gte=TIME_MAX).exclude(subscription_id=None).order_by("pk")
    ):
        live = Entitlement.objects.filter(
            organization_id=ent.organization_id,
            customer_id=ent.customer_id,
            feature_key=ent.feature_key,
            deleted_at=None,
            active_to=None,
        ).exclude(pk=ent.pk)
        superseded = ent.deleted_at is None and live.exists()
        ent.active_to = now if superseded else None
        ent.save(update_fields=["active_to"])
        note(
            "reopened",
            "entitlement" + (" (ended now: superseded)" if superseded else ""),
            ent.subscription_id,
            ent.organization_id,
            ent.pk,
        )

    # 3. one audit row per subscription repaired
    AuditLog.objects.bulk_create(
        AuditLog(
            organization_id=entry["organization"],
            actor_label=ACTOR,
            action=ACTION,
            object_type="subscription",
            object_id=sub_id,
            before=None,
            after={
                "reason": "schedule times must lie before 2100-01-01",
                "deleted": {k: sorted(v) for k, v in entry["deleted"].items()},
                "reopened": {k: sorted(v) for k, v in entry["reopened"].items()},
            },
        )
        for sub_id, entry in sorted(report.items())
    )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_subscriptionitem_commitments"),
        ("core", "0004_jobfailure"),
        # lago's subscription link cascades with a deleted subscription: its model must be in this state
        ("lago", "0001_initial"),
    ]

    operations = [migrations.RunPython(repair, migrations.RunPython.noop)]
