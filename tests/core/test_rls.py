"""The second wall: PostgreSQL row-level security on every tenant-owned table. Inside a tenant scope
(entered by the tenant-scoped base classes) a query that forgets its organization filter sees only
its own organization's rows and cannot write another's; outside (authentication, Celery tasks,
migrations) nothing is walled. Two tenants with data of their own throughout."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection, transaction
from django.db.utils import ProgrammingError
from django.http import HttpResponse
from django.test import RequestFactory
from django.utils.timezone import now
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory

from config.celery import app
from core import rls
from core.api_base import TenantAPIView
from core.console import console_view
from core.models import ApiKey, AuditLog, Membership, Role
from invoicing.models import StripeSettings
from invoicing.services import stripe_settings_set
from metering import services, store
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def _session() -> tuple[str, str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, current_setting('app.organization_id', true), "
            "current_setting('app.user_id', true)"
        )
        return cursor.fetchone()


@pytest.fixture
def login_user() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        return cursor.fetchone()[0]


def test_every_table_with_an_organization_is_walled():
    with connection.cursor() as cursor:
        tables = rls.tenant_tables(cursor)
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_policies p ON p.tablename = c.relname "
            "WHERE p.policyname = 'tenant_wall' AND c.relrowsecurity AND p.roles = '{meterline_tenant}'"
        )
        walled = sorted(row[0] for row in cursor.fetchall())
    assert len(tables) >= 40
    assert {"core_apikey", "core_membership", "metering_event", "invoicing_invoice"} <= set(tables)
    assert walled == tables


def test_a_forgotten_filter_sees_only_its_own_organization(tenant_a, tenant_b, login_user):
    stripe_settings_set(organization=tenant_a.org, secret_key="sk_test_aaaaaaaaaaaa")
    stripe_settings_set(organization=tenant_b.org, secret_key="sk_test_bbbbbbbbbbbb")
    assert ApiKey.objects.count() == 8 and StripeSettings.objects.count() == 2
    with rls.tenant_scope(tenant_a.org.id):
        assert _session() == ("meterline_tenant", tenant_a.org.id, "")
        assert set(ApiKey.objects.values_list("organization_id", flat=True)) == {tenant_a.org.id}
        assert ApiKey.objects.count() == 4
        assert [s.secret_key for s in StripeSettings.objects.all()] == ["sk_test_aaaaaaaaaaaa"]
        assert not AuditLog.objects.filter(organization=tenant_b.org).exists()
        with connection.cursor() as cursor:  # raw SQL is walled too
            cursor.execute("SELECT count(*) FROM core_apikey")
            assert cursor.fetchone() == (4,)
        # updates and deletes of the other tenant's rows touch nothing
        assert ApiKey.objects.filter(organization=tenant_b.org).update(name="hijacked") == 0
        assert ApiKey.objects.filter(organization=tenant_b.org).delete()[0] == 0
        # a write carrying the other organization's id is refused by the database
        with pytest.raises(ProgrammingError, match="row-level security"), transaction.atomic():
            AuditLog.objects.create(
                organization=tenant_b.org, actor_label="x", action="x", object_type="x", object_id="x"
            )
        with rls.unscoped():  # a declared bypass sees everything, then the scope comes back
            assert _session() == (login_user, "", "")
            assert ApiKey.objects.count() == 8
        assert ApiKey.objects.count() == 4
    assert _session() == (login_user, "", "")
    assert ApiKey.objects.count() == 8
    assert set(ApiKey.objects.filter(organization=tenant_b.org).values_list("name", flat=True)) == {
        "globex admin",
        "globex ingest",
        "globex read",
        "globex ingest_read",
    }


class ForgetfulView(TenantAPIView):
    """A view that forgets its organization filter, as a bug would."""

    required_scope = "read"

    def get(self, request):
        return Response(sorted(set(ApiKey.objects.values_list("organization_id", flat=True))))


class FailingView(TenantAPIView):
    required_scope = "read"

    def get(self, request):
        raise RuntimeError("boom")


def test_api_views_run_in_their_organizations_scope(tenant_a, tenant_b, login_user):
    factory = APIRequestFactory()
    for tenant in (tenant_a, tenant_b):
        request = factory.get("/x", HTTP_AUTHORIZATION=f"Bearer {tenant.keys['read']}")
        response = ForgetfulView.as_view()(request)
        assert (response.status_code, response.data) == (200, [tenant.org.id])
        assert _session() == (login_user, "", "")  # reset after the request
    request = factory.get("/x", HTTP_AUTHORIZATION=f"Bearer {tenant_a.keys['read']}")
    with pytest.raises(RuntimeError, match="boom"):
        FailingView.as_view()(request)
    assert _session() == (login_user, "", "")  # reset after an exception too


def test_console_pages_run_in_the_current_organizations_scope(tenant_a, tenant_b, login_user):
    MembershipFactory(organization=tenant_a.org, user=tenant_b.user, role=Role.VIEWER)

    @console_view()
    def page(request):
        orgs = sorted(set(ApiKey.objects.values_list("organization_id", flat=True)))
        own = sorted(Membership.objects.filter(user=request.user).values_list("organization_id", flat=True))
        everyone = Membership.objects.values_list("user_id", flat=True)
        return HttpResponse(repr((orgs, own, sorted(everyone), _session()[0])))

    request = RequestFactory().get("/console/x/")
    request.user = tenant_b.user
    request.membership = Membership.objects.get(organization=tenant_a.org, user=tenant_b.user)
    request.organization = tenant_a.org
    body = page(request).content.decode()
    # A's keys only; the user's own memberships in both organizations (the switcher); A's members plus
    # the user's own membership in B (no other member of B)
    expected = (
        [tenant_a.org.id],
        sorted([tenant_a.org.id, tenant_b.org.id]),
        sorted([tenant_a.user.pk, tenant_b.user.pk, tenant_b.user.pk]),
        "meterline_tenant",
    )
    assert body == repr(expected)
    assert _session() == (login_user, "", "")
    anonymous = RequestFactory().get("/console/x/")
    anonymous.user = AnonymousUser()
    assert page(anonymous).status_code == 302


@app.task(name="tests.core.count_keys_everywhere")
def count_keys_everywhere() -> int:
    return ApiKey.objects.count()


def test_celery_tasks_run_outside_the_scope_even_when_eager(tenant_a, tenant_b):
    with rls.tenant_scope(tenant_a.org.id):
        assert ApiKey.objects.count() == 4
        assert count_keys_everywhere.apply().get() == 8
        assert ApiKey.objects.count() == 4


def test_disabled_wall_changes_nothing(tenant_a, tenant_b, settings, login_user):
    settings.DATABASE_RLS = False
    with rls.tenant_scope(tenant_a.org.id):
        assert _session()[0] == login_user
        assert ApiKey.objects.count() == 8
    with rls.tenant_scope(tenant_a.org.id, deferred=True):  # the raw insert goes alone, as the login user
        store.inbox_append(organization_id=tenant_b.org.id, body=b"[]", event_count=0, received_at=now())
        assert _session()[0] == login_user
    assert _inbox_rows() == [tenant_b.org.id]


# --- deferred scopes: an ingest request sets its scope with its first statement -----------------------
@contextmanager
def wire_trace(path: Path) -> Iterator[list[str]]:
    """The protocol messages this connection exchanges in the block (libpq's trace), one per line."""
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    lines: list[str] = []
    with path.open("w") as out:
        pgconn.trace(out.fileno())
        pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS | psycopg.pq.Trace.REGRESS_MODE)
        try:
            yield lines
        finally:
            pgconn.untrace()
    lines.extend(path.read_text().splitlines())


