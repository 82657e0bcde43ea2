"""Portal token authentication for the portal API (`Authorization: Bearer mlp_...`).

TenantAPIView authenticates API keys; the portal API instead authenticates a portal token and resolves
the organization *from the token's signed claims and its row*, never from the URL or the body. Views
built on `PortalAPIView` get `self.organization` and `self.scope` (a `PortalScope`) and must force every
read to that scope.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request
from rest_framework.views import APIView

from core import rls
from core.models import Organization
from portal.models import PortalToken
from portal.selectors import PortalScope, portal_scope_for_token, portal_token_verify
from portal.tokens import TOKEN_PREFIX, PortalTokenInvalid


class PortalTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        parts = header.split(None, 1)
        if len(parts) != 2 or parts[0].lower() != self.keyword.lower():
            return None
        raw = parts[1].strip()
        if not raw.startswith(TOKEN_PREFIX):
            raise exceptions.AuthenticationFailed("Send a portal token as `Authorization: Bearer mlp_...`.")
        try:
            token = portal_token_verify(raw=raw)
        except PortalTokenInvalid as exc:
            raise exceptions.AuthenticationFailed(exc.reason) from None
        request._request.organization = token.organization
        return (None, token)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="portal"'


class HasPortalToken(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        if not isinstance(request.auth, PortalToken):
            raise exceptions.NotAuthenticated("Send a portal token as `Authorization: Bearer mlp_...`.")
        return True


class PortalAPIView(APIView):
    authentication_classes = [PortalTokenAuthentication]
    permission_classes = [HasPortalToken]

    organization: Organization
    scope: PortalScope

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        with ExitStack() as self._tenant_scope:
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        assert isinstance(request.auth, PortalToken)
        try:
            self.scope = portal_scope_for_token(token=request.auth)
        except PortalTokenInvalid as exc:
            raise exceptions.AuthenticationFailed(exc.reason) from None
        self.organization = request.auth.organization
        self._tenant_scope.enter_context(rls.tenant_scope(self.organization.id))  # core/rls.py
