from django.apps import AppConfig

from metering.hooks import add_ingest_listener  # imports no models


class LagoConfig(AppConfig):
    """A Lago-compatible API (`/lago/api/v1/`) over our metering, catalog, billing and invoicing."""

    name = "lago"

    def ready(self) -> None:
        # imported once the app registry is ready: these modules import models
        from invoicing.webhooks import register_envelope
        from lago import advance, webhooks
        from lago.mapping import SIGNATURE_ALGOS

        # charges paid in advance are billed once their events are stored
        add_ingest_listener(advance.ingest_listener)

        # endpoints with format="lago" (HMAC) or "lago_jwt" get Lago's envelope and signature
        for format in SIGNATURE_ALGOS:
            register_envelope(format, webhooks.render, accepts=webhooks.accepts)
