"""Routes owned by this app (full paths: /api/... and /console/...). config/urls.py includes it."""

from django.urls import path

from billing import api, views
from billing import api_entitlements as ent
from billing import api_subscriptions as subs
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
        ent.CustomerAccessView.as_view(),
        name="billing_customer_access",
    ),
    path(
        "api/v1/customers/<str:customer>/entitlements/<str:entitlement>/value",
        ent.CustomerEntitlementValueV1View.as_view(),
        name="billing_entitlement_value_v1",
    ),
    *collection(
        E2,
        ent.CustomerEntitlementsView,
        ent.CustomerEntitlementDetailView,
        key="entitlement",
        name="billing_entitlement",
    ),
    *actions(
        f"{E2}/<str:entitlement>",
        "billing_entitlement",
        value=ent.CustomerEntitlementValueView,
        history=ent.CustomerEntitlementHistoryView,
        reset=ent.CustomerEntitlementResetView,
        override=ent.CustomerEntitlementOverrideView,
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
    *collection(
        "api/v1/subscriptions",
        subs.SubscriptionListCreateView,
        subs.SubscriptionDetailView,
        key="subscription_id",
        name="billing_subscription",
    ),
    *actions(
        S,
        "billing_subscription",
        change=subs.SubscriptionChangeView,
        migrate=subs.SubscriptionMigrateView,
        cancel=subs.SubscriptionCancelView,
        unschedule_cancelation=subs.SubscriptionUnscheduleCancelationView,
        addons=subs.SubscriptionAddonsView,
    ),
    *views.urlpatterns,
]
