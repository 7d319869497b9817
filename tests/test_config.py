"""Settings fail fast: every production rule refuses a bad environment with one safe message.

Each rule is checked through ``Settings.load()`` on a real process environment, and
once end to end: the real ``gunicorn -c gunicorn.conf.py`` exits before binding,
printing a single JSON line that names every problem and never echoes the secret.
"""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from app.core.config import (
    DEVELOPMENT_DATABASE_URL,
    DEVELOPMENT_JWT_SECRET_KEY,
    EXAMPLE_JWT_SECRET_KEY,
    ConfigurationError,
    Settings,
)
from tests.support.gunicorn import GUNICORN, free_port
from tests.support.paths import ROOT

STRONG_SECRET = "a-real-secret-" + "0123456789abcdef" * 3
DATABASE_PASSWORD = "db-password-never-printed"
PRODUCTION = {
    "ENVIRONMENT": "production",
    "DATABASE_URL": f"postgresql://app:{DATABASE_PASSWORD}@db.internal:5432/app",
    "JWT_SECRET_KEY": STRONG_SECRET,
    "RATE_LIMIT_STORAGE_URL": "redis://:redis-password@cache.internal:6379/0",
}
NON_LOCAL = pytest.mark.parametrize("environment", ["production", "staging"])


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No stray ``.env`` reaches the tests (conftest already cleared the shell's settings)."""
    monkeypatch.chdir(tmp_path)


def load(monkeypatch: pytest.MonkeyPatch, **environ: str) -> Settings:
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    return Settings.load()


def refusal(monkeypatch: pytest.MonkeyPatch, **environ: str) -> str:
    """The message of the ConfigurationError that loading this environment raises."""
    with pytest.raises(ConfigurationError) as caught:
        load(monkeypatch, **environ)
    return str(caught.value)


def named_variables(message: str) -> set[str]:
    """The variables a ``VAR: reason; VAR: reason`` message blames."""
    return set(re.findall(r"(?:^|; )([A-Z][A-Z0-9_]*):", message))


def test_valid_production_environment_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch, **PRODUCTION)

    assert settings.environment == "production"
    assert settings.sqlalchemy_url == (
        f"postgresql+asyncpg://app:{DATABASE_PASSWORD}@db.internal:5432/app"
    )
    assert settings.jwt_secret_key.get_secret_value() == STRONG_SECRET


@NON_LOCAL
def test_missing_database_url_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, environment: str
) -> None:
    given = {k: v for k, v in PRODUCTION.items() if k != "DATABASE_URL"}
    message = refusal(monkeypatch, **{**given, "ENVIRONMENT": environment})

    assert named_variables(message) == {"DATABASE_URL"}


@NON_LOCAL
def test_missing_jwt_secret_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, environment: str
) -> None:
    given = {k: v for k, v in PRODUCTION.items() if k != "JWT_SECRET_KEY"}
    message = refusal(monkeypatch, **{**given, "ENVIRONMENT": environment})

    assert named_variables(message) == {"JWT_SECRET_KEY"}


