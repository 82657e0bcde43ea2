"""Routes owned by this app (full paths: /api/... and /console/...). config/urls.py includes it."""

from billing import api, views
from core.routing import Routes

API = Routes("api", "billing")
CUSTOMERS = API.under("/v1/customers", "billing_customer")
CUSTOMER = API.under("/v1/customers/<str:customer>")
ENTITLEMENTS = API.under("/v2/customers/<str:customer>/entitlements", "billing_entitlement")
ENTITLEMENT = ENTITLEMENTS.item("entitlement")
GRANTS = ENTITLEMENT.under("/grants", "billing_grant")
SUBSCRIPTIONS = API.under("/v1/subscriptions", "billing_subscription")
SUBSCRIPTION = SUBSCRIPTIONS.item("subscription_id")

urlpatterns: list = [
    *CUSTOMERS.collection(api.CustomerListCreateView, api.CustomerDetailView, key="id_or_key"),
    CUSTOMER.path("/access", api.CustomerAccessView, "customer_access"),
    CUSTOMER.path(
        "/entitlements/<str:entitlement>/value", api.CustomerEntitlementValueV1View, "entitlement_value_v1"
    ),
    *ENTITLEMENTS.collection(
        api.CustomerEntitlementsView, api.CustomerEntitlementDetailView, key="entitlement"
    ),
    *ENTITLEMENT.actions(
        value=api.CustomerEntitlementValueView,
        history=api.CustomerEntitlementHistoryView,
        reset=api.CustomerEntitlementResetView,
        override=api.CustomerEntitlementOverrideView,
    ),
    GRANTS.path("", api.CustomerEntitlementGrantsView, "list"),
    API.path("/v2/entitlements", api.EntitlementAdminListView, "entitlement_admin_list"),
    API.path("/v2/grants", api.GrantAdminListView, "grant_admin_list"),
    API.path("/v1/grants/<str:grant_id>", api.GrantVoidView, "grant_void"),
    API.path("/v1/notification/events", api.NotificationEventListView, "notification_events"),
    API.path("/v1/notification/rules", api.NotificationRuleListCreateView, "notification_rules"),
    *SUBSCRIPTIONS.collection(
        api.SubscriptionListCreateView, api.SubscriptionDetailView, key="subscription_id"
    ),
    *SUBSCRIPTION.actions(
        change=api.SubscriptionChangeView,
        migrate=api.SubscriptionMigrateView,
        cancel=api.SubscriptionCancelView,
        unschedule_cancelation=api.SubscriptionUnscheduleCancelationView,
        addons=api.SubscriptionAddonsView,
    ),
    *views.urlpatterns,
]