def _statements(lines: list[str]) -> list[str]:
    return [line.split('"')[3] for line in lines if "\tParse\t" in line or "\tQuery\t" in line]


def test_a_single_event_request_enters_and_leaves_its_scope_in_its_one_round_trip(
    tenant_a, tenant_b, login_user, tmp_path, monkeypatch
):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tenant_a.keys['ingest']}")

    def post(i: int) -> int:
        body = {"id": f"e{i}", "source": "s", "specversion": "1.0", "type": "t", "subject": "c", "data": {}}
        return client.post("/api/v1/events", body, format="json").status_code

    assert post(1) == 204  # the key is looked up once, then cached
    monkeypatch.setattr(services._backlog, "ttl", 3600)  # the backlog read once, then not during the trace
    services._backlog.expire()
    services._backlog.get()
    with wire_trace(tmp_path / "trace") as lines:
        assert post(2) == 204
    statements = _statements(lines)
    assert len(statements) == 3, statements
    assert statements[0].startswith("SELECT set_config('role', 'meterline_tenant'")
    assert tenant_a.org.id in statements[0]
    assert statements[1].startswith("INSERT INTO metering_inboxbatch")
    assert statements[2].startswith("SELECT set_config('role', 'none'")
    assert sum("\tSync" in line for line in lines) == 1  # one pipeline: one round trip
    assert sum("ReadyForQuery" in line for line in lines) == 1
    assert _session() == (login_user, "", "")
    with connection.cursor() as cursor:
        cursor.execute("SELECT organization_id, count(*) FROM metering_inboxbatch GROUP BY 1")
        assert cursor.fetchall() == [(tenant_a.org.id, 2)]


