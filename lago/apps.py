from django.apps import AppConfig


class LagoConfig(AppConfig):
    """A Lago-compatible API (`/lago/api/v1/`) over our metering, catalog, billing and invoicing."""

    name = "lago"

    def ready(self) -> None:
        from invoicing.webhooks import register_envelope
        from lago import webhooks
        from lago.mapping import FORMAT

        # endpoints with format="lago" get Lago's envelope and signature
        register_envelope(FORMAT, webhooks.render, accepts=webhooks.accepts)
