"""Shared fixtures: two tenants (A and B) each with a user and keys; a real headless Chromium.

Every test module that reads data uses both tenants and asserts B's data never shows up for A
(and the other way round).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field

import pytest
from django.test import override_settings
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient

from billing import tasks as billing_tasks
from config.celery import app as celery_app
from core import auth
from core.background import Refreshed
from core.models import Organization, Role
from tests.factories import PASSWORD, ApiKeyFactory, MembershipFactory, OrganizationFactory, UserFactory

# Database-backed property tests: no per-example deadline (a shared 2-core CI machine is noisy);
# HYPOTHESIS_PROFILE=thorough runs more examples.
hypothesis_settings.register_profile(
    "default",
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
hypothesis_settings.register_profile(
    "thorough", parent=hypothesis_settings.get_profile("default"), max_examples=500
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`make test`), modules that start real processes (tests/faults, runstack) come
    first: they spend minutes waiting on their stacks, which the other worker fills with the rest of the
    suite instead of leaving them for the end of the run. Modules keep their order otherwise."""
    if not hasattr(config, "workerinput"):
        return
    slow = {item.path for item in items if item.get_closest_marker("processes")}
    items.sort(key=lambda item: item.path not in slow)  # stable: tests keep their order inside a module


@dataclass
class Tenant:
    org: Organization
    user: object
    keys: dict[str, str] = field(default_factory=dict)  # scope label -> secret

    def client(self, scope: str = "admin") -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.keys[scope]}")
        return client


def make_tenant(slug: str, *, currency: str = "USD") -> Tenant:
    """An organization, its owner (`<slug>-owner`, password PASSWORD) and one API key per scope label."""
    org = OrganizationFactory(slug=slug, name=f"{slug.title()} Inc", currency=currency)
    user = UserFactory(username=f"{slug}-owner", email=f"owner@{slug}.test")
    MembershipFactory(organization=org, user=user, role=Role.OWNER)
    tenant = Tenant(org=org, user=user)
    for label, scopes in {
        "admin": ["admin"],
        "ingest": ["ingest"],
        "read": ["read"],
        "ingest_read": ["ingest", "read"],
    }.items():
        tenant.keys[label] = ApiKeyFactory(organization=org, name=f"{slug} {label}", scopes=scopes).secret
    return tenant


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hasher():
    """Passwords hashed with a cheap (salted MD5) hasher in the test process, as Django's testing docs
    advise: the production PBKDF2 (1,000,000 iterations) costs about half a second of CPU per hash, and
    every `tenant_a`/`tenant_b` creates a user and most console tests log in. What tests assert of
    passwords (stored hashed, checked on login, wrong ones refused) holds for any hasher; processes the
    tests start (runstack, gunicorn) keep the production hashers."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(autouse=True)
def _celery_eager():
    """Tasks run inline in tests: nothing is sent to a real broker unless a test says otherwise
    (tests of the queueing path set `task_always_eager = False` themselves)."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = True


@pytest.fixture(autouse=True)
def _usage_landed_published_at_once(monkeypatch):
    """billing's ingest listener hands usage to a daemon thread that publishes after a short window; in
    tests it publishes in the caller's thread instead, so the (eager) `usage_landed` task runs inside the
    test's transaction. Tests of the publishing path replace `poke` themselves."""
    monkeypatch.setattr(billing_tasks._publisher, "poke", billing_tasks.usage_landed_flush)


@pytest.fixture(autouse=True)
def _fresh_api_key_cache():
    """Each test starts with an empty in-process API key cache (rows are rolled back between tests)."""
    auth._key_cache.clear()
    yield
    auth._key_cache.clear()


@pytest.fixture(autouse=True)
def _fresh_refreshed_values():
    """Values a process reads at most once per interval (`core.background.Refreshed`: the inbox backlog,
    whether a dedicated drainer runs) are read anew in each test: rows are rolled back between tests."""
    Refreshed.expire_all()
    yield
    Refreshed.expire_all()


@pytest.fixture
def tenant_a(db) -> Tenant:
    return make_tenant("acme")


@pytest.fixture
def tenant_b(db) -> Tenant:
    return make_tenant("globex")


# --- browser -------------------------------------------------------------------------------------
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}. Browser tests drive Debian's Chromium through Playwright: "
            "run `sudo apt-get install -y chromium` (or set CHROMIUM_PATH).",
            pytrace=False,
        )
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = (
        "true"  # Playwright's sync API runs an event loop in this thread
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def console_login(page, username: str, password: str = PASSWORD) -> None:
    page.goto("/console/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/")
