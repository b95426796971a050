"""Django settings, read from MEMBERHUB_* environment variables with strict parsers.

Every variable is listed in the README. A malformed value raises ConfigError at start.
"""

from __future__ import annotations

import os
from datetime import date as _date
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.utils.translation import gettext_lazy as _

from memberhub.conf import (
    PRIVATE_UMASK,
    ConfigError,
    allowed_hosts_problem,
    data_dir_private,
    default_data_dir,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_parsed,
    env_str,
    fernet_weakness,
    persistent_secret,
    random_token,
    secret_weakness,
)
from memberhub.core.request_log import logging_config

BASE_DIR = Path(__file__).resolve().parent

ENVIRONMENT = env_choice("MEMBERHUB_ENV", "development", ("development", "production"))
PRODUCTION = ENVIRONMENT == "production"
DEBUG = env_bool("MEMBERHUB_DEBUG", False)
if PRODUCTION and DEBUG:
    raise ConfigError("MEMBERHUB_DEBUG must be off when MEMBERHUB_ENV=production")

DATA_DIR = Path(env_str("MEMBERHUB_DATA_DIR") or default_data_dir()).expanduser()
# Everything this process creates is its owner's alone (the SQLite database and the -wal/-shm
# SQLite makes beside it, the task queue, keys, exports): every entry point (the CLI, granian's
# workers, wsgi) loads these settings before it opens a file.
os.umask(PRIVATE_UMASK)
data_dir_private(DATA_DIR)


def _secret(name: str, filename: str, make: object) -> str:
    value = env_str(name)
    if value:
        return value
    if PRODUCTION:
        raise ConfigError(f"{name} must be set when MEMBERHUB_ENV=production (no default secret is accepted)")
    return persistent_secret(DATA_DIR / filename, make)  # type: ignore[arg-type]


def _strong(name: str, value: str, min_length: int) -> None:
    """In production a key must look generated (conf.secret_weakness)."""
    why = secret_weakness(value, min_length=min_length) if PRODUCTION else None
    if why:
        raise ConfigError(f"{name} is too weak for production: {why}; use at least {min_length} random "
                          "characters, e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))'")


SECRET_KEY = _secret("MEMBERHUB_SECRET_KEY", "secret_key", random_token)
_strong("MEMBERHUB_SECRET_KEY", SECRET_KEY, 50)

# Personal data at rest: Fernet keys (the first encrypts, all decrypt, so keys can rotate)
# and a separate HMAC key for the blind index, which must never rotate silently.
ENCRYPTION_KEYS = [
    k.strip()
    for k in _secret("MEMBERHUB_ENCRYPTION_KEYS", "encryption_keys", lambda: Fernet.generate_key().decode()).split(",")
    if k.strip()
]
for _key in ENCRYPTION_KEYS:
    try:
        Fernet(_key)
    except (ValueError, TypeError):
        raise ConfigError(
            "MEMBERHUB_ENCRYPTION_KEYS holds a key that is not a Fernet key (32 url-safe base64 bytes)"
        ) from None
    if PRODUCTION and fernet_weakness(_key):
        raise ConfigError(f"MEMBERHUB_ENCRYPTION_KEYS holds a weak key: {fernet_weakness(_key)}; generate one with "
                          "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'")
BLIND_INDEX_KEY = _secret("MEMBERHUB_BLIND_INDEX_KEY", "blind_index_key", random_token)
if len(BLIND_INDEX_KEY) < 16:
    raise ConfigError("MEMBERHUB_BLIND_INDEX_KEY must be at least 16 characters")
_strong("MEMBERHUB_BLIND_INDEX_KEY", BLIND_INDEX_KEY, 32)
if PRODUCTION and len({SECRET_KEY, BLIND_INDEX_KEY, *ENCRYPTION_KEYS}) < 2 + len(set(ENCRYPTION_KEYS)):
    raise ConfigError("MEMBERHUB_SECRET_KEY, MEMBERHUB_BLIND_INDEX_KEY and MEMBERHUB_ENCRYPTION_KEYS must all differ")

