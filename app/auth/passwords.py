"""Password hashing with Argon2id, configured from settings.

Hashing is deliberately slow, so it runs in a worker thread and never blocks the event
loop; the parameters come from ``PASSWORD_HASH_*``, and a hash made with older ones is
replaced at the next successful log-in.
"""

import base64
import os
from typing import Annotated

from anyio import to_thread
from fastapi import Depends
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.core.config import Settings
from app.core.resources import Resource


class PasswordHasher:
    def __init__(self, settings: Settings) -> None:
        self._hash = PasswordHash(
            (
                Argon2Hasher(
                    time_cost=settings.password_hash_time_cost,
                    memory_cost=settings.password_hash_memory_kib,
                    parallelism=settings.password_hash_parallelism,
                ),
            )
        )
        # Verified against when the account does not exist, so a wrong email costs
        # exactly as long as a wrong password and reveals nothing.
        self._decoy = _decoy_hash(settings)

    async def hash(self, password: str) -> str:
        return await to_thread.run_sync(self._hash.hash, password)

    async def verify(self, password: str, password_hash: str | None) -> tuple[bool, str | None]:
        """Whether the password matches, and a new hash when the stored one is outdated.

        ``password_hash=None`` (no such account) still pays for a full verification.
        """
        if password_hash is None:
            await to_thread.run_sync(self._hash.verify, password, self._decoy)
            return False, None
        return await to_thread.run_sync(self._hash.verify_and_update, password, password_hash)


def _decoy_hash(settings: Settings) -> str:
    """An Argon2 hash with the current parameters that no password matches.

    Verifying against it costs exactly what a real account's hash costs, since that
    depends only on the parameters. Its salt and digest are random bytes rather than a
    real hash's: hashing would hold up every worker's start-up for as long as a login.
    """
    salt, digest = (base64.b64encode(os.urandom(size)).decode().rstrip("=") for size in (16, 32))
    parameters = (
        f"m={settings.password_hash_memory_kib},t={settings.password_hash_time_cost},"
        f"p={settings.password_hash_parallelism}"
    )
    return f"$argon2id$v=19${parameters}${salt}${digest}"


PASSWORD_HASHER = Resource[PasswordHasher]("password_hasher")
PasswordHasherDep = Annotated[PasswordHasher, Depends(PASSWORD_HASHER)]
