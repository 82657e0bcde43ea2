"""Billing API (OpenMeter-compatible shapes): customers (`customers.py`), subscriptions (`subscriptions.py`),
entitlements and access (`entitlements.py`), grants (`grants.py`), notification rules and events
(`notifications.py`); what the entitlement and grant wire carries in `serializers.py`, what their views share
in `base.py`."""

from billing.api.customers import CustomerDetailView, CustomerListCreateView
from billing.api.entitlements import (
    CustomerAccessView,
    CustomerEntitlementDetailView,
    CustomerEntitlementHistoryView,
    CustomerEntitlementOverrideView,
    CustomerEntitlementResetView,
    CustomerEntitlementsView,
    CustomerEntitlementValueV1View,
    CustomerEntitlementValueView,
    EntitlementAdminListView,
)
from billing.api.grants import CustomerEntitlementGrantsView, GrantAdminListView, GrantVoidView
from billing.api.notifications import NotificationEventListView, NotificationRuleListCreateView
from billing.api.subscriptions import (
    SubscriptionAddonsView,
    SubscriptionCancelView,
    SubscriptionChangeView,
    SubscriptionDetailView,
    SubscriptionListCreateView,
    SubscriptionMigrateView,
    SubscriptionUnscheduleCancelationView,
)

__all__ = [
    "CustomerAccessView",
    "CustomerDetailView",
    "CustomerEntitlementDetailView",
    "CustomerEntitlementGrantsView",
    "CustomerEntitlementHistoryView",
    "CustomerEntitlementOverrideView",
    "CustomerEntitlementResetView",
    "CustomerEntitlementValueV1View",
    "CustomerEntitlementValueView",
    "CustomerEntitlementsView",
    "CustomerListCreateView",
    "EntitlementAdminListView",
    "GrantAdminListView",
    "GrantVoidView",
    "NotificationEventListView",
    "NotificationRuleListCreateView",
    "SubscriptionAddonsView",
    "SubscriptionCancelView",
    "SubscriptionChangeView",
    "SubscriptionDetailView",
    "SubscriptionListCreateView",
    "SubscriptionMigrateView",
    "SubscriptionUnscheduleCancelationView",
]
