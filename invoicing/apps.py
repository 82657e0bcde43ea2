from django.apps import AppConfig


class InvoicingConfig(AppConfig):
    name = "invoicing"

    def ready(self) -> None:
        # wiring.py imports models, which exist only once the app registry is ready.
        from invoicing import wiring

        wiring.connect()
