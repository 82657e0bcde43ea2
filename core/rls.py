"""The second wall: PostgreSQL row-level security on every tenant-owned table.

Every table with an `organization_id` column gets a policy `tenant_wall`: a row is visible and
writable only when its `organization_id` equals the session setting `app.organization_id`
(`core_membership` also shows the current user's own memberships, which the organization switcher
lists). The policies bind the role `TENANT_ROLE` (no login, no BYPASSRLS, not an owner); superusers
and table owners are not bound, so the database user the app logs in with (the embedded server's
`postgres`, a CI's `root`, a deployment's owner) keeps migrating and running background jobs as it is.

`tenant_scope(organization_id)` switches the connection to `TENANT_ROLE` with the organization set
and back at the end. The tenant-scoped base classes enter it once the organization is known:
`core.api.TenantAPIView` (API), `core.console.console_view` (console pages) and the portal's views.
Inside a scope a query that forgets its organization filter sees no other tenant's rows, and writes
with another tenant's `organization_id` fail.

Outside scopes nothing is walled: authentication (an API key or portal token is looked up before the
organization is known), the console middleware, management commands and migrations run as the login
user and may read across tenants. Celery tasks start outside a scope (`config.celery.UnscopedTask`,
also when executed eagerly inside a request, so a task never inherits a request's wall). A task that
works for one organization (one entitlement's snapshot, one invoice's e-mail or Stripe push) enters
that organization's scope with `@scoped_task(...)`: it handles one tenant's data exactly as a request
does, so it gets the same second wall, at the cost of at most one indexed lookup of the object's
organization. Tasks that enumerate or fan out over all tenants (beat entries, invoice runs, rollups,
the Stripe event processor that finds the organization from the event) stay unscoped; code inside a
scope that must work across tenants says so with `unscoped()`.

The role and session settings are set at session level (`set_config(..., false)`) and reset when the
scope ends, not with SET LOCAL: views run in autocommit (no transaction around a request), and
wrapping every request in one would move every `on_commit` hook and lock to the end of the request.
The two statements go through the raw driver connection, so they are not counted as queries.

An ingest request's scope is deferred (`tenant_scope(..., deferred=True)`, chosen by the view's
`tenant_scope_deferred`): nothing is sent when it is entered; the first query through Django's cursor sets
it (an execute wrapper), and a request that makes none (or only `unscoped()` ones) sends neither
statement. A statement sent on the driver connection past Django's cursor (the inbox insert with its
binary body) goes through `execute_raw`, which sends it between the scope's two statements in one
pipeline: one round trip for a single-event request instead of three. Other views set their scope on
entry: a scope first set inside a transaction would be undone by its rollback. Whichever way, what is set
on the connection (`_wire`) is tracked per connection, so no statement is sent to set what is already
set, and a connection opened anew starts as the login user.

`DATABASE_RLS=false` disables both the policies and the scopes (for a database user that may not
create roles).
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import psycopg
from django.conf import settings
from django.db import connection, connections

log = logging.getLogger(__name__)

TENANT_ROLE = "meterline_tenant"
POLICY = "tenant_wall"
_ORG = "current_setting('app.organization_id', true)"
_USER = "nullif(current_setting('app.user_id', true), '')::integer"
# Tables whose rows a scope may see beyond its organization (the switcher lists the user's memberships).
_EXTRA = {"core_membership": f"OR user_id = {_USER}"}

_state = threading.local()
P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
Scope = tuple[str, int | None]  # (organization id, user id)


def enabled() -> bool:
    return bool(getattr(settings, "DATABASE_RLS", False))


def _stack() -> list[tuple[Scope | None, bool]]:
    """The thread's scopes, innermost last: (scope, deferred); a None scope is an `unscoped()` block."""
    stack = getattr(_state, "stack", None)
    if stack is None:
        stack = _state.stack = []
    return stack


def _wanted() -> tuple[Scope | None, bool]:
    stack = _stack()
    return stack[-1] if stack else (None, False)


def _wire() -> Scope | None:
    """The scope set on this thread's database connection (None: the login user's own session). Kept with
    the driver connection it was set on: a connection opened anew has none."""
    wire = getattr(_state, "wire", None)
    if wire is None or wire[0] is not connection.connection:
        return None
    return wire[1]