ALLOWED_HOSTS = env_list("MEMBERHUB_ALLOWED_HOSTS", [] if PRODUCTION else ["*"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ConfigError("MEMBERHUB_ALLOWED_HOSTS must list the host names the service answers to in production")
if PRODUCTION and allowed_hosts_problem(ALLOWED_HOSTS):
    raise ConfigError(f"MEMBERHUB_ALLOWED_HOSTS is refused in production: {allowed_hosts_problem(ALLOWED_HOSTS)}")
CSRF_TRUSTED_ORIGINS = env_list("MEMBERHUB_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "huey.contrib.djhuey",
    # ninja's own Swagger UI files and template (with `{% static %}`): the API docs page works
    # on a closed network; without the app ninja renders a page that loads them from a CDN
    "ninja",
    "django_htmx",
    "memberhub.core",
    "memberhub.stores",
    "memberhub.access",
    "memberhub.audit",
    "memberhub.members",
    "memberhub.loyalty",
    "memberhub.coupons",
    "memberhub.wallet",
    "memberhub.checkout",
    "memberhub.analytics",
    "memberhub.imports",
    "memberhub.console",
]

# Session, CSRF, authentication and messages are Django's, stepping aside for a request to
# the API that carries its key (core/middleware.py); the locale one skips a path lookup.
MIDDLEWARE = [
    "memberhub.core.request_log.RequestIdMiddleware",  # outermost: every answer carries its id and is logged
    # an answer leaves once its commits are on disk (core/durability.py)
    "memberhub.core.durability.DurableAnswerMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "memberhub.core.security.SecurityHeadersMiddleware",
    "memberhub.core.http.NulCharacterMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "memberhub.core.middleware.SessionMiddleware",
    "memberhub.core.middleware.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "memberhub.core.middleware.CsrfViewMiddleware",
    "memberhub.core.middleware.AuthenticationMiddleware",
    "memberhub.core.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "memberhub.core.http.ApiErrorEnvelopeMiddleware",
    "memberhub.core.idempotency.IdempotencyMiddleware",
]

ROOT_URLCONF = "memberhub.urls"
WSGI_APPLICATION = "memberhub.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "memberhub.console.context.console",
            ],
        },
    },
]

SQLITE_PATH = DATA_DIR / "memberhub.sqlite3"
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    try:
        DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
    except ValueError as exc:
        raise ConfigError(f"DATABASE_URL is invalid: {exc}") from None
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(SQLITE_PATH),
            # Keep each thread's connection: opening one (and its PRAGMAs) per request cost
            # more than the request's own queries.
            "CONN_MAX_AGE": env_int("MEMBERHUB_SQLITE_CONN_MAX_AGE", 600, minimum=0),
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {
                # IMMEDIATE takes the write lock at BEGIN, so two writers queue on busy_timeout
                # instead of deadlocking when a reader upgrades to a writer.
                "transaction_mode": "IMMEDIATE",
                "timeout": env_int("MEMBERHUB_SQLITE_TIMEOUT", 30, minimum=1),
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
                    # checkpoint every ~16 MB of WAL rather than 4 MB: hot pages (index tails, accounts)
                    # are written back once per checkpoint, not once per 4 MB. Not more: the committing
                    # writer checkpoints while the others wait; with the log synced in the background
                    # (core/wal_flush) ~40 MB was no faster, without it the earn p99 rose from ~75 ms to
                    # ~100 ms. The WAL is cut back after
                    " PRAGMA wal_autocheckpoint=4000; PRAGMA journal_size_limit=67108864;"
                    " PRAGMA cache_size=-16000; PRAGMA temp_store=MEMORY;"
                ),
            },
            "TEST": {"NAME": str(DATA_DIR / "test.sqlite3")},
        }
    }
