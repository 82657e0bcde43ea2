"""Routes owned by this app (full paths: /api/... and /console/...). config/urls.py includes it."""

from django.urls import path

from catalog import api

P = "api/v1/plans/<str:plan_id>"
A = "api/v1/addons/<str:addon_id>"

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
]
