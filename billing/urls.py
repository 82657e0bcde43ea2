"""Routes owned by this app (full paths: /api/... and /console/...). config/urls.py includes it."""

from django.urls import path

from billing import api, views
from billing import api_entitlements as ent
from billing import api_subscriptions as subs

E2 = "api/v2/customers/<str:customer>/entitlements"

urlpatterns: list = [
    path("api/v1/customers", api.CustomerListCreateView.as_view(), name="billing_customer_list"),
    path(
        "api/v1/customers/<str:id_or_key>", api.CustomerDetailView.as_view(), name="billing_customer_detail"
    ),
    path(
        "api/v1/customers/<str:customer>/access",
        ent.CustomerAccessView.as_view(),
        name="billing_customer_access",
    ),
    path(
        "api/v1/customers/<str:customer>/entitlements/<str:entitlement>/value",
        ent.CustomerEntitlementValueV1View.as_view(),
        name="billing_entitlement_value_v1",
    ),
    path(E2, ent.CustomerEntitlementsView.as_view(), name="billing_entitlement_list"),
    path(
        f"{E2}/<str:entitlement>",
        ent.CustomerEntitlementDetailView.as_view(),
        name="billing_entitlement_detail",
    ),
    path(
        f"{E2}/<str:entitlement>/value",
        ent.CustomerEntitlementValueView.as_view(),
        name="billing_entitlement_value",
    ),
    path(
        f"{E2}/<str:entitlement>/history",
        ent.CustomerEntitlementHistoryView.as_view(),
        name="billing_entitlement_history",
    ),
    path(
        f"{E2}/<str:entitlement>/reset",
        ent.CustomerEntitlementResetView.as_view(),
        name="billing_entitlement_reset",
    ),
    path(
        f"{E2}/<str:entitlement>/override",
        ent.CustomerEntitlementOverrideView.as_view(),
        name="billing_entitlement_override",
    ),
    path(
        f"{E2}/<str:entitlement>/grants",
        ent.CustomerEntitlementGrantsView.as_view(),
        name="billing_grant_list",
    ),
    path(
        "api/v2/entitlements", ent.EntitlementAdminListView.as_view(), name="billing_entitlement_admin_list"
    ),
    path("api/v2/grants", ent.GrantAdminListView.as_view(), name="billing_grant_admin_list"),
    path("api/v1/grants/<str:grant_id>", ent.GrantVoidView.as_view(), name="billing_grant_void"),
    path(
        "api/v1/notification/events",
        ent.NotificationEventListView.as_view(),
        name="billing_notification_events",
    ),
    path(
        "api/v1/notification/rules",
        ent.NotificationRuleListCreateView.as_view(),
        name="billing_notification_rules",
    ),
    path("api/v1/subscriptions", subs.SubscriptionListCreateView.as_view(), name="billing_subscription_list"),
    path(
        "api/v1/subscriptions/<str:subscription_id>",
        subs.SubscriptionDetailView.as_view(),
        name="billing_subscription_detail",
    ),
    path(
        "api/v1/subscriptions/<str:subscription_id>/change",
        subs.SubscriptionChangeView.as_view(),
        name="billing_subscription_change",
    ),
    path(
        "api/v1/subscriptions/<str:subscription_id>/migrate",
        subs.SubscriptionMigrateView.as_view(),
        name="billing_subscription_migrate",
    ),
    path(
        "api/v1/subscriptions/<str:subscription_id>/cancel",
        subs.SubscriptionCancelView.as_view(),
        name="billing_subscription_cancel",
    ),
    path(
        "api/v1/subscriptions/<str:subscription_id>/unschedule-cancelation",
        subs.SubscriptionUnscheduleCancelationView.as_view(),
        name="billing_subscription_unschedule_cancelation",
    ),
    path(
        "api/v1/subscriptions/<str:subscription_id>/addons",
        subs.SubscriptionAddonsView.as_view(),
        name="billing_subscription_addons",
    ),
    *views.urlpatterns,
]
