"""Routes owned by this app (full paths: /api/... and /console/...). config/urls.py includes it."""

from django.urls import path

from catalog import api
from catalog.views import features, plans, rate_cards
from catalog.views import versions as v
from catalog.views.common import by_method

P = "api/v1/plans/<str:plan_id>"
A = "api/v1/addons/<str:addon_id>"
C = "console/plans/<str:key>"
V = "console/plans/<str:key>/v/<int:version>"
AC = "console/addons/<str:key>"
AV = "console/addons/<str:key>/v/<int:version>"
PLAN = {"kind": "plan"}
ADDON = {"kind": "addon"}

urlpatterns = [
    path("api/v1/prices/preview", api.PricePreviewView.as_view(), name="catalog_price_preview"),
    path("api/v1/features", api.FeatureListCreateView.as_view(), name="catalog_feature_list"),
    path("api/v1/features/<str:feature_id>", api.FeatureDetailView.as_view(), name="catalog_feature_detail"),
    path("api/v1/plans", api.PlanListCreateView.as_view(), name="catalog_plan_list"),
    path(P, api.PlanDetailView.as_view(), name="catalog_plan_detail"),
    path(f"{P}/publish", api.PlanPublishView.as_view(), name="catalog_plan_publish"),
    path(f"{P}/archive", api.PlanArchiveView.as_view(), name="catalog_plan_archive"),
    path(f"{P}/next", api.PlanNextVersionView.as_view(), name="catalog_plan_next"),
    path(f"{P}/phases", api.PhaseListCreateView.as_view(), name="catalog_phase_list"),
    path(f"{P}/phases/<str:phase_key>", api.PhaseDetailView.as_view(), name="catalog_phase_detail"),
    path(
        f"{P}/phases/<str:phase_key>/rate-cards",
        api.RateCardListCreateView.as_view(),
        name="catalog_rate_card_list",
    ),
    path(
        f"{P}/phases/<str:phase_key>/rate-cards/<str:rate_card_key>",
        api.RateCardDetailView.as_view(),
        name="catalog_rate_card_detail",
    ),
    path("api/v1/addons", api.AddonListCreateView.as_view(), name="catalog_addon_list"),
    path(A, api.AddonDetailView.as_view(), name="catalog_addon_detail"),
    path(f"{A}/publish", api.AddonPublishView.as_view(), name="catalog_addon_publish"),
    path(f"{A}/archive", api.AddonArchiveView.as_view(), name="catalog_addon_archive"),
    path(f"{A}/next", api.AddonNextVersionView.as_view(), name="catalog_addon_next"),
    # console: the no-code pricing editor (one view per operation; the kind comes with the route)
    path(
        "console/features/",
        by_method(get=features.feature_list, post=features.feature_create),
        name="catalog_console_features",
    ),
    path("console/features/archive/", features.feature_archive, name="catalog_console_feature_archive"),
    path(
        "console/plans/",
        by_method(get=v.version_list, post=v.version_create),
        PLAN,
        name="catalog_console_plans",
    ),
    path("console/plans/-/preview/", rate_cards.preview_form, name="catalog_console_preview"),
    path(
        "console/plans/-/rate-card-fields/",
        rate_cards.rate_card_fields,
        name="catalog_console_rate_card_fields",
    ),
    path(f"{C}/", v.version_detail, PLAN, name="catalog_console_plan"),
    path(f"{C}/next/", v.version_next, PLAN, name="catalog_console_plan_next"),
    path(f"{C}/compare/", plans.plan_compare, name="catalog_console_plan_compare"),
    path(f"{V}/settings/", v.version_settings, PLAN, name="catalog_console_plan_settings"),
    path(f"{V}/publish/", v.version_publish, PLAN, name="catalog_console_plan_publish"),
    path(f"{V}/archive/", v.version_archive, PLAN, name="catalog_console_plan_archive"),
    path(f"{V}/delete/", v.version_delete_draft, PLAN, name="catalog_console_plan_delete"),
    path(f"{V}/phases/", plans.phase_add, name="catalog_console_phase_add"),
    path(f"{V}/phases/<str:phase_key>/remove/", plans.phase_remove, name="catalog_console_phase_remove"),
    path(
        f"{V}/phases/<str:phase_key>/rate-cards/new/",
        rate_cards.rate_card_edit,
        name="catalog_console_rate_card_new",
    ),
    path(
        f"{V}/phases/<str:phase_key>/rate-cards/<str:card_key>/",
        rate_cards.rate_card_edit,
        name="catalog_console_rate_card_edit",
    ),
    path(
        f"{V}/phases/<str:phase_key>/rate-cards/<str:card_key>/remove/",
        rate_cards.rate_card_remove,
        name="catalog_console_rate_card_remove",
    ),
    path(
        f"{V}/phases/<str:phase_key>/rate-cards/<str:card_key>/preview/",
        rate_cards.preview_card,
        name="catalog_console_rate_card_preview",
    ),
    path(f"{V}/addons/", plans.plan_addon_link, name="catalog_console_plan_addon_link"),
    path(
        f"{V}/addons/<str:addon_key>/remove/",
        plans.plan_addon_unlink,
        name="catalog_console_plan_addon_unlink",
    ),
    path(
        "console/addons/",
        by_method(get=v.version_list, post=v.version_create),
        ADDON,
        name="catalog_console_addons",
    ),
    path(f"{AC}/", v.version_detail, ADDON, name="catalog_console_addon"),
    path(f"{AC}/next/", v.version_next, ADDON, name="catalog_console_addon_next"),
    path(f"{AV}/settings/", v.version_settings, ADDON, name="catalog_console_addon_settings"),
    path(f"{AV}/publish/", v.version_publish, ADDON, name="catalog_console_addon_publish"),
    path(f"{AV}/archive/", v.version_archive, ADDON, name="catalog_console_addon_archive"),
    path(
        f"{AV}/rate-cards/new/", rate_cards.addon_rate_card_edit, name="catalog_console_addon_rate_card_new"
    ),
    path(
        f"{AV}/rate-cards/<str:card_key>/",
        rate_cards.addon_rate_card_edit,
        name="catalog_console_addon_rate_card_edit",
    ),
    path(
        f"{AV}/rate-cards/<str:card_key>/remove/",
        rate_cards.addon_rate_card_remove,
        name="catalog_console_addon_rate_card_remove",
    ),
    path(
        f"{AV}/rate-cards/<str:card_key>/preview/",
        rate_cards.addon_card_preview,
        name="catalog_console_addon_rate_card_preview",
    ),
]
