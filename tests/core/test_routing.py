"""The URL tables: `core.routing.Routes` builds the same `path()` entries one would write by hand, every
route of the project has its own name and is reached by the URL its name reverses to (no route hides
another), and representative routes of each app keep their paths, views and kwargs."""

from collections import Counter

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.urls.resolvers import RegexPattern

from billing import api as billing_api
from catalog import api as catalog_api
from catalog.views import versions
from core import api as core_api
from core.routing import Routes
from invoicing import api as invoicing_api
from invoicing.views import billing_settings, invoice_ops
from lago import api as lago_api
from metering import api as metering_api
from metering import views as metering_views
from portal import views as portal_views


def _project_routes(resolver: URLResolver | None = None, prefix: str = "") -> list[tuple[str, URLPattern]]:
    """Every route of the project (the admin's aside) with its whole pattern."""
    found = []
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace != "admin":
                found += _project_routes(entry, prefix + str(entry.pattern))
        else:
            found.append((prefix + str(entry.pattern), entry))
    return found


def _view_of(match_func):
    return getattr(match_func, "view_class", match_func)


# --- the helper ------------------------------------------------------------------------------------


def _plain(entry: URLPattern) -> tuple:
    return (str(entry.pattern), entry.name, _view_of(entry.callback), entry.default_args)


def test_path_joins_prefixes_as_written_and_routes_a_class_as_its_view():
    routes = Routes("api/v1/things", "app_thing")
    assert _plain(routes.path("/<str:id>/x", core_api.AuditLogView, "x")) == (
        "api/v1/things/<str:id>/x",
        "app_thing_x",
        core_api.AuditLogView,
        {},
    )
    assert _plain(routes.path("/", versions.version_detail, "", {"kind": "plan"})) == (
        "api/v1/things/",
        "app_thing",
        versions.version_detail,
        {"kind": "plan"},
    )


def test_under_and_item_extend_the_path_and_keep_or_replace_the_name():
    things = Routes("api/v1/things", "app_thing")
    assert things.item("thing_id") == Routes("api/v1/things/<str:thing_id>", "app_thing")
    assert things.under("/parts", "app_part") == Routes("api/v1/things/parts", "app_part")
    assert things.under("/parts") == Routes("api/v1/things/parts", "app_thing")


def test_collection_routes_the_list_then_one_item():
    things = Routes("api/v1/things", "app_thing")
    assert [
        _plain(e)
        for e in things.collection(core_api.ApiKeyListCreateView, core_api.ApiKeyDetailView, key="k")
    ] == [
        ("api/v1/things", "app_thing_list", core_api.ApiKeyListCreateView, {}),
        ("api/v1/things/<str:k>", "app_thing_detail", core_api.ApiKeyDetailView, {}),
    ]
    pages = things.collection(
        versions.version_list, versions.version_detail, key="k", names=("all", "one"), slash=True
    )
    assert [(str(e.pattern), e.name) for e in pages] == [
        ("api/v1/things/", "app_thing_all"),
        ("api/v1/things/<str:k>/", "app_thing_one"),
    ]


def test_actions_route_each_keyword_with_hyphens_slash_and_kwargs():
    thing = Routes("console/things/<str:k>", "app_thing")
    routes = thing.actions(slash=True, kwargs={"kind": "plan"}, unschedule_it=versions.version_next)
    assert [_plain(e) for e in routes] == [
        (
            "console/things/<str:k>/unschedule-it/",
            "app_thing_unschedule_it",
            versions.version_next,
            {"kind": "plan"},
        )
    ]
    assert [str(e.pattern) for e in thing.actions(a=versions.version_next, b=versions.version_next)] == [
        "console/things/<str:k>/a",
        "console/things/<str:k>/b",
    ]


# --- the project's tables --------------------------------------------------------------------------

# the sample value of each argument of a regex route (they only match values of their own shape)
REGEX_SAMPLES = {"portal_magic_link": {"token": "mlp_abc"}, "lago_not_found": {"path": "anything/here"}}


def test_no_two_routes_share_a_name():
    names = Counter(entry.name for _, entry in _project_routes() if entry.name)
    assert [name for name, count in names.items() if count > 1] == []
    assert len(names) > 200  # the walk saw every app's table


def test_every_named_route_is_reached_by_the_url_its_name_reverses_to():
    """Each route's own URL resolves to it: no route earlier in the tables takes another's URL."""
    checked = 0
    for _, entry in _project_routes():
        if not entry.name:
            continue
        if isinstance(entry.pattern, RegexPattern):
            kwargs = REGEX_SAMPLES[entry.name]
        else:
            kwargs = {
                key: 7 if converter.regex == "[0-9]+" else "x7"
                for key, converter in entry.pattern.converters.items()
            }
        url = reverse(entry.name, kwargs=kwargs)
        match = resolve(url)
        assert match.url_name == entry.name, url
        assert match.kwargs == {**kwargs, **entry.default_args}
        checked += 1
    assert checked == len([e for _, e in _project_routes() if e.name])


