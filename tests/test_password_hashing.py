"""Password hashing is bounded: a few slots per worker, a bounded wait, then a 503.

Real Argon2 throughout, at a cost high enough (tenths of a second) that hashes overlap.
Also: a password is compared in NFC, and an unknown account costs the same
verifications as a wrong password, in whichever form it came.
"""

import asyncio
import os
import threading
import unicodedata

import pytest
from pwdlib.hashers.argon2 import Argon2Hasher

from app.auth.errors import HashingBusyError
from app.auth.passwords import PasswordHasher
from app.core.config import Settings
from tests.support.accounts import TOKEN
from tests.support.clients import app_client
from tests.support.problems import assert_problem
from tests.support.settings import make_settings

pytestmark = pytest.mark.anyio

# One slot, a hash of about 0.3 s here, and a wait far shorter than a hash.
SLOW_HASHING = {
    "password_hash_time_cost": 6,
    "password_hash_memory_kib": 65536,
    "password_hash_parallelism": 1,
    "password_hash_concurrency": 1,
    "password_hash_wait_seconds": 0.05,
}


def slow_hashing(database_url: str) -> Settings:
    return make_settings(database_url, **SLOW_HASHING)


async def test_log_ins_beyond_the_hashing_slots_get_503_with_retry_after(
    database_url: str,
) -> None:
    form = {"username": "nobody@example.com", "password": "not-the-password"}
    async with app_client(slow_hashing(database_url)) as client:
        responses = await asyncio.gather(*(client.post(TOKEN, data=form) for _ in range(3)))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [401, 503, 503]
    for busy in (r for r in responses if r.status_code == 503):
        body = assert_problem(busy, 503)
        assert body["detail"] == "Too many log-ins in progress. Retry later."
        assert busy.headers["Retry-After"] == "1"


async def test_a_cancelled_hash_keeps_its_slot_until_its_thread_is_done(
    database_url: str,
) -> None:
    hasher = PasswordHasher(slow_hashing(database_url))
    try:
        first = asyncio.create_task(hasher.hash("a password"))
        await asyncio.sleep(0.05)  # the hash is running in its thread now
        first.cancel()
        # The caller is gone, but the hash still holds its memory: no second one yet.
        with pytest.raises(HashingBusyError):
            await hasher.hash("another password")
        await asyncio.sleep(1)  # the abandoned hash has finished
        assert (await hasher.hash("another password")).startswith("$argon2id$")
    finally:
        hasher.close()


async def test_hashing_threads_yield_the_cpu_to_the_event_loop(database_url: str) -> None:
    hasher = PasswordHasher(make_settings(database_url))
    try:
        await hasher.hash("a password")
        [thread] = [t for t in threading.enumerate() if t.name.startswith("password-hash")]
        assert thread.native_id is not None
        assert os.getpriority(os.PRIO_PROCESS, thread.native_id) == 19
    finally:
        hasher.close()


async def test_registration_waits_for_a_slot_too(database_url: str) -> None:
    bodies = [{"email": f"user{n}@example.com", "password": "a long password"} for n in range(2)]
    async with app_client(slow_hashing(database_url)) as client:
        responses = await asyncio.gather(*(client.post("/api/v1/users", json=b) for b in bodies))

    assert sorted(r.status_code for r in responses) == [201, 503]
    busy = next(r for r in responses if r.status_code == 503)
    assert_problem(busy, 503)
    assert busy.headers["Retry-After"] == "1"


@pytest.mark.parametrize(
    "wrong_password",
    ["not the password", unicodedata.normalize("NFD", "pas le mot de passe, hélas")],
    ids=["already-nfc", "nfd"],
)
async def test_an_unknown_account_costs_the_verifications_of_a_wrong_password(
    database_url: str, monkeypatch: pytest.MonkeyPatch, wrong_password: str
) -> None:
    """What is verified, and how often, is the same with or without an account."""
    verified: list[str] = []
    real_verify = Argon2Hasher.verify

    def counting_verify(self: Argon2Hasher, password: str | bytes, hash: str | bytes) -> bool:
        verified.append(str(password))
        return real_verify(self, password, hash)

    hasher = PasswordHasher(make_settings(database_url))
    try:
        stored = await hasher.hash("the right password")
        monkeypatch.setattr(Argon2Hasher, "verify", counting_verify)
        assert await hasher.verify(wrong_password, stored) == (False, None)
        for_an_account = verified.copy()
        verified.clear()
        assert await hasher.verify(wrong_password, None) == (False, None)
    finally:
        hasher.close()
    nfc = unicodedata.normalize("NFC", wrong_password)
    # The NFC form, then (only if it differs) the password as sent, for old hashes of it.
    assert for_an_account == list(dict.fromkeys([nfc, wrong_password]))
    assert verified == for_an_account
