"""What the Lago adapter plugs into metering and invoicing, connected once the app registry is ready
(LagoConfig.ready)."""

from __future__ import annotations

from invoicing.webhooks import register_envelope
from lago import advance, webhooks
from lago.mapping import SIGNATURE_ALGOS
from metering.hooks import add_ingest_listener


def connect() -> None:
    # charges paid in advance are billed once their events are stored
    add_ingest_listener(advance.ingest_listener)

    # endpoints with format="lago" (HMAC) or "lago_jwt" get Lago's envelope and signature
    for format in SIGNATURE_ALGOS:
        register_envelope(format, webhooks.render, accepts=webhooks.accepts)
