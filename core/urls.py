from django.contrib.auth import views as auth_views
from django.urls import path

from core import api, views
from core.routing import Routes

API = Routes("api/v1", "api")
CONSOLE = Routes("console", "console")
SETTINGS = CONSOLE.under("/settings")

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    API.path("/organization", api.OrganizationView, "organization"),
    API.path("/api-keys", api.ApiKeyListCreateView, "keys"),
    API.path("/api-keys/<str:key_id>", api.ApiKeyDetailView, "key_detail"),
    API.path("/audit-log", api.AuditLogView, "audit_log"),
    path("console/login/", views.LoginView.as_view(), name="login"),
    path("console/logout/", auth_views.LogoutView.as_view(), name="logout"),
    CONSOLE.path("/", views.home, "home"),
    CONSOLE.path("/jobs/retry/", views.job_failures_retry, "job_failures_retry"),
    CONSOLE.path("/switch/", views.switch_organization, "switch_org"),
    SETTINGS.path("/api-keys/", views.api_keys, "api_keys"),
    SETTINGS.path("/api-keys/<str:key_id>/revoke/", views.api_key_revoke, "api_key_revoke"),
    SETTINGS.path("/members/", views.members, "members"),
    CONSOLE.path("/invitations/<str:token>/", views.invitation, "invitation"),
    SETTINGS.path("/organization/", views.organization_settings, "org_settings"),
    SETTINGS.path("/audit/", views.audit, "audit"),
]
