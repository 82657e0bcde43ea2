"""Settings, all from environment variables (see README "Configuration" and .env.example)."""

from __future__ import annotations

from pathlib import Path

import dj_database_url

from config import embedded_pg, keys
from config.env import env_bool, env_choice, env_int, env_list, env_str
from config.schedule import beat_schedule

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
# Where a local installation keeps its embedded PostgreSQL and its generated keys.
DATA_DIR = Path(env_str("DATA_DIR") or BASE_DIR / ".data").resolve()
DATABASE_URL = env_str("DATABASE_URL")
EMBEDDED_DATABASE = not DATABASE_URL

# --- secrets (config/keys.py: environment, else the installation's key files, else development keys) --
# The development/test setting: public development keys allowed (`make dev`, the test suite).
ALLOW_DEVELOPMENT_SECRETS = DEBUG or env_bool("MET_ALLOW_INSECURE_SECRET", False)
SECRET_KEY = keys.resolve_secret_key(
    environ_value=env_str("SECRET_KEY"),
    data_dir=DATA_DIR,
    create_local=EMBEDDED_DATABASE,
    allow_development=ALLOW_DEVELOPMENT_SECRETS,
)
# Fernet keys for credentials stored encrypted (core.fields.EncryptedTextField); the first encrypts.
FIELD_ENCRYPTION_KEYS = keys.resolve_field_encryption_keys(
    environ_value=env_str("FIELD_ENCRYPTION_KEY"),
    data_dir=DATA_DIR,
    create_local=EMBEDDED_DATABASE,
    allow_development=ALLOW_DEVELOPMENT_SECRETS,
)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "django_celery_beat",
    "core",
    "metering",
    "catalog",
    "billing",
    "invoicing",
    "portal",
    "analytics",
    "lago",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "core.middleware.RequestLimitsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "core.middleware.ConsoleOrganizationMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.console",
            ],
        },
    }
]

# --- database -------------------------------------------------------------------------
if EMBEDDED_DATABASE:
    DATABASE_URL = embedded_pg.database_url(DATA_DIR)
assert DATABASE_URL is not None
if not DATABASE_URL.startswith(("postgres://", "postgresql://")):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"Environment variable DATABASE_URL={DATABASE_URL!r} must be a postgresql:// URL; "
        "this project runs on PostgreSQL only."
    )
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Row-level security on tenant tables, entered by the tenant-scoped views (core/rls.py). The database user
# must be a superuser or may create roles; false disables the wall.
DATABASE_RLS = env_bool("DATABASE_RLS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- auth, i18n, static -------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/console/login/"
LOGIN_REDIRECT_URL = "/console/"
LOGOUT_REDIRECT_URL = "/console/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / ".data" / "static"
SERVE_STATIC = env_bool("SERVE_STATIC", True)  # gunicorn serves /static/ itself unless a proxy does

# --- API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["core.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["core.auth.HasScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.LimitedJSONParser"],  # core/limits.py: depth, NUL, numbers
    "EXCEPTION_HANDLER": "core.errors.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Meterline API",
    "DESCRIPTION": "Usage metering and billing. Ingestion and meters are wire-compatible with OpenMeter.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "OAS_VERSION": "3.1.0",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True},  # the API key survives a reload of /api/docs/
    # Enums used under several field names get one stable component name (generated clients import them)
    "ENUM_NAME_OVERRIDES": {
        "EntitlementTypeEnum": "catalog.validation.ENTITLEMENT_TYPES",
        "TaxBehaviorEnum": "catalog.validation.TAX_BEHAVIORS",
    },
}
API_PAGE_SIZE = env_int("API_PAGE_SIZE", 100, minimum=1)
# Seconds an API key stays cached in-process on hot paths (ingest, entitlement values); 0 disables.
API_KEY_CACHE_SECONDS = env_int("API_KEY_CACHE_SECONDS", 10, minimum=0)

