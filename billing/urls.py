"""Routes owned by this app (full paths: /api/... and /console/...). config/urls.py includes it."""

from django.urls import path

from billing import api, views
from core.routing import actions, collection

E2 = "api/v2/customers/<str:customer>/entitlements"
S = "api/v1/subscriptions/<str:subscription_id>"

urlpatterns: list = [
    *collection(
        "api/v1/customers",
        api.CustomerListCreateView,
        api.CustomerDetailView,
        key="id_or_key",
        name="billing_customer",
    ),
    path(
        "api/v1/customers/<str:customer>/access",
        api.CustomerAccessView.as_view(),
        name="billing_customer_access",
    ),
    path(
        "api/v1/customers/<str:customer>/entitlements/<str:entitlement>/value",
        api.CustomerEntitlementValueV1View.as_view(),
        name="billing_entitlement_value_v1",
    ),
    *collection(
        E2,
        api.CustomerEntitlementsView,
        api.CustomerEntitlementDetailView,
        key="entitlement",
        name="billing_entitlement",
    ),
    *actions(
        f"{E2}/<str:entitlement>",
        "billing_entitlement",
        value=api.CustomerEntitlementValueView,
        history=api.CustomerEntitlementHistoryView,
        reset=api.CustomerEntitlementResetView,
        override=api.CustomerEntitlementOverrideView,
    ),
    path(
        f"{E2}/<str:entitlement>/grants",
        api.CustomerEntitlementGrantsView.as_view(),
        name="billing_grant_list",
    ),
    path(
        "api/v2/entitlements", api.EntitlementAdminListView.as_view(), name="billing_entitlement_admin_list"
    ),
    path("api/v2/grants", api.GrantAdminListView.as_view(), name="billing_grant_admin_list"),
    path("api/v1/grants/<str:grant_id>", api.GrantVoidView.as_view(), name="billing_grant_void"),
    path(
        "api/v1/notification/events",
        api.NotificationEventListView.as_view(),
        name="billing_notification_events",
    ),
    path(
        "api/v1/notification/rules",
        api.NotificationRuleListCreateView.as_view(),
        name="billing_notification_rules",
    ),
    *collection(
        "api/v1/subscriptions",
        api.SubscriptionListCreateView,
        api.SubscriptionDetailView,
        key="subscription_id",
        name="billing_subscription",
    ),
    *actions(
        S,
        "billing_subscription",
        change=api.SubscriptionChangeView,
        migrate=api.SubscriptionMigrateView,
        cancel=api.SubscriptionCancelView,
        unschedule_cancelation=api.SubscriptionUnscheduleCancelationView,
        addons=api.SubscriptionAddonsView,
    ),
    *views.urlpatterns,
]
