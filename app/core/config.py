"""Settings: the only place the service reads its environment.

Everything is validated when the process starts, so a bad deployment fails before
it binds a port instead of on the first request that touches the broken value.
Outside development and test, the rules that protect production (real secrets,
an explicit database, no credentialed wildcard CORS) are enforced as well.
"""

import importlib.util
import ipaddress
import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import limits
from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

Environment = Literal["development", "test", "staging", "production"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

DEVELOPMENT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/app"
# Both values are public (one is the default, one is in .env.example), so neither
# may sign tokens anywhere real.
DEVELOPMENT_JWT_SECRET_KEY = "development-only-insecure-jwt-secret-key"  # noqa: S105
EXAMPLE_JWT_SECRET_KEY = "change-me-to-the-output-of-openssl-rand-hex-32"  # noqa: S105
MIN_SECRET_LENGTH = 32

LOCAL_ENVIRONMENTS = ("development", "test")

_POSTGRES_SCHEMES = {"postgresql", "postgres", "postgresql+asyncpg"}
# URL query parameters asyncpg understands; libpq's sslmode is translated to ssl. Others
# (channel_binding, connect_timeout, ...) would fail every connection, so they are refused.
_ASYNCPG_URL_PARAMETERS = {"ssl", "target_session_attrs"}


class ConfigurationError(Exception):
    """Raised when the environment does not describe a runnable service.

    The message names every offending variable and never echoes a value, so it is
    safe to print as the single line a failed start-up leaves behind.
    """

    def as_log_line(self) -> str:
        return json.dumps(
            {"level": "critical", "event": "invalid configuration", "detail": str(self)}
        )


def normalise_database_url(url: str) -> str:
    """Accept the URL spellings hosting providers hand out and return an asyncpg URL.

    libpq's ``sslmode`` becomes asyncpg's ``ssl`` so TLS can be asked for in the URL alone.
    Error messages never quote the URL: it may carry a password.
    """
    parts = urlsplit(url)
    if parts.scheme not in _POSTGRES_SCHEMES:
        raise ValueError("must start with postgresql://, postgres:// or postgresql+asyncpg://")
    try:
        parts.port  # noqa: B018  (parsing the port is the check)
    except ValueError:
        raise ValueError("has a port that is not a number from 0 to 65535") from None
    if not parts.hostname or not parts.path.strip("/"):
        raise ValueError("must name a host and a database")
    query = [("ssl" if key == "sslmode" else key, value) for key, value in parse_qsl(parts.query)]
    unsupported = sorted({key for key, _ in query} - _ASYNCPG_URL_PARAMETERS)
    if unsupported:
        raise ValueError(f"has query parameters asyncpg does not support: {', '.join(unsupported)}")
    return urlunsplit(parts._replace(scheme="postgresql+asyncpg", query=urlencode(query)))


def _check_bind(value: str) -> str:
    """``host:port``, ``[ipv6]:port`` or ``unix:/path``, as gunicorn accepts."""
    if value.startswith("unix:"):
        return value
    _, separator, port = value.rpartition(":")
    if not separator or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("must be host:port (or unix:/path)")
    return value


def _bind_port(bind: str) -> int | None:
    """The TCP port of a valid ``BIND``; None for a unix socket."""
    return None if bind.startswith("unix:") else int(bind.rpartition(":")[2])


def _check_forwarded_allow_ips(value: str) -> str:
    """A comma-separated list of addresses or networks, or ``*`` (trust every peer)."""
    for entry in (item.strip() for item in value.split(",")):
        if entry != "*":
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError("must list IP addresses or networks, or be *") from None
    return value


def _unset(value: object) -> bool:
    """``FOO=`` in a .env or a manifest means "not set", not "set to nothing"."""
    return value is None or (isinstance(value, str) and not value.strip())


def _empty_is_unset(value: object) -> object:
    return None if _unset(value) else value


def _local(data: Any) -> bool:
    """Whether raw settings input is for development or test (the default environment)."""
    return isinstance(data, dict) and data.get("environment", "development") in LOCAL_ENVIRONMENTS


def _local_default(data: Any, name: str, default: str) -> Any:
    """Raw input with ``default`` for ``name`` when it is unset in development or test."""
    if _local(data) and _unset(data.get(name)):
        return {**data, name: default}
    return data


def _normalised_url(value: object) -> SecretStr:
    url = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
    return SecretStr(normalise_database_url(url))


def _text_list(value: object) -> object:
    """Accept ``a,b`` as well as ``["a", "b"]``: both forms are common in manifests."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        return json.loads(text)
    return [item.strip() for item in text.split(",") if item.strip()]


def _check_hs256_secret(secret: str, info: ValidationInfo) -> None:
    """Outside development and test: long enough, and not a value published in this repo."""
    if info.data.get("environment") in LOCAL_ENVIRONMENTS:
        return
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters")
    if secret in (DEVELOPMENT_JWT_SECRET_KEY, EXAMPLE_JWT_SECRET_KEY):
        raise ValueError("is a published example value, not a secret: generate one")


def _required(value: object) -> object:
    """Refuses an unset secret that has no default outside development and test."""
    if _unset(value):
        raise PydanticCustomError("missing", "required outside development and test")
    return value


# Each group below is the settings of one concern, with the validators of its fields; the
# groups compose ``Settings`` and every field keeps its own environment variable.


class ServiceSettings(BaseSettings):
    """Which service this is, and where it runs."""

    environment: Environment = "development"
    app_name: str = Field(default="fastapi-service", min_length=1, max_length=64)
    app_version: str = Field(default="0.1.0", min_length=1, max_length=64)
    git_sha: str = Field(default="unknown", min_length=1, max_length=64)
    # None: served everywhere but production (see ``Settings.docs_served``).
    docs_enabled: bool | None = None


class DatabaseSettings(BaseSettings):
    """The PostgreSQL the service uses, and each worker's pool of connections to it."""

    database_url: SecretStr
    db_pool_size: int = Field(default=10, ge=1, le=100)
    db_max_overflow: int = Field(default=0, ge=0, le=100)
    db_pool_timeout: float = Field(default=5.0, gt=0, le=120)
    db_pool_recycle: int = Field(default=1800, ge=-1)
    db_pool_pre_ping: bool = False
    db_statement_timeout_ms: int = Field(default=15_000, ge=0)
    db_connect_timeout: float = Field(default=5.0, gt=0, le=120)
    db_max_connections: int = Field(default=100, ge=1)
    # DATABASE_URL names a PgBouncer in transaction pooling mode.
    db_pgbouncer: bool = False
    # Migrations hold a session-level advisory lock: straight to PostgreSQL, never a pooler.
    migrations_database_url: SecretStr | None = None

    @model_validator(mode="before")
    @classmethod
    def _development_database(cls, data: Any) -> Any:
        """A local default in development and test; required everywhere else."""
        return _local_default(data, "database_url", DEVELOPMENT_DATABASE_URL)

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_url(cls, value: object) -> object:
        return _normalised_url(_required(value))

    @field_validator("migrations_database_url", mode="before")
    @classmethod
    def _migrations_database_url(cls, value: object) -> object:
        return None if _unset(value) else _normalised_url(value)

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url.get_secret_value()

    @property
    def migrations_sqlalchemy_url(self) -> str:
        """``MIGRATIONS_DATABASE_URL``, or ``DATABASE_URL`` where it is not set."""
        return (self.migrations_database_url or self.database_url).get_secret_value()


class AuthSettings(BaseSettings):
    """Access tokens (JWT) and password hashing (Argon2id)."""

    jwt_algorithm: Literal["HS256", "RS256", "ES256"] = "HS256"
    # HS256: the shared secret. RS256/ES256: the PEM private key (JWT_PUBLIC_KEY verifies).
    jwt_secret_key: SecretStr
    jwt_public_key: str | None = None
    # Keys retired from signing that still verify: HS256 secrets, or PEM public keys.
    jwt_previous_keys: Annotated[list[SecretStr], NoDecode] = []
    jwt_issuer: str = Field(default="fastapi-service", min_length=1)
    jwt_audience: str = Field(default="fastapi-service", min_length=1)
    access_token_expire_minutes: int = Field(default=30, ge=1, le=24 * 60)
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)
    password_hash_time_cost: int = Field(default=3, ge=1, le=20)
    password_hash_memory_kib: int = Field(default=65536, ge=8192, le=1048576)
    password_hash_parallelism: int = Field(default=4, ge=1, le=16)
    password_hash_concurrency: int = Field(default=1, ge=1, le=64)
    password_hash_wait_seconds: float = Field(default=2.0, gt=0, le=60)
    # Where attempts are counted: redis:// or rediss:// (memory:// counts per process).
    rate_limit_storage_url: SecretStr
    login_rate_limit: str = "5/15minutes"
    login_ip_rate_limit: str = "100/hour"
    register_rate_limit: str = "20/hour"

    @model_validator(mode="before")
    @classmethod
    def _development_key(cls, data: Any) -> Any:
        """A published default in development and test; required everywhere else."""
        return _local_default(data, "jwt_secret_key", DEVELOPMENT_JWT_SECRET_KEY)

    @model_validator(mode="before")
    @classmethod
    def _development_rate_limit_store(cls, data: Any) -> Any:
        """Per-process counting in development and test; a shared store everywhere else."""
        return _local_default(data, "rate_limit_storage_url", "memory://")

    @field_validator("jwt_secret_key", "rate_limit_storage_url", mode="before")
    @classmethod
    def _present_key(cls, value: object) -> object:
        return _required(value)

    @field_validator("rate_limit_storage_url")
    @classmethod
    def _rate_limit_store(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        scheme = value.get_secret_value().partition("://")[0]
        local = info.data.get("environment") in LOCAL_ENVIRONMENTS
        if scheme not in ("redis", "rediss") and not (scheme == "memory" and local):
            raise ValueError("must be a redis:// or rediss:// URL (memory:// only locally)")
        return value

    @field_validator("login_rate_limit", "login_ip_rate_limit", "register_rate_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            (limit,) = limits.parse_many(value)
        except ValueError:
            raise ValueError("must be one limit, like '5/15minutes' or '100/hour'") from None
        if limit.amount < 1:
            raise ValueError("must allow at least one attempt")
        return value

    @field_validator("jwt_secret_key")
    @classmethod
    def _strong_secret(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        # Surrounding whitespace (a trailing newline from a mounted file) is not the key.
        value = SecretStr(value.get_secret_value().strip())
        # A PEM private key's strength is the key type's, not its length.
        if info.data.get("jwt_algorithm", "HS256") == "HS256":
            _check_hs256_secret(value.get_secret_value(), info)
        return value

    @field_validator("jwt_previous_keys", mode="before")
    @classmethod
    def _split_previous_keys(cls, value: object) -> object:
        return _text_list(value)

    @field_validator("jwt_previous_keys")
    @classmethod
    def _usable_previous_keys(cls, value: list[SecretStr], info: ValidationInfo) -> list[SecretStr]:
        # Stripped, as every key is: a trailing newline (a key mounted from a file) must
        # not change the key, or its kid, between signing and verifying.
        keys = [item.get_secret_value().strip() for item in value]
        symmetric = info.data.get("jwt_algorithm", "HS256") == "HS256"
        for key in keys:
            if symmetric:
                # A retired secret still verifies: it must be as strong as a current one.
                _check_hs256_secret(key, info)
            elif "-----BEGIN PUBLIC KEY-----" not in key:
                raise ValueError("must be PEM public keys when JWT_ALGORITHM is RS256 or ES256")
        return [SecretStr(key) for key in keys]

    @field_validator("jwt_public_key", mode="before")
    @classmethod
    def _public_key_unset(cls, value: object) -> object:
        return _empty_is_unset(value)

    @field_validator("jwt_public_key")
    @classmethod
    def _public_key_for_asymmetric(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("jwt_algorithm", "HS256") != "HS256":
            raise ValueError("is required when JWT_ALGORITHM is RS256 or ES256")
        return value.strip() if value is not None else None


class HttpSettings(BaseSettings):
    """What the API accepts from callers, and how the service calls other services."""

    cors_allow_origins: Annotated[list[str], NoDecode] = []
    cors_allow_credentials: bool = False
    max_request_body_bytes: int = Field(default=1024 * 1024, ge=1)
    outbound_connect_timeout: float = Field(default=2.0, gt=0, le=60)
    outbound_read_timeout: float = Field(default=10.0, gt=0, le=600)
    outbound_pool_timeout: float = Field(default=2.0, gt=0, le=60)
    idempotency_ttl_hours: int = Field(default=24, ge=1, le=24 * 30)

    @field_validator("cors_allow_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        return _text_list(value)

    @field_validator("cors_allow_credentials")
    @classmethod
    def _no_credentialed_wildcard(cls, value: bool, info: ValidationInfo) -> bool:
        if value and "*" in info.data.get("cors_allow_origins", []):
            raise ValueError("cannot be true while CORS_ALLOW_ORIGINS contains '*'")
        return value


class ObservabilitySettings(BaseSettings):
    """Logs, metrics, traces, error reports and the readiness probe."""

    log_level: LogLevel = "INFO"
    log_format: Literal["json", "console"] | None = None
    metrics_enabled: bool = True
    # /metrics has a listener of its own, never the API's (see ServerSettings._bind).
    metrics_port: int = Field(default=9090, ge=1, le=65535)
    prometheus_multiproc_dir: Path | None = None
    slow_request_ms: int = Field(default=1000, ge=1)
    otel_exporter_otlp_endpoint: str | None = None
    otel_service_name: str | None = Field(default=None, min_length=1, max_length=64)
    sentry_dsn: SecretStr | None = None
    sentry_traces_sample_rate: float = Field(default=0.0, ge=0, le=1)
    sentry_profiles_sample_rate: float = Field(default=0.0, ge=0, le=1)
    ready_timeout: float = Field(default=1.0, gt=0, le=30)
    ready_cache_seconds: float = Field(default=1.0, ge=0, le=30)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator(
        "log_format",
        "prometheus_multiproc_dir",
        "otel_exporter_otlp_endpoint",
        "otel_service_name",
        "sentry_dsn",
        mode="before",
    )
    @classmethod
    def _optional_unset(cls, value: object) -> object:
        return _empty_is_unset(value)

    @field_validator("sentry_dsn")
    @classmethod
    def _sentry_dsn(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            # Only where a DSN is set: the SDK costs every process memory and start-up.
            from sentry_sdk.utils import BadDsn, Dsn  # noqa: PLC0415

            try:
                Dsn(value.get_secret_value())
            except BadDsn:
                raise ValueError("is not a valid Sentry DSN") from None
        return value

    @field_validator("otel_exporter_otlp_endpoint")
    @classmethod
    def _otlp_endpoint(cls, value: str | None) -> str | None:
        """The collector's OTLP/HTTP base URL (``/v1/traces`` is appended), SDK installed."""
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL")
        # Looked up, not imported: the SDK loads in the workers, once tracing starts.
        for module in ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http"):
            if importlib.util.find_spec(module) is None:
                raise ValueError("needs the OpenTelemetry SDK: install requirements/otel.txt")
        return value


class ServerSettings(BaseSettings):
    """gunicorn: where it listens, how many workers, and how they stop."""

    port: int = Field(default=8000, ge=1, le=65535)
    bind: str | None = None
    web_concurrency: int | None = Field(default=None, ge=1)
    max_workers: int | None = Field(default=None, ge=1)
    gunicorn_timeout: int = Field(default=60, ge=1)
    gunicorn_graceful_timeout: int = Field(default=40, ge=1)
    request_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    # Longer than the idle timeout of the proxies that pool connections to the app
    # (ingress-nginx 60 s, AWS ALB 60 s): a proxy must close an idle connection first, or
    # it can send a request on one the app is closing and answer 502.
    gunicorn_keepalive: int = Field(default=75, ge=1)
    shutdown_drain_seconds: float = Field(default=5.0, ge=0, le=300)
    forwarded_allow_ips: str = "127.0.0.1,::1"
    memory_limit_mb: int | None = Field(default=None, ge=64)
    # Request heads (request line and headers), enforced by the gunicorn worker.
    http_max_header_bytes: int = Field(default=16384, ge=1024, le=1_048_576)
    http_max_headers: int = Field(default=100, ge=10, le=10_000)
    http_header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)

    @field_validator("bind", mode="before")
    @classmethod
    def _bind_unset(cls, value: object) -> object:
        return _empty_is_unset(value)

    @field_validator("bind")
    @classmethod
    def _bind(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Also against METRICS_PORT (validated before this group): the metrics listener
        is told apart by its port, so on the API's every request would be a scrape."""
        api_port = info.data.get("port")
        if value is not None:
            value = _check_bind(value)
            api_port = _bind_port(value)
        if info.data.get("metrics_enabled") and api_port == info.data.get("metrics_port"):
            raise ValueError("the API's port (PORT, or BIND's) must differ from METRICS_PORT")
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _forwarded_allow_ips(cls, value: str) -> str:
        return _check_forwarded_allow_ips(value)

    @field_validator("request_timeout_seconds")
    @classmethod
    def _request_within_worker_timeout(cls, value: float, info: ValidationInfo) -> float:
        """A request must end (504) before gunicorn would take its worker for hung."""
        worker_timeout = info.data.get("gunicorn_timeout")
        if worker_timeout is not None and value >= worker_timeout:
            raise ValueError("must be shorter than GUNICORN_TIMEOUT")
        return value

    @field_validator("shutdown_drain_seconds")
    @classmethod
    def _drain_and_a_request_within_grace(cls, value: float, info: ValidationInfo) -> float:
        """After SIGTERM the drain runs, then the last request it let in may run to its
        deadline: both inside gunicorn's graceful timeout, or that request is killed."""
        graceful = info.data.get("gunicorn_graceful_timeout")
        request = info.data.get("request_timeout_seconds")
        if graceful is not None and request is not None and value + request > graceful:
            raise ValueError("with REQUEST_TIMEOUT_SECONDS, must fit in GUNICORN_GRACEFUL_TIMEOUT")
        return value


# Fields are validated base class last first: ServiceSettings (the environment, which
# the others' rules read) before all others.
class Settings(
    ServerSettings,
    ObservabilitySettings,
    HttpSettings,
    AuthSettings,
    DatabaseSettings,
    ServiceSettings,
):
    """Every knob of the service, read from the environment and an optional ``.env`` file."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        validate_default=True,
        hide_input_in_errors=True,
    )

    @property
    def api_bind(self) -> str:
        return self.bind or f"0.0.0.0:{self.port}"

    @property
    def metrics_bind(self) -> str | None:
        """Where gunicorn serves ``/metrics``: the API's host on ``METRICS_PORT``.

        No more exposed than the API: an API on loopback keeps its metrics there, and so
        does one on a unix socket (reached only through a local proxy). None with metrics
        off: no second listener at all.
        """
        if not self.metrics_enabled:
            return None
        api = self.api_bind
        host = "127.0.0.1" if api.startswith("unix:") else api.rpartition(":")[0]
        return f"{host}:{self.metrics_port}"

    @property
    def docs_served(self) -> bool:
        """Whether ``/docs``, ``/redoc`` and ``/openapi.json`` answer: ``DOCS_ENABLED``, else
        everywhere but production, where the schema would map the attack surface for
        anyone who asks. Tooling still gets it from ``app.openapi()``."""
        if self.docs_enabled is not None:
            return self.docs_enabled
        return self.environment != "production"

    @property
    def resolved_log_format(self) -> Literal["json", "console"]:
        if self.log_format is not None:
            return self.log_format
        return "console" if self.environment == "development" else "json"

    @classmethod
    def load(cls) -> Self:
        """Read the environment, turning validation failures into one readable error."""
        try:
            return cls()
        except ValidationError as exc:
            problems = [
                f"{'.'.join(str(part) for part in error['loc']).upper()}: "
                f"{error['msg'].removeprefix('Value error, ')}"
                for error in exc.errors(
                    include_url=False, include_input=False, include_context=False
                )
            ]
            raise ConfigurationError("; ".join(problems)) from None
        except SettingsError as exc:
            raise ConfigurationError(str(exc)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once on first use (never at import)."""
    return Settings.load()


def get_settings_or_exit() -> Settings:
    """For entry points: on invalid configuration, exit 1 with one JSON line, no traceback."""
    try:
        return get_settings()
    except ConfigurationError as exc:
        sys.exit(exc.as_log_line())
