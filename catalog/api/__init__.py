"""Catalog API: price preview (`preview.py`), features (`features.py`), plans and add-ons through one set of
versioned-document views (`versions.py`), a draft plan's phases and rate cards (`phases.py`); what the wire
carries in `serializers.py`."""

from catalog.api.features import FeatureDetailView, FeatureListCreateView
from catalog.api.phases import (
    PhaseDetailView,
    PhaseListCreateView,
    RateCardDetailView,
    RateCardListCreateView,
)
from catalog.api.preview import PricePreviewView
from catalog.api.serializers import EntitlementTemplateSerializer, PriceField
from catalog.api.versions import (
    AddonArchiveView,
    AddonDetailView,
    AddonListCreateView,
    AddonNextVersionView,
    AddonPublishView,
    PlanArchiveView,
    PlanDetailView,
    PlanListCreateView,
    PlanNextVersionView,
    PlanPublishView,
)

__all__ = [
    "AddonArchiveView",
    "AddonDetailView",
    "AddonListCreateView",
    "AddonNextVersionView",
    "AddonPublishView",
    "EntitlementTemplateSerializer",
    "FeatureDetailView",
    "FeatureListCreateView",
    "PhaseDetailView",
    "PhaseListCreateView",
    "PlanArchiveView",
    "PlanDetailView",
    "PlanListCreateView",
    "PlanNextVersionView",
    "PlanPublishView",
    "PriceField",
    "PricePreviewView",
    "RateCardDetailView",
    "RateCardListCreateView",
]
