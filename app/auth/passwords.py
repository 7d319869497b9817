"""Password hashing with Argon2id, configured from settings.

Hashing is deliberately slow and memory-hungry (``PASSWORD_HASH_MEMORY_KIB`` each), so
it is the cheapest way to knock a service over: a flood of log-ins ran 80 hashes at
once in two workers (1.5 GiB), starved every other request of CPU and failed the
readiness probe. Here a worker hashes in threads of its own, at most
``PASSWORD_HASH_CONCURRENCY`` at a time, so its hashing memory has a ceiling; a log-in
waits at most ``PASSWORD_HASH_WAIT_SECONDS`` for a slot and is then refused with a 503
and ``Retry-After``. The threads run at a lower CPU priority than the event loop, so
while hashes queue up, everyone else's requests (and the probes) still get the CPU.

No database connection is held while a hash is computed: the use cases read, let the
connection go back to the pool, hash, and only then write. A hash made with older
parameters is replaced at the next successful log-in, and so is one made from a
password that was not in NFC: passwords are hashed and verified in their NFC form.
"""

import asyncio
import base64
import math
import os
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, TypeVar

from fastapi import Depends
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.auth.errors import HashingBusyError
from app.core.config import Settings
from app.core.resources import Resource

# Niceness of the hashing threads (0 normal, 19 lowest). At 10, a thread that wants
# the CPU while an event loop does gets about a tenth of it: hashing slows down under
# load, requests do not.
_HASHING_NICENESS = 19

T = TypeVar("T")


def _lower_priority() -> None:
    """Runs in each hashing thread as it starts; on Linux, niceness is per thread."""
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _HASHING_NICENESS)


class PasswordHasher:
    def __init__(self, settings: Settings) -> None:
        concurrency = settings.password_hash_concurrency
        self._threads = ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="password-hash", initializer=_lower_priority
        )
        self._slots = asyncio.Semaphore(concurrency)
        self._wait_seconds = settings.password_hash_wait_seconds
        self._retry_after = math.ceil(settings.password_hash_wait_seconds)
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
        normalised = _normalised(password)
        return await self._in_slot(lambda: self._hash.hash(normalised))

    async def verify(self, password: str, password_hash: str | None) -> tuple[bool, str | None]:
        """Whether the password matches, and a new hash when the stored one is outdated.

        ``password_hash=None`` (no such account) checks the same candidates against the
        decoy, so it pays for exactly the verifications a wrong password would.
        """
        normalised = _normalised(password)
        raw = password if password != normalised else None
        if password_hash is None:
            await self._in_slot(lambda: self._check(normalised, raw, self._decoy))
            return False, None
        return await self._in_slot(lambda: self._check(normalised, raw, password_hash))

    def _check(
        self, normalised: str, raw: str | None, password_hash: str
    ) -> tuple[bool, str | None]:
        """Verify the NFC form, then (if it differs and failed) the password as sent.

        Hashes made before passwords were normalised hashed what the client sent; such
        a hash that only the raw form opens is replaced by a hash of the NFC form.
        """
        valid, new_hash = self._hash.verify_and_update(normalised, password_hash)
        if valid or raw is None:
            return valid, new_hash
        if self._hash.verify(raw, password_hash):
            return True, self._hash.hash(normalised)
        return False, None

    async def _in_slot(self, work: Callable[[], T]) -> T:
        """Run ``work`` in a hashing thread once a slot is free; HashingBusyError if none is.

        The slot is given back when the thread is done, not when the caller stops
        waiting: a request cancelled mid-hash (its deadline, a client gone) must not let
        another hash start beside the one still running.
        """
        try:
            async with asyncio.timeout(self._wait_seconds):
                await self._slots.acquire()
        except TimeoutError:
            raise HashingBusyError(self._retry_after) from None
        running = asyncio.get_running_loop().run_in_executor(self._threads, work)
        running.add_done_callback(lambda _: self._slots.release())
        return await asyncio.shield(running)

    def close(self) -> None:
        """Stop the threads once the hashes they run are done (at worker shutdown)."""
        self._threads.shutdown(wait=False, cancel_futures=True)


def _normalised(password: str) -> str:
    """NFC (RFC 8265's OpaqueString): ``é`` typed as one code point or as ``e`` and an
    accent is one password, whichever a keyboard, an OS or a password manager sends."""
    return unicodedata.normalize("NFC", password)


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
