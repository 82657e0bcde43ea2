"""Routes owned by this app (full paths: /api/... and /console/...). config/urls.py includes it."""

from django.urls import path

from billing import api

urlpatterns: list = [
    path("api/v1/customers", api.CustomerListCreateView.as_view(), name="billing_customer_list"),
    path(
        "api/v1/customers/<str:id_or_key>", api.CustomerDetailView.as_view(), name="billing_customer_detail"
    ),
]
