"""Metering API, wire-compatible with OpenMeter: ingest (`ingest.py`), meters (`meters.py`), meter queries
(`query.py`)."""

from metering.api.ingest import EventsV3View, EventsView, KongEventsView
from metering.api.meters import MeterDetailView, MeterListView
from metering.api.query import (
    METER_QUERY_PARAMS,
    MeterGroupValuesView,
    MeterQueryResultOutput,
    MeterQueryView,
    MeterSubjectsView,
)

__all__ = [
    "METER_QUERY_PARAMS",
    "EventsV3View",
    "EventsView",
    "KongEventsView",
    "MeterDetailView",
    "MeterGroupValuesView",
    "MeterListView",
    "MeterQueryResultOutput",
    "MeterQueryView",
    "MeterSubjectsView",
]
