"""Settings for Webhook Inbox: one file, driven by the environment, failing closed.

DJANGO_ENV is `production` unless the environment says `development` or `test`
(`make run` writes DJANGO_ENV=development into var/.env; `make test` exports DJANGO_ENV=test).
Production refuses to start without SECRET_KEY and ALLOWED_HOSTS; DEBUG is off unless
DEBUG=true is set explicitly.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))

# The local env file `make run` writes (bin/run.py): variables for every process started in
# this checkout, so `manage.py ...` works without exporting anything. Precedence: the real
# environment, then this file, then the defaults below. A test run (DJANGO_ENV=test in the
# real environment, as `make test` exports it) never reads it: the port, database or
# anything else someone put there must not change what the tests see. Without the file (and
# without DJANGO_ENV) this is production, which fails closed below.
ENV_FILE = VAR_DIR / ".env"
if os.environ.get("DJANGO_ENV") != "test":
    load_dotenv(ENV_FILE, override=False)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DJANGO_ENV = os.environ.get("DJANGO_ENV", "production")
if DJANGO_ENV not in {"production", "development", "test"}:
    raise ImproperlyConfigured("DJANGO_ENV must be production, development or test")
PRODUCTION = DJANGO_ENV == "production"

DEBUG = env_bool("DEBUG", False)


def _development_secret_key() -> str:
    # A key that survives restarts (sessions stay valid) without anyone choosing one.
    # Only ever used outside production.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY is required when DJANGO_ENV=production")
    SECRET_KEY = _development_secret_key()
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", [])

# Tokens are stored as HMAC-SHA256 digests keyed with this value, so a database dump
# alone does not hand out working credentials. Changing it invalidates every token.
INBOX_SECRET_KEY = os.environ.get("INBOX_SECRET_KEY", SECRET_KEY)
# Signing secrets the schemes need in clear (HMAC keys) are encrypted at rest with Fernet
# under these keys: the first encrypts, every one decrypts, so a new key goes first.
INBOX_ENCRYPTION_KEYS = env_list("INBOX_ENCRYPTION_KEYS", [SECRET_KEY])

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS is required when DJANGO_ENV=production")

PORT = env_int("PORT", 8000)
# The origin shown in endpoint URLs, and the one URL-signing providers sign.
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", f"http://127.0.0.1:{PORT}").rstrip("/")

# How many web processes serve this settings file. A process-local rate-limit cache is
# only correct with one (system check inbox.E001).
WEB_CONCURRENCY = env_int("WEB_CONCURRENCY", 1)

INSTALLED_APPS = [
    "inbox.apps.InboxAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_filters",
    "django_htmx",
    "django_ratelimit",
    "django_tasks_db",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "inbox",
]

MIDDLEWARE = [
    # First: whatever a later layer logs while a receiver request is served, its slug is
    # redacted (inbox/logs.py).
    "inbox.logs.remember_receiver_slug",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "inbox.middleware.refuse_nul_bytes",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "inbox.audit.audit_scope",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django_ratelimit.middleware.RatelimitMiddleware",
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
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "inbox.dashboard.context.open_alerts",
            ],
            # {% load inbox_text %}: bidi controls made visible (inbox/dashboard/textfilters.py).
            "libraries": {"inbox_text": "inbox.dashboard.textfilters"},
        },
    },
]

# --- Database -------------------------------------------------------------------------
# SQLite under var/ is the embedded default; DATABASE_URL switches to PostgreSQL.
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=600, conn_health_checks=True)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # The receiver's INSERT binds its parameters on the server (inbox.ingest.store.insert_messages);
        # with a threshold, psycopg prepares it once it has run that many times on a
        # connection. Off by default: behind PgBouncer in transaction mode (without
        # max_prepared_statements) a prepared statement fails every batch. Django's own
        # queries bind on the client and are never prepared.
        _prepare = env_int("DATABASE_PREPARE_THRESHOLD", 0)
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = _prepare or None
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(os.environ.get("SQLITE_PATH", VAR_DIR / "inbox.sqlite3")),
            "OPTIONS": {
                # IMMEDIATE takes the write lock at BEGIN, so concurrent writers queue on
                # the busy timeout instead of failing with "database is locked" mid-way.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": ("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"),
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Caches ---------------------------------------------------------------------------
# The rate limiter's counters must be shared by every web process: Redis in production.
# The embedded default runs one web process, where a process-local cache is correct.
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    _redis = {
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "inbox",
        "OPTIONS": {
            # Fail fast: a rate limiter that waits on a dead Redis stalls ingest.
            "SOCKET_CONNECT_TIMEOUT": 0.5,
            "SOCKET_TIMEOUT": 0.5,
        },
    }
    CACHES = {
        "default": {"BACKEND": "django_redis.cache.RedisCache", **_redis},
        # The same Redis, counts leased in batches (inbox/ingest/ratelimit.py).
        "ratelimit": {"BACKEND": "inbox.ingest.ratelimit.RateLimitCache", **_redis},
    }
    RATELIMIT_USE_CACHE = "ratelimit"
    # django-ratelimit warns about any backend it does not list; this one is django-redis.
    SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001"]
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "inbox"}}
    RATELIMIT_USE_CACHE = "default"
    # django-ratelimit refuses LocMem outright (E003); our own check inbox.E001 allows it
    # exactly when it is correct, i.e. with a single web process.
    SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]

RATELIMIT_VIEW = "inbox.dashboard.views.rate_limited"
# Behind a reverse proxy, set TRUSTED_PROXY_HOPS to the number of proxies that append to
# X-Forwarded-For; the client address is then read from that header, not REMOTE_ADDR.
TRUSTED_PROXY_HOPS = env_int("TRUSTED_PROXY_HOPS", 0)
RATELIMIT_IP_META_KEY = "inbox.ingest.receiver.client_ip"

# --- Tasks ----------------------------------------------------------------------------
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# --- Auth -----------------------------------------------------------------------------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "inbox:message-list"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Security -------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
# Production sits behind TLS; development serves plain HTTP on 127.0.0.1.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", PRODUCTION)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", PRODUCTION)
# Behind a TLS-terminating proxy (TRUSTED_PROXY_HOPS >= 1) the app sees plain HTTP; the proxy
# says what the client used in X-Forwarded-Proto. Without trusting it, every page would
# redirect to https for ever. The proxy must set (not append to) that header, as the nginx
# block in the README does.
if env_bool("SECURE_PROXY_SSL_HEADER", TRUSTED_PROXY_HOPS > 0):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# A form posted from PUBLIC_BASE_URL's origin passes the CSRF origin check even when the proxy
# passes on another Host than the public one.
_public = urlsplit(PUBLIC_BASE_URL)
CSRF_TRUSTED_ORIGINS = env_list(
    "CSRF_TRUSTED_ORIGINS", [f"{_public.scheme}://{_public.netloc}"] if _public.scheme and _public.netloc else []
)
# Providers reach /healthz and /hooks/ over plain HTTP in some setups; they never see a
# redirect to https for those paths.
SECURE_REDIRECT_EXEMPT = [r"^hooks/", r"^healthz$"]

# --- The JSON API (inbox/api/) ---------------------------------------------------------
# Bearer tokens only (no session): API requests carry no cookie, so CSRF does not apply.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["inbox.api.auth.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["inbox.api.auth.TokenPermission"],
    "DEFAULT_THROTTLE_CLASSES": ["inbox.api.auth.TokenRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "inbox.api.errors.exception_handler",
    # ASCII JSON: an error that quotes what was sent (a lone surrogate, "\ud800") is escaped
    # instead of failing to encode as UTF-8 (a 500).
    "UNICODE_JSON": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Webhook Inbox API",
    "DESCRIPTION": "Endpoints, destinations, messages and bulk jobs of a Webhook Inbox. "
    "Send `Authorization: Bearer <token>` (create one on the dashboard's API tokens page).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"MessageStatusEnum": "inbox.models.Status", "JobStatusEnum": "inbox.models.JobStatus"},
}
# Requests per token (django-ratelimit's syntax); over it, 429 with Retry-After.
INBOX_API_RATE = os.environ.get("INBOX_API_RATE", "600/m")
# listen: how long a poll may wait for a new message, and how many polls may wait at once
# per web process (each waiting poll holds one of the server's threads; the rest answer at
# once and the client polls again a second later). See README, "listen".
INBOX_LISTEN_WAIT_SECONDS = env_int("INBOX_LISTEN_WAIT_SECONDS", 20)
INBOX_LISTEN_SLOTS = env_int("INBOX_LISTEN_SLOTS", 2)
# Polls and reports per listener (token + listener name), apart from INBOX_API_RATE: a
# listener polls about once a second and reports each delivery.
INBOX_LISTEN_RATE = os.environ.get("INBOX_LISTEN_RATE", "1200/m")

# --- Internationalisation and static files --------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"

# --- Inbox ----------------------------------------------------------------------------
# How long a worker process trusts its cached copy of an endpoint. Edits made in this
# process apply at once; other processes see them within this many seconds.
INBOX_ENDPOINT_CACHE_SECONDS = float(os.environ.get("INBOX_ENDPOINT_CACHE_SECONDS", "5"))
# Counters (inbox/counters.py) are counted in memory and written this often by a thread of
# each process; a process killed hard loses at most this many seconds of its counts. 0: no
# thread (the tests), counts are written when this process reads them.
INBOX_COUNTER_FLUSH_SECONDS = float(os.environ.get("INBOX_COUNTER_FLUSH_SECONDS", "0" if DJANGO_ENV == "test" else "5"))
# /metrics (inbox/metrics.py) answers `Authorization: Bearer <this>`; unset, only a staff
# session may read it.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
INBOX_PURGE_BATCH_SIZE = env_int("INBOX_PURGE_BATCH_SIZE", 5000)
# Processing (forwarding and handlers). Retry n waits BASE x FACTOR^(n-1) seconds, +-20%:
# with 40 s and x2.7 the first retry comes within a minute and five span about an hour.
INBOX_RETRY_BASE_SECONDS = float(os.environ.get("INBOX_RETRY_BASE_SECONDS", "40"))
INBOX_RETRY_FACTOR = float(os.environ.get("INBOX_RETRY_FACTOR", "2.7"))
# How long a worker holds a message for one attempt; a worker killed mid-attempt delays
# that message's retry by at most this long. Keep it above the slowest handler.
INBOX_PROCESSING_LEASE_SECONDS = env_int("INBOX_PROCESSING_LEASE_SECONDS", 300)
# Finished task results (django-tasks-db rows) are pruned by the daily purge after this.
INBOX_TASK_RESULT_DAYS = env_int("INBOX_TASK_RESULT_DAYS", 7)
# Alert notifications are sent by the worker (inbox/alerts/evaluate.py): each within this
# timeout, and all of one evaluation within this budget (the rest waits for the next one),
# so a slow or dead alert receiver costs the worker at most the budget of each minute.
INBOX_ALERT_NOTIFY_TIMEOUT_SECONDS = float(os.environ.get("INBOX_ALERT_NOTIFY_TIMEOUT_SECONDS", "5"))
INBOX_ALERT_SEND_BUDGET_SECONDS = float(os.environ.get("INBOX_ALERT_SEND_BUDGET_SECONDS", "10"))
# Forwarding to loopback and private addresses is an SSRF hole on a shared network; local
# development and the tests need it, and say so explicitly. Link-local and cloud metadata
# addresses are refused whatever this says.
FORWARD_ALLOW_PRIVATE = env_bool("FORWARD_ALLOW_PRIVATE", False)

# --- Email (alert notifications) --------------------------------------------------------
# Through Django's mailers (6.1; the tests' runner swaps in the in-memory backend by itself).
# Development prints emails on the console (the worker's output) until EMAIL_HOST names an
# SMTP server; production sends over SMTP, to a local relay (localhost:25) unless EMAIL_HOST
# says otherwise: a console backend there would lose every alert email (check mail.E001).
_email_host = os.environ.get("EMAIL_HOST", "")
if _email_host or DJANGO_ENV == "production":
    _email_ssl = env_bool("EMAIL_USE_SSL", False)
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": _email_host or "localhost",
                "port": env_int("EMAIL_PORT", (465 if _email_ssl else 587) if _email_host else 25),
                "username": os.environ.get("EMAIL_HOST_USER", ""),
                "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
                # STARTTLS to a named server by default; EMAIL_USE_SSL=true for implicit TLS.
                "use_tls": env_bool("EMAIL_USE_TLS", bool(_email_host) and not _email_ssl),
                "use_ssl": _email_ssl,
                # Per SMTP operation; short, as alert emails are sent by the worker.
                "timeout": env_int("EMAIL_TIMEOUT", 5),
            },
        }
    }
else:
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "webhook-inbox@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# The path of a receiver holds its secret slug, so every line goes through one handler
# whose filter redacts it (inbox/logs.py): django.request logs every 5xx with its
# traceback, method and path, and 4xx answers outside the receiver (which logs its own
# refusals by endpoint id). ACCESS_LOG=true adds one line per request (config/wsgi.py).
ACCESS_LOG = env_bool("ACCESS_LOG", False)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {
        "redact_receiver_slugs": {"()": "inbox.logs.RedactReceiverSlugs"},
        "quiet_receiver_4xx": {"()": "inbox.logs.QuietReceiver4xx"},
        "one_line_4xx": {"()": "inbox.logs.OneLine4xx"},
    },
    "handlers": {
        # On the handler, not a logger: a logger's filters never see its children's records
        # (django.security.DisallowedHost reaches django.security's handlers unfiltered).
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["one_line_4xx", "redact_receiver_slugs"],
        },
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "inbox": {"handlers": ["console"], "level": os.environ.get("INBOX_LOG_LEVEL", "INFO"), "propagate": False},
        "django.request": {
            "handlers": ["console"],
            "level": "WARNING",
            "filters": ["quiet_receiver_4xx"],  # one_line_4xx: on the console handler
            "propagate": False,
        },
        # Django's refusals of suspicious requests (a Host outside ALLOWED_HOSTS, a malformed
        # cookie): 400s, logged at ERROR with a traceback by Django; one bounded line here.
        "django.security": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        # runserver's request lines, when it is used instead of granian.
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

if DJANGO_ENV == "test":
    # Hashing a password at production strength takes ~0.5 s; tests create many users.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # The tests forward to catchers they start on 127.0.0.1; the SSRF tests turn this off.
    FORWARD_ALLOW_PRIVATE = env_bool("FORWARD_ALLOW_PRIVATE", True)
