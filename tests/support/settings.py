"""Settings for the app under test: test environment, cheap password hashing."""

from typing import Any
from uuid import uuid4

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
# Limits no ordinary test reaches: the suite registers and logs in hundreds of times
# from one address. The throttling tests set their own.
GENEROUS_RATE_LIMITS = {
    "login_rate_limit": "10000/minute",
    "login_ip_rate_limit": "10000/minute",
    "register_rate_limit": "10000/minute",
}
# The suite's own Redis database, emptied when a run starts (tests/conftest.py).
TEST_REDIS_URL = "redis://127.0.0.1:6379/15"


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings from these values alone: no ``.env`` file, no environment variable."""
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        **FAST_PASSWORD_HASHING,
        **GENEROUS_RATE_LIMITS,
        # Attempts counted in Redis, as deployed, under a name of this app's own (the key
        # prefix), so no test sees another's counts. Not memory://, whose expiry task in
        # `limits` 5.8 races a cleared count (KeyError in a background task).
        "rate_limit_storage_url": TEST_REDIS_URL,
        "app_name": f"test-{uuid4().hex[:12]}",
    }
    return Settings(_env_file=None, **(values | overrides))
