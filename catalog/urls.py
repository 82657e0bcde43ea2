"""Routes owned by this app (full paths: /api/... and /console/...). config/urls.py includes it."""

from django.urls import path

from catalog import api
from catalog.views import features, plans, rate_cards
from catalog.views import versions as v
from catalog.views.common import by_method
from core.routing import actions, collection

P = "api/v1/plans/<str:plan_id>"
A = "api/v1/addons/<str:addon_id>"
C = "console/plans/<str:key>"
V = "console/plans/<str:key>/v/<int:version>"
AC = "console/addons/<str:key>"
AV = "console/addons/<str:key>/v/<int:version>"
PLAN = {"kind": "plan"}
ADDON = {"kind": "addon"}


def _versioned_document(doc: str, version: str, kind: dict[str, str], name: str) -> list:
    """The console pages every versioned document (plan or add-on) has, the kind passed to the view."""
    return [
        path(f"{doc}/", v.version_detail, kind, name=name),
        *actions(doc, name, slash=True, kwargs=kind, next=v.version_next),
        *actions(
            version,
            name,
            slash=True,
            kwargs=kind,
            settings=v.version_settings,
            publish=v.version_publish,
            archive=v.version_archive,
        ),
    ]


urlpatterns = [
    path("api/v1/prices/preview", api.PricePreviewView.as_view(), name="catalog_price_preview"),
    *collection(
        "api/v1/features",
        api.FeatureListCreateView,
        api.FeatureDetailView,
        key="feature_id",
        name="catalog_feature",
    ),
    *collection(
        "api/v1/plans", api.PlanListCreateView, api.PlanDetailView, key="plan_id", name="catalog_plan"
    ),
    *actions(
        P,
        "catalog_plan",
        publish=api.PlanPublishView,
        archive=api.PlanArchiveView,
        next=api.PlanNextVersionView,
    ),
    *collection(
        f"{P}/phases", api.PhaseListCreateView, api.PhaseDetailView, key="phase_key", name="catalog_phase"
    ),
    *collection(
        f"{P}/phases/<str:phase_key>/rate-cards",
        api.RateCardListCreateView,
        api.RateCardDetailView,
        key="rate_card_key",
        name="catalog_rate_card",
    ),
    *collection(
        "api/v1/addons", api.AddonListCreateView, api.AddonDetailView, key="addon_id", name="catalog_addon"
    ),
    *actions(
        A,
        "catalog_addon",
        publish=api.AddonPublishView,
        archive=api.AddonArchiveView,
        next=api.AddonNextVersionView,
    ),
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
    *_versioned_document(C, V, PLAN, "catalog_console_plan"),
    path(f"{C}/compare/", plans.plan_compare, name="catalog_console_plan_compare"),
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
    *_versioned_document(AC, AV, ADDON, "catalog_console_addon"),
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