@pytest.mark.parametrize("variable", ["DATABASE_URL", "JWT_SECRET_KEY"])
def test_production_treats_an_empty_value_as_missing(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    message = refusal(monkeypatch, **{**PRODUCTION, variable: "  "})

    assert named_variables(message) == {variable}
    assert "required" in message


@NON_LOCAL
def test_jwt_secret_shorter_than_32_characters_is_refused(
    monkeypatch: pytest.MonkeyPatch, environment: str
) -> None:
    short_secret = "s" * 31
    message = refusal(
        monkeypatch, **{**PRODUCTION, "ENVIRONMENT": environment, "JWT_SECRET_KEY": short_secret}
    )

    assert named_variables(message) == {"JWT_SECRET_KEY"}
    assert "32" in message
    assert short_secret not in message


def test_production_accepts_jwt_secret_of_exactly_32_characters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load(monkeypatch, **{**PRODUCTION, "JWT_SECRET_KEY": "s" * 32})

    assert settings.jwt_secret_key.get_secret_value() == "s" * 32


@NON_LOCAL
@pytest.mark.parametrize(
    "published_secret",
    [
        pytest.param(EXAMPLE_JWT_SECRET_KEY, id="example"),
        pytest.param(DEVELOPMENT_JWT_SECRET_KEY, id="development"),
    ],
)
def test_production_refuses_published_jwt_secret(
    monkeypatch: pytest.MonkeyPatch, environment: str, published_secret: str
) -> None:
    message = refusal(
        monkeypatch,
        **{**PRODUCTION, "ENVIRONMENT": environment, "JWT_SECRET_KEY": published_secret},
    )

    assert named_variables(message) == {"JWT_SECRET_KEY"}
    assert published_secret not in message


def test_credentialed_wildcard_cors_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refusal(
        monkeypatch, **PRODUCTION, CORS_ALLOW_ORIGINS="*", CORS_ALLOW_CREDENTIALS="true"
    )

    assert named_variables(message) == {"CORS_ALLOW_CREDENTIALS"}
    assert "CORS_ALLOW_ORIGINS" in message


def test_wildcard_cors_without_credentials_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch, **PRODUCTION, CORS_ALLOW_ORIGINS="*")

    assert settings.cors_allow_origins == ["*"]
    assert settings.cors_allow_credentials is False


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DB_POOL_SIZE", "abc"),
        ("DB_POOL_SIZE", "0"),
        ("ENVIRONMENT", "prod"),
        ("LOG_FORMAT", "xml"),
        ("LOG_LEVEL", "verbose"),
        ("CORS_ALLOW_ORIGINS", '["https://a.example"'),
    ],
)
def test_invalid_value_is_refused_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    message = refusal(monkeypatch, **{**PRODUCTION, variable: value})

    assert named_variables(message) == {variable}


def test_several_problems_are_reported_together_in_one_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    short_secret = "tooshort-but-secret-value"
    message = refusal(
        monkeypatch,
        ENVIRONMENT="production",
        JWT_SECRET_KEY=short_secret,
        DB_POOL_SIZE="abc",
        LOG_FORMAT="xml",
        CORS_ALLOW_ORIGINS="*",
        CORS_ALLOW_CREDENTIALS="true",
    )

    assert named_variables(message) == {
        "DATABASE_URL",
        "JWT_SECRET_KEY",
        "RATE_LIMIT_STORAGE_URL",
        "DB_POOL_SIZE",
        "LOG_FORMAT",
        "CORS_ALLOW_CREDENTIALS",
    }
    assert short_secret not in message


def test_refused_database_url_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refusal(
        monkeypatch, **{**PRODUCTION, "DATABASE_URL": f"mysql://app:{DATABASE_PASSWORD}@db/app"}
    )

    assert named_variables(message) == {"DATABASE_URL"}
    assert DATABASE_PASSWORD not in message
    assert "mysql" not in message


def test_valid_settings_never_show_their_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch, **PRODUCTION, SENTRY_DSN="https://sentry-key@sentry.example/1")

    for text in (repr(settings), str(settings)):
        assert STRONG_SECRET not in text
        assert DATABASE_PASSWORD not in text
        assert "sentry-key" not in text


@pytest.mark.parametrize("environment", [None, "development", "test"])
def test_local_environments_start_with_no_variables(
    monkeypatch: pytest.MonkeyPatch, environment: str | None
) -> None:
    settings = load(monkeypatch, **({"ENVIRONMENT": environment} if environment else {}))

    assert settings.environment == (environment or "development")
    assert settings.sqlalchemy_url == DEVELOPMENT_DATABASE_URL
    assert settings.jwt_secret_key.get_secret_value() == DEVELOPMENT_JWT_SECRET_KEY
    assert settings.cors_allow_origins == []
    assert settings.cors_allow_credentials is False


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ("development", "console"),
        ("test", "json"),
        ("staging", "json"),
        ("production", "json"),
    ],
)
def test_log_format_defaults_to_console_only_in_development(
    monkeypatch: pytest.MonkeyPatch, environment: str, expected: str
) -> None:
    settings = load(monkeypatch, **{**PRODUCTION, "ENVIRONMENT": environment})

    assert settings.resolved_log_format == expected