def _statement(scope: Scope | None) -> tuple[str, list[str]]:
    if scope is None:
        return (
            "SELECT set_config('role', 'none', false), set_config('app.organization_id', '', false), "
            "set_config('app.user_id', '', false)",
            [],
        )
    organization_id, user_id = scope
    return (
        "SELECT set_config('role', %s, false), set_config('app.organization_id', %s, false), "
        "set_config('app.user_id', %s, false)",
        [TENANT_ROLE, organization_id, "" if user_id is None else str(user_id)],
    )


def _health_check_due() -> bool:
    return connection.connection is not None and (
        getattr(connection, "health_check_enabled", False)
        and not getattr(connection, "health_check_done", True)
    )


def _apply(scope: Scope | None) -> None:
    sql, params = _statement(scope)
    if _health_check_due():
        # The request's first statement on a persistent connection doubles as the health check Django
        # runs before a request's first query (SELECT 1, CONN_HEALTH_CHECKS), so entering the scope costs
        # no round trip of its own; a connection that died (a database restart) is replaced below.
        try:
            connection.connection.execute(sql, params)
        except psycopg.Error:
            connection.close()
        else:
            connection.health_check_done = True  # type: ignore[attr-defined]
            _state.wire = (connection.connection, scope)
            return
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.connection.execute(sql, params)
    _state.wire = (connection.connection, scope)


def _sync(*, lazy: bool = False) -> None:
    """Give the connection the innermost scope's role and settings, unless it has them. `lazy`: a deferred
    scope the connection does not have yet stays deferred while the connection is the login user's."""
    wanted, deferred = _wanted()
    have = _wire()
    if have == wanted or (lazy and deferred and have is None):
        return
    _apply(wanted)


def _restore() -> None:
    try:
        _sync(lazy=True)
    except Exception:
        # The connection cannot run the reset (a broken transaction, a lost server): its session state
        # must not outlive this request, so drop the connection; the next query opens a fresh one.
        log.warning("could not reset the tenant scope; closing the database connection", exc_info=True)
        connection.close()


