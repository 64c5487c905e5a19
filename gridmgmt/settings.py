"""Django settings for gridmgmt. Every value comes from the environment (docs/configuration.md).

GRIDMGMT_MODE selects defaults: "production" (the default) requires every secret to be set;
"development" and "test" fill in harmless local values for what is missing.
"""

import datetime as dt
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from gridmgmt.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

MODE = env_str("GRIDMGMT_MODE", "production")
if MODE not in {"production", "development", "test"}:
    raise ImproperlyConfigured(f"GRIDMGMT_MODE={MODE!r}: use production, development or test.")
LOCAL_MODE = MODE != "production"

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "insecure-local-only-key" if LOCAL_MODE else None)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "django.contrib.postgres",
    "leaflet",
    "rest_framework",
    "rest_framework_gis",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "knox",
    "axes",
    "procrastinate.contrib.django",
    "accounts",
    "geodata",
    "events",
    "patrol",
    "patrol_api",
    "maps",
    "command",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # A lost database connection answers 503 + Retry-After (gridmgmt/middleware.py): before every
    # middleware that touches the database, after the one that adds the security headers.
    "gridmgmt.middleware.DatabaseUnavailableMiddleware",
    # Photo files written by a request whose transaction did not commit are deleted (R1).
    "gridmgmt.middleware.UncommittedPhotoFilesMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "axes.middleware.AxesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "gridmgmt.urls"
WSGI_APPLICATION = "gridmgmt.wsgi.application"

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
            ],
        },
    },
]

# --- database: PostGIS only -------------------------------------------------------------
_database_url = env_str("DATABASE_URL")
DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
DATABASES["default"]["ENGINE"] = "django.contrib.gis.db.backends.postgis"
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# JIT compilation only adds time to our short aggregate queries (0.9 s of 3.8 s for a year of
# 综合评价, docs/performance.md §7): off for the application's connections.
_db_options = DATABASES["default"].setdefault("OPTIONS", {})
_db_options["options"] = f"{_db_options.get('options', '')} -c jit=off".strip()
# Parallel sessions (several developers or helpers on one cluster) can keep their test
# databases apart with GRIDMGMT_TEST_DB_NAME.
DATABASES["default"]["TEST"] = {"NAME": env_str("GRIDMGMT_TEST_DB_NAME", "test_gridmgmt")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # lock-out after repeated failures (first, by design)
    # Rights of each role (accounts/roles.py), checked before per-user/group permissions so
    # that a role's right costs no query.
    "accounts.roles.RolePermissionBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# The cache backs API throttling and must be shared by every web worker: the database is.
# Tests use a per-process memory cache that each test starts empty (tests/conftest.py):
# a database cache table would survive the flush after tests that commit.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "gridmgmt_cache"}
    if MODE != "test"
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # Per process: the write throttle's counters (patrol_api/throttling.py, docs/api.md).
    "throttle": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle"},
}
# Throttle scope → cache alias; the log-in scope stays on the shared "default" cache.
THROTTLE_CACHES = {"write": "throttle"}