def test_a_deferred_scope_sends_nothing_until_a_query_needs_it(tenant_a, tenant_b, login_user, tmp_path):
    # entering and leaving, and a declared bypass inside, need nothing
    with (
        wire_trace(tmp_path / "quiet") as quiet,
        rls.tenant_scope(tenant_a.org.id, deferred=True),
        rls.unscoped(),
    ):
        pass
    assert _statements(quiet) == []
    with rls.tenant_scope(tenant_a.org.id, deferred=True):
        assert ApiKey.objects.count() == 4  # the first query sets the scope
        assert _session() == ("meterline_tenant", tenant_a.org.id, "")
        with rls.unscoped():
            assert ApiKey.objects.count() == 8
        assert ApiKey.objects.count() == 4
        with rls.tenant_scope(tenant_b.org.id):  # an inner scope, then the outer again
            assert _session() == ("meterline_tenant", tenant_b.org.id, "")
        assert _session() == ("meterline_tenant", tenant_a.org.id, "")
    assert _session() == (login_user, "", "")


def _inbox_rows() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT organization_id FROM metering_inboxbatch")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_a_raw_statement_the_wall_refuses_leaves_the_connection_as_the_login_user(
    tenant_a, tenant_b, login_user
):
    body, count = b'[{"id": "x"}]', 1
    with rls.tenant_scope(tenant_a.org.id, deferred=True):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            store.inbox_append(
                organization_id=tenant_b.org.id, body=body, event_count=count, received_at=now()
            )
        assert _session() == ("meterline_tenant", tenant_a.org.id, "")  # a query after: scope set again
    assert _session() == (login_user, "", "")
    assert _inbox_rows() == []
    with rls.tenant_scope(tenant_a.org.id, deferred=True):
        store.inbox_append(organization_id=tenant_a.org.id, body=body, event_count=count, received_at=now())
    assert _inbox_rows() == [tenant_a.org.id]


@pytest.mark.django_db(transaction=True)
def test_the_first_raw_statement_of_a_request_replaces_a_dead_connection(tenant_a, tenant_b, login_user):
    connection.ensure_connection()
    connection.health_check_enabled, connection.health_check_done = True, False
    dead = connection.connection
    dead.close()  # as after a database restart: the persistent connection is gone
    with rls.tenant_scope(tenant_a.org.id, deferred=True):
        store.inbox_append(organization_id=tenant_a.org.id, body=b"[]", event_count=0, received_at=now())
    assert connection.connection is not dead and connection.health_check_done
    assert _inbox_rows() == [tenant_a.org.id]
    assert _session() == (login_user, "", "")