def _sync_before(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
    """Django execute wrapper of a deferred scope: the query runs with the innermost scope set."""
    _sync()
    return execute(sql, params, many, context)


@contextmanager
def tenant_scope(
    organization_id: str, *, user_id: int | None = None, deferred: bool = False
) -> Iterator[None]:
    """Run the block as `TENANT_ROLE` with `app.organization_id` set (nested scopes restore the outer).
    `deferred`: set it on the connection only when the block's first query needs it (see the module's
    docstring); the block must then reach the database through Django's cursor or `execute_raw`."""
    if not enabled():
        yield
        return
    stack = _stack()
    stack.append(((organization_id, user_id), deferred))
    try:
        if deferred:
            with connection.execute_wrapper(_sync_before):
                yield
        else:
            _sync()
            yield
    finally:
        stack.pop()
        _restore()


@contextmanager
def unscoped() -> Iterator[None]:
    """Leave the tenant scope for a block that legitimately works across tenants (a declared bypass)."""
    stack = _stack()
    if not enabled() or not stack or stack[-1][0] is None:
        yield
        return
    stack.append((None, False))
    try:
        _sync()
        yield
    finally:
        stack.pop()
        _restore()


def execute_raw(run: Callable[[psycopg.Connection], T]) -> T:
    """`run(driver_connection)` for statements sent past Django's cursor (so past a deferred scope's
    wrapper), inside the innermost scope. When the connection does not have that scope yet, what `run`
    sends goes in one pipeline between the statement that sets the scope and the one that sets back what
    the connection had: one round trip, in one implicit transaction (should a statement fail, the settings
    are rolled back with it), and the scope stays deferred. `run` must send its statements and read their
    results after they are sent (a cursor's rows are there once the pipeline ends).

    The first statement of a request on a persistent connection doubles as Django's health check (as
    `_apply`): when it fails to reach the server, the connection is replaced and `run` called once more."""
    connection.ensure_connection()
    wanted, _ = _wanted() if enabled() else (None, False)
    have = _wire() if enabled() else None
    check_due = _health_check_due()
    try:
        result = _run_between(run, have, wanted)
    except psycopg.OperationalError:
        if not check_due:
            raise
        connection.close()
        connection.ensure_connection()
        result = _run_between(run, None, wanted)
    if check_due:
        connection.health_check_done = True  # type: ignore[attr-defined]
    return result


def _run_between(run: Callable[[psycopg.Connection], T], have: Scope | None, wanted: Scope | None) -> T:
    raw = connection.connection
    if have == wanted:
        return run(raw)
    with raw.cursor() as settings_cursor, raw.pipeline():
        settings_cursor.execute(*_statement(wanted))
        result = run(raw)
        settings_cursor.execute(*_statement(have))
    return result


def scoped_task(
    organization: str | Callable[..., str | None] = "organization_id",
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Run a task that works for one organization inside that organization's tenant scope.

    `organization` names the task argument that holds the organization id, or is a function called
    with the task's arguments by name (e.g. `invoice_id=...`) that returns it (one indexed lookup,
    made unscoped). When it returns None (the object is gone) the body runs unscoped, as it did before,
    and handles the missing object itself. Put it under `@shared_task`: `UnscopedTask` leaves any
    request's scope first, then this enters the task's own."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(func)

        @functools.wraps(func)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            arguments: dict[str, Any] = signature.bind(*args, **kwargs).arguments
            if isinstance(organization, str):
                organization_id = arguments[organization]
            else:
                names = inspect.signature(organization).parameters
                organization_id = organization(**{k: v for k, v in arguments.items() if k in names})
            if not organization_id:
                return func(*args, **kwargs)
            with tenant_scope(str(organization_id)):
                return func(*args, **kwargs)

        return run

    return decorate


def current_organization_id() -> str | None:
    scope, _ = _wanted()
    return scope[0] if scope is not None else None


# --- installation (post_migrate) ------------------------------------------------------------------
def tenant_tables(cursor) -> list[str]:
    cursor.execute(
        "SELECT c.table_name FROM information_schema.columns c "
        "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
        "WHERE c.table_schema = current_schema() AND c.column_name = 'organization_id' "
        "AND t.table_type = 'BASE TABLE' ORDER BY c.table_name"
    )
    return [row[0] for row in cursor.fetchall()]


def install(using_connection=None) -> list[str]:
    """Create the role, grant it the app's tables, and (re)create the policy on every tenant table.
    Idempotent; runs after every `migrate`, so a table added later is walled too."""
    conn = using_connection or connection
    role = conn.ops.quote_name(TENANT_ROLE)
    with conn.cursor() as cursor:
        tables = tenant_tables(cursor)
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_policies p ON p.tablename = c.relname "
            "AND p.schemaname = current_schema() WHERE p.policyname = %s AND c.relrowsecurity",
            [POLICY],
        )
        walled = {row[0] for row in cursor.fetchall()}
        missing = [t for t in tables if t not in walled]
        if not missing:
            return tables  # nothing new since the last migrate (flush runs this after every test too)
        cursor.execute(
            "DO $$ BEGIN "
            f"CREATE ROLE {role} NOLOGIN NOSUPERUSER NOBYPASSRLS; "
            "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        )
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if not cursor.fetchone()[0]:
            cursor.execute(f"GRANT {role} TO CURRENT_USER")  # SET ROLE needs membership
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
        cursor.execute(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}")
        cursor.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}"
        )
        cursor.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {role}"
        )
        for table in missing:
            quoted = conn.ops.quote_name(table)
            rule = f"(organization_id = {_ORG} {_EXTRA.get(table, '')})"
            cursor.execute(f"ALTER TABLE {quoted} ENABLE ROW LEVEL SECURITY")
            cursor.execute(f"DROP POLICY IF EXISTS {POLICY} ON {quoted}")
            cursor.execute(
                f"CREATE POLICY {POLICY} ON {quoted} TO {role} USING {rule} "
                f"WITH CHECK (organization_id = {_ORG})"
            )
    return tables


def uninstall(using_connection=None) -> None:
    conn = using_connection or connection
    with conn.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_policies WHERE policyname = %s", [POLICY])
        for (table,) in cursor.fetchall():
            quoted = conn.ops.quote_name(table)
            cursor.execute(f"DROP POLICY IF EXISTS {POLICY} ON {quoted}")
            cursor.execute(f"ALTER TABLE {quoted} DISABLE ROW LEVEL SECURITY")


def post_migrate(sender, using="default", **kwargs) -> None:
    conn = connections[using]
    if conn.vendor != "postgresql":
        return
    if enabled():
        install(conn)
    else:
        uninstall(conn)
