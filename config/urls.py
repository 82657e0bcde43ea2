from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("", RedirectView.as_view(url="/console/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("core.urls")),
    path("", include("metering.urls")),
    path("", include("catalog.urls")),
    path("", include("billing.urls")),
    path("", include("invoicing.urls")),
    path("", include("portal.urls")),
    path("", include("analytics.urls")),
    path("", include("lago.urls")),
]

if settings.SERVE_STATIC:
    # Static files straight from the app directories (no collectstatic step); put a proxy in
    # front and set SERVE_STATIC=false when serving at scale.
    from django.contrib.staticfiles.views import serve as serve_static
    from django.urls import re_path

    urlpatterns += [re_path(r"^static/(?P<path>.*)$", serve_static, {"insecure": True})]

handler404 = "core.handlers.not_found"
handler500 = "core.handlers.server_error"
