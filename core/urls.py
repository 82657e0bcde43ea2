from django.contrib.auth import views as auth_views
from django.urls import path

from core import api, views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("api/v1/organization", api.OrganizationView.as_view(), name="api_organization"),
    path("api/v1/api-keys", api.ApiKeyListCreateView.as_view(), name="api_keys"),
    path("api/v1/api-keys/<str:key_id>", api.ApiKeyDetailView.as_view(), name="api_key_detail"),
    path("api/v1/audit-log", api.AuditLogView.as_view(), name="api_audit_log"),
    path("console/login/", views.LoginView.as_view(), name="login"),
    path("console/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("console/", views.home, name="console_home"),
    path("console/jobs/retry/", views.job_failures_retry, name="console_job_failures_retry"),
    path("console/switch/", views.switch_organization, name="console_switch_org"),
    path("console/settings/api-keys/", views.api_keys, name="console_api_keys"),
    path(
        "console/settings/api-keys/<str:key_id>/revoke/", views.api_key_revoke, name="console_api_key_revoke"
    ),
    path("console/settings/members/", views.members, name="console_members"),
    path("console/invitations/<str:token>/", views.invitation, name="console_invitation"),
    path("console/settings/organization/", views.organization_settings, name="console_org_settings"),
    path("console/settings/audit/", views.audit, name="console_audit"),
]
