"""Routes owned by this app (full paths: /api/... and /console/...). config/urls.py includes it."""

from catalog import api
from catalog.views import features, plans, rate_cards
from catalog.views import versions as v
from catalog.views.common import by_method
from core.routing import Routes, View

API = Routes("api/v1", "catalog")
FEATURES = API.under("/features", "catalog_feature")
PLANS = API.under("/plans", "catalog_plan")
PLAN = PLANS.item("plan_id")
PHASES = PLAN.under("/phases", "catalog_phase")
RATE_CARDS = PHASES.item("phase_key").under("/rate-cards", "catalog_rate_card")
ADDONS = API.under("/addons", "catalog_addon")
ADDON = ADDONS.item("addon_id")

CONSOLE = Routes("console", "catalog_console")
VERSION = "/v/<int:version>"  # one version of a plan's or an add-on's page
PLAN_PAGE = CONSOLE.under("/plans/<str:key>", "catalog_console_plan")
PLAN_VERSION = PLAN_PAGE.under(VERSION)
PHASE_PAGES = PLAN_VERSION.under("/phases", "catalog_console_phase")
PHASE_PAGE = PHASE_PAGES.item("phase_key")
ADDON_PAGE = CONSOLE.under("/addons/<str:key>", "catalog_console_addon")
ADDON_VERSION = ADDON_PAGE.under(VERSION)
PLAN_KIND = {"kind": "plan"}
ADDON_KIND = {"kind": "addon"}


def _versioned_document(page: Routes, kind: dict[str, str]) -> list:
    """The console pages every versioned document (plan or add-on) has, the kind passed to the view."""
    return [
        page.path("/", v.version_detail, "", kind),
        *page.actions(slash=True, kwargs=kind, next=v.version_next),
        *page.under(VERSION).actions(
            slash=True,
            kwargs=kind,
            settings=v.version_settings,
            publish=v.version_publish,
            archive=v.version_archive,
        ),
    ]


def _rate_card_pages(cards: Routes, *, edit: View, remove: View, preview: View) -> list:
    """A version's rate-card pages: `…/new/` and `…/<card_key>/` edit, then its remove and preview."""
    card = cards.item("card_key")
    return [
        cards.path("/new/", edit, "new"),
        card.path("/", edit, "edit"),
        *card.actions(slash=True, remove=remove, preview=preview),
    ]


urlpatterns = [
    API.path("/prices/preview", api.PricePreviewView, "price_preview"),
    *FEATURES.collection(api.FeatureListCreateView, api.FeatureDetailView, key="feature_id"),
    *PLANS.collection(api.PlanListCreateView, api.PlanDetailView, key="plan_id"),
    *PLAN.actions(publish=api.PlanPublishView, archive=api.PlanArchiveView, next=api.PlanNextVersionView),
    *PHASES.collection(api.PhaseListCreateView, api.PhaseDetailView, key="phase_key"),
    *RATE_CARDS.collection(api.RateCardListCreateView, api.RateCardDetailView, key="rate_card_key"),
    *ADDONS.collection(api.AddonListCreateView, api.AddonDetailView, key="addon_id"),
    *ADDON.actions(publish=api.AddonPublishView, archive=api.AddonArchiveView, next=api.AddonNextVersionView),
    # console: the no-code pricing editor (one view per operation; the kind comes with the route)
    CONSOLE.path(
        "/features/", by_method(get=features.feature_list, post=features.feature_create), "features"
    ),
    CONSOLE.path("/features/archive/", features.feature_archive, "feature_archive"),
    CONSOLE.path("/plans/", by_method(get=v.version_list, post=v.version_create), "plans", PLAN_KIND),
    CONSOLE.path("/plans/-/preview/", rate_cards.preview_form, "preview"),
    CONSOLE.path("/plans/-/rate-card-fields/", rate_cards.rate_card_fields, "rate_card_fields"),
    *_versioned_document(PLAN_PAGE, PLAN_KIND),
    PLAN_PAGE.path("/compare/", plans.plan_compare, "compare"),
    PLAN_VERSION.path("/delete/", v.version_delete_draft, "delete", PLAN_KIND),
    PHASE_PAGES.path("/", plans.phase_add, "add"),
    PHASE_PAGE.path("/remove/", plans.phase_remove, "remove"),
    *_rate_card_pages(
        PHASE_PAGE.under("/rate-cards", "catalog_console_rate_card"),
        edit=rate_cards.rate_card_edit,
        remove=rate_cards.rate_card_remove,
        preview=rate_cards.preview_card,
    ),
    PLAN_VERSION.path("/addons/", plans.plan_addon_link, "addon_link"),
    PLAN_VERSION.path("/addons/<str:addon_key>/remove/", plans.plan_addon_unlink, "addon_unlink"),
    CONSOLE.path("/addons/", by_method(get=v.version_list, post=v.version_create), "addons", ADDON_KIND),
    *_versioned_document(ADDON_PAGE, ADDON_KIND),
    *_rate_card_pages(
        ADDON_VERSION.under("/rate-cards", "catalog_console_addon_rate_card"),
        edit=rate_cards.addon_rate_card_edit,
        remove=rate_cards.addon_rate_card_remove,
        preview=rate_cards.addon_card_preview,
    ),
]
