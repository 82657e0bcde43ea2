import pytest
from django.core.exceptions import ImproperlyConfigured

from core.api_base import TenantAPIView


def test_overriding_get_queryset_fails_at_class_definition():
    with pytest.raises(ImproperlyConfigured, match="overrides get_queryset"):

        class Leaky(TenantAPIView):
            required_scope = "read"

            def get_queryset(self):
                return None


def test_a_view_without_scope_fails_at_class_definition():
    with pytest.raises(ImproperlyConfigured, match="declares no required_scope"):

        class Open(TenantAPIView):
            pass


def test_scope_queryset_is_the_supported_hook():
    class Fine(TenantAPIView):
        required_scope = "read"

        def scope_queryset(self, qs):
            return qs

    assert Fine.required_scope == "read"
