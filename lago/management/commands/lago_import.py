"""Import what Lago's API exported into an organization, then verify the usage totals.

    manage.py lago_import --organization acme export/ [--verify]

`export/` holds what Lago's list endpoints answered (docs/lago.md shows a script with lago-python-client),
each file either the list itself or Lago's envelope (`{"plans": [...]}`); every file is optional:

| file | Lago endpoint | becomes |
|---|---|---|
| billable_metrics.json | GET /billable_metrics | meters + features |
| plans.json | GET /plans | published plans (charges matched by `billable_metric_code`) |
| customers.json | GET /customers | customers |
| subscriptions.json | GET /subscriptions (active and pending) | subscriptions, same `external_id`, from the current period |
| wallets.json | GET /wallets | the remaining balance as one credit per wallet |
| events.json | your event log (Lago's event shape) | events, deduplicated by `transaction_id` |
| current_usage.json | GET /customers/{id}/current_usage per subscription, `[{external_customer_id, external_subscription_id, customer_usage}]` | compared by `--verify` |

Everything goes through the same services as the API (`lago/services.py`); an object that exists already
(same code or external id) is skipped, so the command can be run again after a partial import.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from billing import selectors as billing_selectors
from core.errors import DomainError
from core.models import Organization
from invoicing.services import invoice_record_billed_elsewhere
from lago import invoice_selectors, selectors, services, wallet_services
from lago.wire import LagoInvalid

ORDER = ("billable_metrics", "plans", "customers", "subscriptions", "wallets", "events")


def _load(folder: Path, name: str) -> list[dict[str, Any]]:
    path = folder / f"{name}.json"
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    if isinstance(data, dict):
        data = data.get(name, [])
    if not isinstance(data, list):
        raise CommandError(f"{path}: expected a list (or {{{name!r}: [...]}}).")
    return data


class Command(BaseCommand):
    help = "Import a Lago API export (metrics, plans, customers, subscriptions, wallets, events) and verify usage."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("folder", type=Path)
        parser.add_argument("--organization", required=True, help="slug of the organization to import into")
        parser.add_argument(
            "--verify", action="store_true", help="compare current usage with current_usage.json"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        folder: Path = options["folder"]
        org = Organization.objects.filter(slug=options["organization"]).first()
        if org is None:
            raise CommandError(f"No organization {options['organization']!r}.")
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder.")
        for name in ORDER:
            rows = _load(folder, name)
            if not rows:
                continue
            done, skipped = getattr(self, f"_import_{name}")(org, rows)
            self.stdout.write(f"{name}: {done} imported, {skipped} skipped")
        if options["verify"]:
            mismatches = self._verify(org, _load(folder, "current_usage"))
            if mismatches:
                raise CommandError(f"{mismatches} usage total(s) differ from Lago's.")

    def _each(self, rows: list[dict[str, Any]], label: str, fn: Any) -> tuple[int, int]:
        done = skipped = 0
        for row in rows:
            try:
                fn(row)
                done += 1
            except (LagoInvalid, DomainError) as exc:
                detail = exc.details if isinstance(exc, LagoInvalid) else exc.detail
                self.stderr.write(f"{label} {row.get('code') or row.get('external_id') or '?'}: {detail}")
                skipped += 1
        return done, skipped

    def _import_billable_metrics(self, org: Organization, rows: list[dict[str, Any]]) -> tuple[int, int]:
        return self._each(rows, "billable metric", lambda r: services.metric_create(organization=org, data=r))

    def _import_plans(self, org: Organization, rows: list[dict[str, Any]]) -> tuple[int, int]:
        def one(plan: dict[str, Any]) -> None:
            ids = {m.code: m.id for m in services.plan_metrics(organization=org).values()}
            charges = [
                {**c, "billable_metric_id": ids.get(c.get("billable_metric_code", ""), "")}
                for c in plan.get("charges") or []
            ]
            services.plan_create(organization=org, data={**plan, "charges": charges})

        return self._each(rows, "plan", one)

    def _import_customers(self, org: Organization, rows: list[dict[str, Any]]) -> tuple[int, int]:
        def one(row: dict[str, Any]) -> None:
            if billing_selectors.customer_list(organization=org, key=row.get("external_id") or "").exists():
                raise LagoInvalid({"external_id": ["value_already_exist"]})
            services.customer_upsert(organization=org, data=row)

        return self._each(rows, "customer", one)

    def _import_subscriptions(self, org: Organization, rows: list[dict[str, Any]]) -> tuple[int, int]:
        """Active subscriptions start here at the start of their current billing period (Lago invoiced
        everything before it, and that period's in-advance fees: recorded as billed elsewhere), keeping
        `billing_time`; pending ones at their `subscription_at`."""

        def one(row: dict[str, Any]) -> None:
            start = row.get("subscription_at")
            current = row.get("current_billing_period_started_at")
            if row.get("status") == "active" and current:
                start = current
            sub = services.subscription_create(organization=org, data={**row, "subscription_at": start})
            if row.get("status") == "active" and current:
                # Lago invoiced this period's in-advance fees at its start: recorded, never billed again
                invoice_record_billed_elsewhere(
                    organization=org,
                    customer=sub.customer,
                    at=sub.active_from,
                    reference=f"Lago, subscription {row.get('external_id', '')}",
                )

        live = [r for r in rows if r.get("status", "active") in ("active", "pending")]
        done, skipped = self._each(live, "subscription", one)
        return done, skipped + len(rows) - len(live)

    def _import_wallets(self, org: Organization, rows: list[dict[str, Any]]) -> tuple[int, int]:
        def one(row: dict[str, Any]) -> None:
            customer = str(row.get("external_customer_id") or "")
            if invoice_selectors.wallet_list(organization=org, external_customer_id=customer):
                raise LagoInvalid({"external_customer_id": ["wallet_already_exists"]})
            wallet_services.wallet_create(
                organization=org,
                data={
                    "external_customer_id": row.get("external_customer_id"),
                    "currency": row.get("currency"),
                    "granted_credits": row.get("credits_balance", "0"),
                    "expiration_at": row.get("expiration_at"),
                },
            )

        live = [r for r in rows if r.get("status", "active") == "active"]
        return self._each(live, "wallet", one)

    def _import_events(self, org: Organization, rows: list[dict[str, Any]]) -> tuple[int, int]:
        done = 0
        for start in range(0, len(rows), 100):
            chunk = rows[start : start + 100]
            services.events_ingest(organization=org, events=chunk, single=False)
            done += len(chunk)
        return done, 0

    def _verify(self, org: Organization, rows: list[dict[str, Any]]) -> int:
        """Each subscription's current usage, charge by charge, against what Lago answered."""
        mismatches = 0
        for row in rows:
            customer = selectors.customer_by_external_id(
                organization=org, external_id=row["external_customer_id"]
            )
            sub = services.subscription_current(organization=org, external_id=row["external_subscription_id"])
            ours = invoice_selectors.current_usage(organization=org, customer=customer, subscription=sub)
            theirs = row["customer_usage"]
            mine = {c["billable_metric"]["code"]: c for c in ours["charges_usage"]}
            for charge in theirs.get("charges_usage", []):
                code = charge["billable_metric"]["code"]
                got = mine.get(code, {"units": "0", "amount_cents": 0})
                same = Decimal(str(got["units"])) == Decimal(str(charge["units"])) and (
                    got["amount_cents"] == charge["amount_cents"]
                )
                mismatches += not same
                self.stdout.write(
                    f"{row['external_subscription_id']} {code}: Lago {charge['units']} units "
                    f"{charge['amount_cents']} cents, here {got['units']} units {got['amount_cents']} cents"
                    + ("" if same else "  <-- differs")
                )
            total_same = ours["amount_cents"] == theirs.get("amount_cents")
            mismatches += not total_same
            self.stdout.write(
                f"{row['external_subscription_id']} total: Lago {theirs.get('amount_cents')} cents, "
                f"here {ours['amount_cents']} cents" + ("" if total_same else "  <-- differs")
            )
        return mismatches