def test_explicit_log_format_overrides_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch, ENVIRONMENT="development", LOG_FORMAT="json")

    assert settings.resolved_log_format == "json"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            "postgresql://app:pw@db.internal:5432/app",
            "postgresql+asyncpg://app:pw@db.internal:5432/app",
        ),
        (
            "postgres://app:pw@db.internal:5432/app",
            "postgresql+asyncpg://app:pw@db.internal:5432/app",
        ),
        (
            "postgresql+asyncpg://app:pw@db.internal:5432/app",
            "postgresql+asyncpg://app:pw@db.internal:5432/app",
        ),
        (
            "postgres://app:pw@db.internal/app?sslmode=require",
            "postgresql+asyncpg://app:pw@db.internal/app?ssl=require",
        ),
        (
            "postgresql://app:pw@db.internal/app?target_session_attrs=read-write&sslmode=require",
            "postgresql+asyncpg://app:pw@db.internal/app?target_session_attrs=read-write&ssl=require",
        ),
    ],
)
def test_database_url_is_normalised_to_asyncpg(
    monkeypatch: pytest.MonkeyPatch, given: str, expected: str
) -> None:
    settings = load(monkeypatch, **{**PRODUCTION, "DATABASE_URL": given})

    assert settings.sqlalchemy_url == expected


