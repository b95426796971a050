"""Django settings, read from MEMBERHUB_* environment variables with strict parsers.

Every variable is listed in the README. A malformed value raises ConfigError at start.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.utils.translation import gettext_lazy as _

from memberhub.conf import (
    ConfigError,
    default_data_dir,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_str,
    persistent_secret,
    random_token,
)

BASE_DIR = Path(__file__).resolve().parent

ENVIRONMENT = env_choice("MEMBERHUB_ENV", "development", ("development", "production"))
PRODUCTION = ENVIRONMENT == "production"
DEBUG = env_bool("MEMBERHUB_DEBUG", False)
if PRODUCTION and DEBUG:
    raise ConfigError("MEMBERHUB_DEBUG must be off when MEMBERHUB_ENV=production")

DATA_DIR = Path(env_str("MEMBERHUB_DATA_DIR") or default_data_dir()).expanduser()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret(name: str, filename: str, make: object) -> str:
    value = env_str(name)
    if value:
        return value
    if PRODUCTION:
        raise ConfigError(f"{name} must be set when MEMBERHUB_ENV=production (no default secret is accepted)")
    return persistent_secret(DATA_DIR / filename, make)  # type: ignore[arg-type]


SECRET_KEY = _secret("MEMBERHUB_SECRET_KEY", "secret_key", random_token)
if PRODUCTION and (len(SECRET_KEY) < 32 or SECRET_KEY.startswith("django-insecure")):
    raise ConfigError("MEMBERHUB_SECRET_KEY is too weak for production: use at least 32 random characters")

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
BLIND_INDEX_KEY = _secret("MEMBERHUB_BLIND_INDEX_KEY", "blind_index_key", random_token)
if len(BLIND_INDEX_KEY) < 16:
    raise ConfigError("MEMBERHUB_BLIND_INDEX_KEY must be at least 16 characters")

ALLOWED_HOSTS = env_list("MEMBERHUB_ALLOWED_HOSTS", [] if PRODUCTION else ["*"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ConfigError("MEMBERHUB_ALLOWED_HOSTS must list the host names the service answers to in production")
CSRF_TRUSTED_ORIGINS = env_list("MEMBERHUB_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "huey.contrib.djhuey",
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
    "memberhub.console",
]

# Session, CSRF, authentication and messages are Django's, stepping aside for a request to
# the API that carries its key (core/middleware.py); the locale one skips a path lookup.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
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

# Bodies above this size answer 413 with the error envelope.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MEMBERHUB_MAX_BODY_BYTES", 2 * 1024 * 1024, minimum=1024)
MAX_IMPORT_BYTES = env_int("MEMBERHUB_MAX_IMPORT_BYTES", 100 * 1024 * 1024, minimum=1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE

DEFAULT_PHONE_REGION = (env_str("MEMBERHUB_PHONE_REGION", "CN") or "CN").upper()
LOGIN_FAILURE_LIMIT = env_int("MEMBERHUB_LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("MEMBERHUB_LOGIN_FAILURE_WINDOW", 900, minimum=1)
IDEMPOTENCY_TTL_HOURS = env_int("MEMBERHUB_IDEMPOTENCY_TTL_HOURS", 48, minimum=1)

REDIS_URL = env_str("MEMBERHUB_REDIS_URL")
HUEY = {
    "name": "memberhub",
    "immediate": env_bool("MEMBERHUB_TASKS_IMMEDIATE", False),
    "results": False,
    "consumer": {"workers": env_int("MEMBERHUB_WORKER_THREADS", 2, minimum=1), "worker_type": "thread"},
}
if REDIS_URL:
    HUEY.update({"huey_class": "huey.RedisHuey", "url": REDIS_URL})
else:
    HUEY.update({"huey_class": "huey.SqliteHuey", "filename": str(DATA_DIR / "tasks.sqlite3")})

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("MEMBERHUB_LOG_LEVEL", "INFO") or "INFO"},
    "loggers": {"django.request": {"level": "ERROR"}},
}

os.environ.setdefault("MEMBERHUB_DATA_DIR", str(DATA_DIR))

AUTHENTICATION_BACKENDS = ["memberhub.access.backends.RateLimitedModelBackend"]
