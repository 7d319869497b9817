"""Settings for the app under test: test environment, cheap password hashing."""

from typing import Any

from app.core.config import Settings

# Argon2 at its cheapest: the suite hashes hundreds of passwords. Production cost is
# exercised where it matters (the hash-upgrade test raises it).
FAST_PASSWORD_HASHING = {
    "password_hash_time_cost": 1,
    "password_hash_memory_kib": 8192,
    "password_hash_parallelism": 1,
}
# The same, as environment variables for a server process.
FAST_PASSWORD_HASHING_ENV = {
    name.upper(): str(value) for name, value in FAST_PASSWORD_HASHING.items()
}


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings from these values alone: no ``.env`` file, no environment variable."""
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        **FAST_PASSWORD_HASHING,
    }
    return Settings(_env_file=None, **(values | overrides))