@pytest.mark.parametrize(
    "url",
    [
        "mysql://app:pw@db.internal:3306/app",
        "sqlite:///app.db",
        "postgresql://app:pw@db.internal:5432/",
    ],
)
def test_database_url_that_is_not_a_postgres_database_is_refused(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    message = refusal(monkeypatch, **{**PRODUCTION, "DATABASE_URL": url})

    assert named_variables(message) == {"DATABASE_URL"}


@pytest.mark.parametrize(
    "origins",
    [
        pytest.param("https://a.example, https://b.example", id="comma-list"),
        pytest.param('["https://a.example", "https://b.example"]', id="json-list"),
    ],
)
def test_cors_origins_accept_comma_and_json_lists(
    monkeypatch: pytest.MonkeyPatch, origins: str
) -> None:
    settings = load(monkeypatch, **PRODUCTION, CORS_ALLOW_ORIGINS=origins)

    assert settings.cors_allow_origins == ["https://a.example", "https://b.example"]


def test_migrations_use_the_database_url_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    same = load(monkeypatch, **PRODUCTION)
    direct = load(
        monkeypatch, **PRODUCTION, MIGRATIONS_DATABASE_URL="postgres://app:pw@db-direct:5432/app"
    )

    assert same.migrations_sqlalchemy_url == same.sqlalchemy_url
    assert direct.migrations_sqlalchemy_url == "postgresql+asyncpg://app:pw@db-direct:5432/app"
    assert "pw" not in repr(direct)


def test_previous_signing_keys_are_a_list_and_as_strong_as_the_current_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listed = load(monkeypatch, **PRODUCTION, JWT_PREVIOUS_KEYS=f"{'a' * 32},{'b' * 40}")
    assert [key.get_secret_value() for key in listed.jwt_previous_keys] == ["a" * 32, "b" * 40]
    assert "a" * 32 not in repr(listed)

    message = refusal(monkeypatch, **PRODUCTION, JWT_PREVIOUS_KEYS="too-short")
    assert named_variables(message) == {"JWT_PREVIOUS_KEYS"}
    published = refusal(monkeypatch, **PRODUCTION, JWT_PREVIOUS_KEYS=DEVELOPMENT_JWT_SECRET_KEY)
    assert named_variables(published) == {"JWT_PREVIOUS_KEYS"}


def test_the_rate_limit_store_is_redis_outside_development_and_test(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load(monkeypatch, **PRODUCTION)
    assert "redis-password" not in repr(settings)
    monkeypatch.delenv("RATE_LIMIT_STORAGE_URL")
    without = {k: v for k, v in PRODUCTION.items() if k != "RATE_LIMIT_STORAGE_URL"}
    assert named_variables(refusal(monkeypatch, **without)) == {"RATE_LIMIT_STORAGE_URL"}
    memory = refusal(monkeypatch, **{**PRODUCTION, "RATE_LIMIT_STORAGE_URL": "memory://"})
    assert named_variables(memory) == {"RATE_LIMIT_STORAGE_URL"}
    for bad in ("five a minute", "0/hour", "5/minute;100/day"):
        bad_limit = refusal(monkeypatch, **PRODUCTION, LOGIN_RATE_LIMIT=bad)
        assert named_variables(bad_limit) == {"LOGIN_RATE_LIMIT"}


def test_lowercase_log_level_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch, **PRODUCTION, LOG_LEVEL="debug")

    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SENTRY_DSN", "not-a-dsn"),
        ("DATABASE_URL", "postgresql://app@db.internal:notaport/app"),
        ("DATABASE_URL", "postgresql://app@db.internal/app?channel_binding=require"),
        ("BIND", "localhost"),
        ("BIND", "127.0.0.1:99999"),
        ("FORWARDED_ALLOW_IPS", "10.0.0.0/8,not-an-ip"),
        ("SHUTDOWN_DRAIN_SECONDS", "30"),
        ("REQUEST_TIMEOUT_SECONDS", "60"),
        ("HTTP_MAX_HEADER_BYTES", "512"),
        ("HTTP_MAX_HEADERS", "0"),
        ("HTTP_HEADER_TIMEOUT_SECONDS", "0"),
        ("MIGRATIONS_DATABASE_URL", "postgresql://app@db.internal:notaport/app"),
    ],
)
def test_server_and_integration_values_are_checked_before_start(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    message = refusal(monkeypatch, **{**PRODUCTION, variable: value})

    assert named_variables(message) == {variable}


def test_valid_bind_forms_and_trusted_proxies_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(
        monkeypatch, **PRODUCTION, BIND="[::1]:8080", FORWARDED_ALLOW_IPS="10.0.0.0/8, 127.0.0.1"
    )

    assert settings.bind == "[::1]:8080"
    assert load(monkeypatch, BIND="unix:/tmp/app.sock").bind == "unix:/tmp/app.sock"


@pytest.mark.parametrize(
    "clash",
    [{"PORT": "9090"}, {"BIND": "127.0.0.1:9090"}, {"PORT": "7000", "METRICS_PORT": "7000"}],
)
def test_the_api_and_the_metrics_listener_cannot_share_a_port(
    monkeypatch: pytest.MonkeyPatch, clash: dict[str, str]
) -> None:
    message = refusal(monkeypatch, **PRODUCTION, **clash)

    assert named_variables(message) == {"BIND"}
    assert "METRICS_PORT" in message
    # With metrics off there is no second listener to clash with.
    assert load(monkeypatch, METRICS_ENABLED="false").metrics_bind is None


@pytest.mark.parametrize(
    ("bind", "metrics_bind"),
    [
        (None, "0.0.0.0:9090"),
        ("127.0.0.1:8000", "127.0.0.1:9090"),
        ("[::1]:8080", "[::1]:9090"),
        ("unix:/tmp/app.sock", "127.0.0.1:9090"),
    ],
)
def test_metrics_listen_on_the_api_host_and_never_wider(
    monkeypatch: pytest.MonkeyPatch, bind: str | None, metrics_bind: str
) -> None:
    settings = load(monkeypatch, **PRODUCTION, **({"BIND": bind} if bind else {}))

    assert settings.metrics_bind == metrics_bind
    assert settings.api_bind == (bind or "0.0.0.0:8000")


def test_gunicorn_refuses_invalid_configuration_before_binding() -> None:
    secret = "tooshort-but-secret-value"
    env = {
        **os.environ,
        "ENVIRONMENT": "production",
        "DATABASE_URL": "",  # empty counts as unset, and wins over a developer's .env
        "JWT_SECRET_KEY": secret,
        "DB_POOL_SIZE": "abc",
        "BIND": f"127.0.0.1:{free_port()}",
    }

    result = subprocess.run(
        [str(GUNICORN), "-c", "gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode != 0
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    assert lines[0].strip()
    record = json.loads(lines[0])
    assert record["level"] == "critical"
    assert named_variables(record["detail"]) == {
        "DATABASE_URL",
        "JWT_SECRET_KEY",
        "RATE_LIMIT_STORAGE_URL",
        "DB_POOL_SIZE",
    }
    assert secret not in result.stdout
    assert "Traceback" not in result.stdout