DATABASE_VENDOR = "postgresql" if DATABASE_URL else "sqlite"
# SQLite: answer a write only once its commit is on disk (group commit, core/durability.py).
# Off: faster, but an answered effect can be lost to a power cut or an OS crash.
DURABLE_ANSWERS = env_bool("MEMBERHUB_DURABLE_ANSWERS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("MEMBERHUB_TIME_ZONE", "Asia/Shanghai") or "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True  # serve straight from the installed packages; collectstatic is optional

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = PRODUCTION and env_bool("MEMBERHUB_SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("MEMBERHUB_BEHIND_PROXY", False) else None
# HTTPS (Django's SecurityMiddleware): in production plain HTTP is redirected (but /healthz, for
# the load balancer) and browsers are told to use HTTPS only, for a year, unless configured otherwise.
SECURE_SSL_REDIRECT = env_bool("MEMBERHUB_SSL_REDIRECT", PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("MEMBERHUB_HSTS_SECONDS", 31536000 if PRODUCTION else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("MEMBERHUB_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("MEMBERHUB_HSTS_PRELOAD", False)
# Content-Security-Policy on every answer (core/security.py). The API docs (Swagger UI, served
# from the package) need no inline script; Swagger and the admin set inline style attributes.
CONTENT_SECURITY_POLICY = env_str("MEMBERHUB_CONTENT_SECURITY_POLICY") or (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
# A staff session ends after this long without a request (sliding; core/middleware.py renews it
# at most once a minute).
SESSION_COOKIE_AGE = env_int("MEMBERHUB_SESSION_IDLE_SECONDS", 1800, minimum=60, maximum=30 * 86400)

# Bodies above this size answer 413 with the error envelope.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MEMBERHUB_MAX_BODY_BYTES", 2 * 1024 * 1024, minimum=1024)
MAX_IMPORT_BYTES = env_int("MEMBERHUB_MAX_IMPORT_BYTES", 100 * 1024 * 1024, minimum=1024)
# what an uploaded .xlsx (a zip) may unpack to; checked before it is parsed (core/tabular.py)
MAX_IMPORT_UNPACKED_BYTES = env_int("MEMBERHUB_MAX_IMPORT_UNPACKED_BYTES", 500 * 1024 * 1024, minimum=1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE

# The API contract's ceilings (core/schemas.py): a typo guard on every amount and points field,
# far above any real order, far below where a sum of them could overflow a 64-bit integer.
MAX_AMOUNT_FEN = env_int("MEMBERHUB_MAX_AMOUNT_FEN", 10**10, minimum=1, maximum=10**15)
MAX_POINTS = env_int("MEMBERHUB_MAX_POINTS", 10**10, minimum=1, maximum=10**15)
# A purchase may be dated this far past the server's clock (till clocks drift), and no earlier
# than the programme's start (the programme's `starts_on`, else this date).
PURCHASE_CLOCK_SKEW_SECONDS = env_int("MEMBERHUB_PURCHASE_CLOCK_SKEW_SECONDS", 600, minimum=0, maximum=86_400)
PROGRAMME_START = env_parsed("MEMBERHUB_PROGRAMME_START", _date.fromisoformat, _date(1990, 1, 1))

DEFAULT_PHONE_REGION = (env_str("MEMBERHUB_PHONE_REGION", "CN") or "CN").upper()
# Failed logins (access/services.py): per (username, address) the first LIMIT are free, then
# each doubles the wait (1 s, 2 s, ...) up to MAX_DELAY; one address failing ADDRESS_LIMIT times
# across usernames waits until its failures age out of the WINDOW.
LOGIN_FAILURE_LIMIT = env_int("MEMBERHUB_LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("MEMBERHUB_LOGIN_FAILURE_WINDOW", 3600, minimum=60)
LOGIN_MAX_DELAY_SECONDS = env_int("MEMBERHUB_LOGIN_MAX_DELAY", 900, minimum=1)
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("MEMBERHUB_LOGIN_ADDRESS_FAILURE_LIMIT", 100, minimum=1)
# Lookups by phone or email from a caller who sees them masked: misses allowed per window
# (access/lookup_guard.py).
LOOKUP_MISS_LIMIT = env_int("MEMBERHUB_LOOKUP_MISS_LIMIT", 20, minimum=1)
LOOKUP_MISS_WINDOW_SECONDS = env_int("MEMBERHUB_LOOKUP_MISS_WINDOW", 600, minimum=1)
IDEMPOTENCY_TTL_HOURS = env_int("MEMBERHUB_IDEMPOTENCY_TTL_HOURS", 48, minimum=1)
# Gift-card PINs: a card locks after this many refused PINs in a row (staff unlock it), and a
# caller with this many refused PINs within the window (any cards) waits (429).
GIFT_CARD_PIN_ATTEMPTS = env_int("MEMBERHUB_GIFT_CARD_PIN_ATTEMPTS", 5, minimum=1)
GIFT_CARD_PIN_CALLER_LIMIT = env_int("MEMBERHUB_GIFT_CARD_PIN_CALLER_LIMIT", 10, minimum=1)
GIFT_CARD_PIN_CALLER_WINDOW_SECONDS = env_int("MEMBERHUB_GIFT_CARD_PIN_CALLER_WINDOW", 900, minimum=1)

REDIS_URL = env_str("MEMBERHUB_REDIS_URL")
HUEY = {
    "name": "memberhub",
    "immediate": env_bool("MEMBERHUB_TASKS_IMMEDIATE", False),
    "results": False,
    "consumer": {"workers": env_int("MEMBERHUB_WORKER_THREADS", 2, minimum=1), "worker_type": "thread"},
}
# The event outbox (docs/events.md): a delivery that failed this many times is dead (kept for a
# person to retry); a claim older than the timeout is taken back from a worker that died.
OUTBOX_MAX_ATTEMPTS = env_int("MEMBERHUB_OUTBOX_MAX_ATTEMPTS", 8, minimum=1)
OUTBOX_CLAIM_TIMEOUT_SECONDS = env_int("MEMBERHUB_OUTBOX_CLAIM_TIMEOUT", 300, minimum=10)
if REDIS_URL:
    HUEY.update({"huey_class": "huey.RedisHuey", "url": REDIS_URL})
else:
    HUEY.update({"huey_class": "huey.SqliteHuey", "filename": str(DATA_DIR / "tasks.sqlite3")})

# One line per record; JSON by default (one object per line, with the request's id), or text.
LOG_FORMAT = env_choice("MEMBERHUB_LOG_FORMAT", "json", ("json", "text"))
LOGGING = logging_config(level=env_str("MEMBERHUB_LOG_LEVEL", "INFO") or "INFO", fmt=LOG_FORMAT)

# `/metrics`: with a token, only `Authorization: Bearer <token>`; without, only this host.
METRICS_TOKEN = env_str("MEMBERHUB_METRICS_TOKEN")

os.environ.setdefault("MEMBERHUB_DATA_DIR", str(DATA_DIR))

AUTHENTICATION_BACKENDS = ["memberhub.access.backends.RateLimitedModelBackend"]