# --- Celery -----------------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL
if not CELERY_BROKER_URL:
    # No broker server: kombu's SQLAlchemy transport on the same PostgreSQL.
    _db = DATABASES["default"]
    if EMBEDDED_DATABASE:
        CELERY_BROKER_URL = (
            f"sqla+postgresql+psycopg://postgres@/postgres?host={embedded_pg.pg_dir(DATA_DIR)}"
        )
    else:
        CELERY_BROKER_URL = "sqla+" + DATABASE_URL.replace("postgres://", "postgresql://", 1).replace(
            "postgresql://", "postgresql+psycopg://", 1
        )
CELERY_BROKER_KIND = (
    "redis"
    if CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
    else ("sqlalchemy" if CELERY_BROKER_URL.startswith("sqla+") else "other")
)
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}

# How often beat runs the invoice clock (drafts and issues due billing periods); django-celery-beat
# syncs the schedule to its tables when beat starts, so a new value takes effect at the next beat start.
INVOICE_CLOCK_SECONDS = env_int("INVOICE_CLOCK_SECONDS", 300, minimum=1)
CELERY_BEAT_SCHEDULE = beat_schedule(invoice_clock_seconds=INVOICE_CLOCK_SECONDS)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
HEALTH_BEAT_MAX_AGE_SECONDS = env_int("HEALTH_BEAT_MAX_AGE_SECONDS", 300, minimum=10)

# --- Stripe --------------------------------------------------------------------------------------
STRIPE_API_BASE = env_str("STRIPE_API_BASE")  # unset: Stripe's own endpoint
STRIPE_TIMEOUT_SECONDS = env_int("STRIPE_TIMEOUT_SECONDS", 30, minimum=1)

# --- e-mail (invitation links) ----------------------------------------------------------------
EMAIL_HOST = env_str("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "") or ""
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "") or ""
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
else:
    # No mail server: e-mails are written to the log of the process that sends them (the web server).
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Meterline <noreply@localhost>")

# --- product settings -----------------------------------------------------------------------
INGEST_MAX_BODY_BYTES = env_int("INGEST_MAX_BODY_BYTES", 5 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(INGEST_MAX_BODY_BYTES, 2_621_440) + 1024
# Accepted events waiting to be stored beyond which ingest answers 503 + Retry-After (0 = no limit).
INGEST_BACKLOG_MAX_EVENTS = env_int("INGEST_BACKLOG_MAX_EVENTS", 2_000_000, minimum=0)
# A background drainer's bounded share (metering.drain.Pace): each chunk aims at DRAIN_CHUNK_MS, and while
# requests keep arriving it rests DRAIN_REST_PERCENT of a chunk's time (at most 50 ms) before the next.
DRAIN_CHUNK_MS = env_int("DRAIN_CHUNK_MS", 100, minimum=1)
DRAIN_REST_PERCENT = env_int("DRAIN_REST_PERCENT", 25, minimum=0)
# Background drainers that store one organization's accepted batches side by side (metering.store.inbox,
# "lanes"; at most 8). One by default: on the 2-core reference machine two lanes keep up with a steadier
# load and drain a backlog faster, but accept a burst about a fifth slower (docs/scaling.md).
DRAIN_LANES = env_int("DRAIN_LANES", 1, minimum=1, maximum=8)
# Where raw events, rollups and meter queries live: "postgres" (default) or "clickhouse" (docs/scaling.md).
METERING_STORE = env_choice("METERING_STORE", "postgres", ["postgres", "clickhouse"])
# The ClickHouse store's connection: http(s)://user:password@host:8123/database (a server, clickhouse-connect)
# or chdb:///directory (ClickHouse in the process, one machine).
CLICKHOUSE_URL = env_str("CLICKHOUSE_URL", "") or ""
# How far in the future an event's `time` may be (clock skew of the sender); later times get 400.
INGEST_MAX_FUTURE_SECONDS = env_int("INGEST_MAX_FUTURE_SECONDS", 300, minimum=0)
# Outbound webhooks may target private, loopback and link-local addresses (on-premise use only).
WEBHOOK_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", False)
# Where users reach the service (links in portal tokens, the Stripe webhook URL, e-mails); unset, links are
# built from the request (core/links.py).
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "")
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ["DEBUG", "INFO", "WARNING", "ERROR"])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