@pytest.mark.parametrize(
    ("name", "kwargs", "path", "view", "extra"),
    [
        ("healthz", {}, "/healthz", None, {}),
        ("api_key_detail", {"key_id": "k1"}, "/api/v1/api-keys/k1", core_api.ApiKeyDetailView, {}),
        ("console_org_settings", {}, "/console/settings/organization/", None, {}),
        ("metering_events_v3", {}, "/api/v3/openmeter/events", metering_api.EventsV3View, {}),
        (
            "metering_meter_query",
            {"id_or_slug": "m"},
            "/api/v1/meters/m/query",
            metering_api.MeterQueryView,
            {},
        ),
        (
            "metering_meter_group_values",
            {"id_or_slug": "m", "key": "region"},
            "/api/v1/meters/m/group-by/region/values",
            metering_api.MeterGroupValuesView,
            {},
        ),
        ("metering_console_meter_new", {}, "/console/meters/new/", metering_views.meter_edit, {}),
        (
            "catalog_rate_card_detail",
            {"plan_id": "p", "phase_key": "ph", "rate_card_key": "rc"},
            "/api/v1/plans/p/phases/ph/rate-cards/rc",
            catalog_api.RateCardDetailView,
            {},
        ),
        (
            "catalog_addon_next",
            {"addon_id": "a"},
            "/api/v1/addons/a/next",
            catalog_api.AddonNextVersionView,
            {},
        ),
        ("catalog_console_plans", {}, "/console/plans/", None, {"kind": "plan"}),
        (
            "catalog_console_addon",
            {"key": "a"},
            "/console/addons/a/",
            versions.version_detail,
            {"kind": "addon"},
        ),
        (
            "catalog_console_plan_publish",
            {"key": "p", "version": 2},
            "/console/plans/p/v/2/publish/",
            versions.version_publish,
            {"kind": "plan"},
        ),
        (
            "catalog_console_rate_card_preview",
            {"key": "p", "version": 2, "phase_key": "ph", "card_key": "c"},
            "/console/plans/p/v/2/phases/ph/rate-cards/c/preview/",
            None,
            {},
        ),
        (
            "catalog_console_addon_rate_card_new",
            {"key": "a", "version": 1},
            "/console/addons/a/v/1/rate-cards/new/",
            None,
            {},
        ),
        (
            "billing_customer_detail",
            {"id_or_key": "c"},
            "/api/v1/customers/c",
            billing_api.CustomerDetailView,
            {},
        ),
        (
            "billing_entitlement_value_v1",
            {"customer": "c", "entitlement": "e"},
            "/api/v1/customers/c/entitlements/e/value",
            billing_api.CustomerEntitlementValueV1View,
            {},
        ),
        (
            "billing_grant_list",
            {"customer": "c", "entitlement": "e"},
            "/api/v2/customers/c/entitlements/e/grants",
            billing_api.CustomerEntitlementGrantsView,
            {},
        ),
        (
            "billing_subscription_unschedule_cancelation",
            {"subscription_id": "s"},
            "/api/v1/subscriptions/s/unschedule-cancelation",
            billing_api.SubscriptionUnscheduleCancelationView,
            {},
        ),
        (
            "invoicing_invoice_on_demand",
            {},
            "/api/v1/billing/invoices/invoice",
            invoicing_api.InvoiceOnDemandView,
            {},
        ),
        (
            "invoicing_credit_note_pdf",
            {"invoice_id": "i"},
            "/api/v1/billing/invoices/i/credit-note/pdf",
            invoicing_api.CreditNotePdfView,
            {},
        ),
        (
            "invoicing_console_invoice_mark_paid",
            {"invoice_id": "i"},
            "/console/invoices/i/mark_paid",
            None,
            {},
        ),
        (
            "invoicing_console_tax_rate_update",
            {"tax_rate_id": "t"},
            "/console/billing-settings/tax-rates/t",
            billing_settings.billing_settings_tax_rate,
            {},
        ),
        ("invoicing_console_billing_settings_stripe", {}, "/console/billing-settings/stripe", None, {}),
        ("analytics_simulation_new", {}, "/console/simulations/new", None, {}),
        ("analytics_simulation_detail", {"run_id": "r"}, "/console/simulations/r/", None, {}),
        ("portal_plan_cancel", {}, "/portal/plan/cancel/", portal_views.plan_cancel, {}),
        ("portal_api_tokens_invalidate", {}, "/api/v1/portal/tokens/invalidate", None, {}),
        ("portal_console_customer_link", {"customer_id": "c"}, "/console/customers/c/portal-link/", None, {}),
        (
            "lago_billable_metric",
            {"code": "m"},
            "/lago/api/v1/billable_metrics/m",
            lago_api.BillableMetricView,
            {},
        ),
        (
            "lago_invoice_finalize",
            {"invoice_id": "i"},
            "/lago/api/v1/invoices/i/finalize",
            lago_api.InvoiceFinalizeView,
            {},
        ),
        ("lago_events_batch", {}, "/lago/api/v1/events/batch", lago_api.EventsBatchView, {}),
    ],
)
def test_representative_routes_keep_their_paths_views_and_kwargs(name, kwargs, path, view, extra):
    assert reverse(name, kwargs=kwargs) == path
    match = resolve(path)
    assert match.url_name == name
    assert match.kwargs == {**kwargs, **extra}
    if view is not None:
        assert _view_of(match.func) is view or getattr(match.func, "__wrapped__", None) is view


def test_invoice_operations_are_routed_from_their_table():
    for op, view in invoice_ops.BY_URL.items():
        match = resolve(f"/console/invoices/i1/{op}")
        assert (match.url_name, match.func) == (f"invoicing_console_invoice_{op}", view)