# Lock-out after repeated failed log-ins (django-axes), per user name and address.
AXES_FAILURE_LIMIT = env_int("GRIDMGMT_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("GRIDMGMT_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False  # lock-outs are logged; the start-up banner on every command is noise

# --- language and time ------------------------------------------------------------------
LANGUAGE_CODE = env_str("LANGUAGE_CODE", "zh-hans")
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

# --- static and uploaded files ----------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if MODE == "test"
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Uploaded files (photos, import files) live outside the web root; they are served only
# through permission-checked views.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / ".local" / "media")))
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 20 * 1024 * 1024

# --- spatial ----------------------------------------------------------------------------
# Geometries are stored in WGS84 / EPSG:4326 (CGCS2000, EPSG:4490, is the same within
# centimetres for our purpose). Areas and distances are computed on geography or in the
# metric CRS below: a CGCS2000 3-degree Gauss-Krüger zone chosen for the jurisdiction.
STORAGE_SRID = 4326
METRIC_SRID = env_int("GRIDMGMT_METRIC_SRID", 4544)
if not 4534 <= METRIC_SRID <= 4554:
    raise ImproperlyConfigured(
        f"GRIDMGMT_METRIC_SRID={METRIC_SRID}: use a CGCS2000 3-degree Gauss-Krüger zone, EPSG:4534-4554."
    )
# Tests never reach the network: they default to the no-tiles base map.
BASE_MAP = env_str("GRIDMGMT_BASE_MAP", "none" if MODE == "test" else "osm")
if BASE_MAP not in {"osm", "tianditu", "amap", "none"}:
    raise ImproperlyConfigured(f"GRIDMGMT_BASE_MAP={BASE_MAP!r}: use osm, tianditu, amap or none.")
TIANDITU_KEY = env_str("GRIDMGMT_TIANDITU_KEY", "")

LEAFLET_CONFIG = {
    "DEFAULT_CENTER": (29.42, 106.46),
    "DEFAULT_ZOOM": 12,
    "MIN_ZOOM": 3,
    "MAX_ZOOM": 19,
    "TILES": []
    if BASE_MAP == "none"
    else [("OpenStreetMap", "https://tile.openstreetmap.org/{z}/{x}/{y}.png", {"attribution": "© OpenStreetMap"})],
    "RESET_VIEW": False,
}

# --- case workflow ---------------------------------------------------------------------
# Working hours of the time limits (工作时): comma-separated HH:MM-HH:MM periods.
GRIDMGMT_WORKING_HOURS = env_str("GRIDMGMT_WORKING_HOURS", "08:30-12:00,14:00-17:30")
GRIDMGMT_PHOTO_MAX_BYTES = env_int("GRIDMGMT_PHOTO_MAX_BYTES", 10 * 1024 * 1024)

# --- personal data (PIPL) -----------------------------------------------------------------
# Fernet keys, comma-separated, newest first: every key can decrypt, the first encrypts.
PII_KEYS = env_list("GRIDMGMT_PII_KEYS", ["bG9jYWwtb25seS1rZXktbG9jYWwtb25seS1rZXkhIQ=="] if LOCAL_MODE else [])
PII_HASH_KEY = env_str("GRIDMGMT_PII_HASH_KEY", "local-only-hash-key" if LOCAL_MODE else None)
if not PII_KEYS:
    raise ImproperlyConfigured("Set GRIDMGMT_PII_KEYS (see docs/configuration.md).")

# --- REST API -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",  # phones and other clients: Authorization: Token <token>
        "rest_framework.authentication.SessionAuthentication",  # our own web pages
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["patrol_api.throttling.ScopedRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "login": env_str("GRIDMGMT_THROTTLE_LOGIN", "10/min"),
        "write": env_str("GRIDMGMT_THROTTLE_WRITE", "120/min"),
    },
    # Domain errors (illegal transition, role, outside the jurisdiction...) to 400/403/404/409.
    "EXCEPTION_HANDLER": "patrol_api.errors.exception_handler",
}
REST_KNOX = {
    "TOKEN_TTL": dt.timedelta(hours=env_int("GRIDMGMT_API_TOKEN_TTL_HOURS", 24 * 7)),
    "AUTO_REFRESH": True,  # a phone in daily use keeps its token; an idle one expires
    "TOKEN_LIMIT_PER_USER": 10,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "gridmgmt API",
    "DESCRIPTION": "网格化管理平台接口：巡查上报、任务、案卷流转与 Open311。见 docs/api.md。",
    "VERSION": "1.0.0",
    # Swagger UI assets come from drf-spectacular-sidecar, served by us: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- security -----------------------------------------------------------------------------
# Behind HTTPS (the normal production case) set GRIDMGMT_HTTPS=1: secure cookies, HSTS, redirect.
SECURE_HTTPS = env_bool("GRIDMGMT_HTTPS", False)
SESSION_COOKIE_SECURE = SECURE_HTTPS
CSRF_COOKIE_SECURE = SECURE_HTTPS
SECURE_SSL_REDIRECT = SECURE_HTTPS
SECURE_HSTS_SECONDS = 31536000 if SECURE_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HTTPS
SECURE_HSTS_PRELOAD = SECURE_HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if SECURE_HTTPS else None
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # procrastinate announces every task registration at INFO on every command: keep warnings.
    "loggers": {"procrastinate": {"level": "WARNING"}},
}

# Debian 12 ships GDAL 3.6; the warning asks for 3.9 to block file/network access from
# spatial references. We never pass user-supplied SRS strings to GDAL (imports go through
# pyproj), so the warning is silenced here on purpose.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]
