"""Registration, log-in and bearer-token checks, end to end against real PostgreSQL.

Proves that registering never returns the hash and refuses a taken email whatever its
case (also when two requests race), that bad input is a 422 problem that never echoes
the password, that a wrong email and a wrong password are indistinguishable (same body,
similar time), that every unusable token (missing, malformed, foreign signature, wrong
audience or issuer, expired, not yet valid) is a 401 with ``WWW-Authenticate: Bearer``,
that expiry follows the injected clock with the configured leeway, and that a password
hash made with old Argon2 parameters is upgraded on the next successful log-in.
"""

import asyncio
import statistics
import time
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict
from uuid import uuid4

import httpx
import jwt
import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.auth.tokens import key_id
from app.core.config import Settings
from tests.support.accounts import (
    ME,
    PASSWORD,
    TOKEN,
    USERS,
    bearer,
    log_in,
    register,
    unique_email,
)
from tests.support.clients import FrozenClock, app_client
from tests.support.database import execute, fetch_column
from tests.support.problems import assert_problem
from tests.support.settings import make_settings

pytestmark = pytest.mark.anyio


def assert_unauthorized(response: httpx.Response) -> dict[str, Any]:
    body = assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"
    return body


class Forgery(TypedDict, total=False):
    key: str
    audience: str
    issuer: str


class Timing(TypedDict, total=False):
    issued_ago: timedelta
    valid_from_ago: timedelta
    expires_in: timedelta


def forged_token(
    settings: Settings,
    subject: str,
    *,
    key: str | None = None,
    audience: str | None = None,
    issuer: str | None = None,
    kid: str | None = None,
    issued_ago: timedelta = timedelta(0),
    valid_from_ago: timedelta = timedelta(0),
    expires_in: timedelta = timedelta(minutes=30),
) -> str:
    """A token with every required claim, signed, scoped, named and timed as the caller
    chooses: issued ``issued_ago``, valid from ``valid_from_ago`` until ``expires_in``."""
    now = datetime.now(UTC)
    claims = {
        "sub": subject,
        "iss": issuer or settings.jwt_issuer,
        "aud": audience or settings.jwt_audience,
        "iat": now - issued_ago,
        "nbf": now - valid_from_ago,
        "exp": now + expires_in,
    }
    signing_key = key or settings.jwt_secret_key.get_secret_value()
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims, signing_key, algorithm="HS256", headers=headers)


# Registration


async def test_register_returns_the_user_without_any_password_field(
    client: httpx.AsyncClient,
) -> None:
    email = unique_email()
    response = await client.post(USERS, json={"email": email, "password": PASSWORD})
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"id", "email", "created_at"}
    assert isinstance(body["id"], int)
    assert body["email"] == email
    datetime.fromisoformat(body["created_at"])
    assert PASSWORD not in response.text
    assert "argon2" not in response.text


async def test_register_refuses_a_taken_email_whatever_its_case(
    client: httpx.AsyncClient,
) -> None:
    local = f"Ada{uuid4().hex}"
    await register(client, f"{local}@example.com")
    response = await client.post(
        USERS, json={"email": f"{local.lower()}@EXAMPLE.com", "password": PASSWORD}
    )
    body = assert_problem(response, 409)
    assert body["instance"] == USERS


@pytest.mark.parametrize("length", [7, 129])
async def test_register_refuses_a_password_of_bad_length_without_echoing_it(
    client: httpx.AsyncClient, length: int
) -> None:
    password = ("Pw9" * 50)[:length]
    response = await client.post(USERS, json={"email": unique_email(), "password": password})
    body = assert_problem(response, 422)
    assert password not in response.text
    errors = body["errors"]
    assert isinstance(errors, list)
    assert errors
    for error in errors:
        assert set(error) == {"location", "message", "type"}
    assert ["body", "password"] in [error["location"] for error in errors]


async def test_register_refuses_an_unknown_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        USERS, json={"email": unique_email(), "password": PASSWORD, "is_admin": True}
    )
    body = assert_problem(response, 422)
    assert ["body", "is_admin"] in [error["location"] for error in body["errors"]]


@pytest.mark.parametrize(
    "email", ["not-an-email", "missing-at.example.com", "@example.com", "a@", "a b@example.com"]
)
async def test_register_refuses_an_invalid_email(client: httpx.AsyncClient, email: str) -> None:
    response = await client.post(USERS, json={"email": email, "password": PASSWORD})
    body = assert_problem(response, 422)
    assert ["body", "email"] in [error["location"] for error in body["errors"]]


async def test_register_refuses_a_nul_character_in_the_password_with_422(
    client: httpx.AsyncClient,
) -> None:
    password = "abc\x00defghij"
    response = await client.post(USERS, json={"email": unique_email(), "password": password})
    body = assert_problem(response, 422)
    assert "defghij" not in response.text
    assert ["body", "password"] in [error["location"] for error in body["errors"]]


async def test_concurrent_registrations_of_one_email_create_one_account(
    client: httpx.AsyncClient, database_url: str
) -> None:
    email = unique_email()
    first, second = await asyncio.gather(
        client.post(USERS, json={"email": email, "password": PASSWORD}),
        client.post(USERS, json={"email": email.upper(), "password": PASSWORD}),
    )
    statuses = sorted([first.status_code, second.status_code])
    assert statuses == [201, 409], (first.text, second.text)
    assert_problem(first if first.status_code == 409 else second, 409)
    # The email is a generated UUID address, safe to inline.
    query = f"SELECT count(*) FROM users WHERE lower(email) = lower('{email}')"  # noqa: S608
    count = await fetch_column(database_url, query)
    assert count == [1]


# One account per address, however it is spelled


def fullwidth(text: str) -> str:
    """``text`` in fullwidth forms (U+FF41 for ``a``), which NFKC maps back."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


SPELLINGS = {
    "surrounding spaces": lambda email: f"  {email}\t",
    "upper case": str.upper,
    "fullwidth": fullwidth,
}


@pytest.mark.parametrize("spell", SPELLINGS.values(), ids=SPELLINGS.keys())
async def test_every_spelling_of_an_email_is_one_account(
    client: httpx.AsyncClient, spell: Callable[[str], str]
) -> None:
    for registered_as, logged_in_as in ((str, spell), (spell, str)):
        email = unique_email()
        user = await register(client, registered_as(email))
        assert user["email"] == email  # stored in the canonical form
        token = await log_in(client, logged_in_as(email))
        assert (await client.get(ME, headers=bearer(token))).json() == user
        taken = {"email": logged_in_as(email), "password": PASSWORD}
        assert_problem(await client.post(USERS, json=taken), 409)


@pytest.mark.parametrize("registered_as", ["unicode", "punycode"])
async def test_an_idn_domain_in_unicode_or_punycode_is_one_account(
    client: httpx.AsyncClient, registered_as: str
) -> None:
    local = f"idn-{uuid4().hex}"
    spellings = {"unicode": f"{local}@bücher.example", "punycode": f"{local}@xn--bcher-kva.example"}
    other = spellings["punycode" if registered_as == "unicode" else "unicode"]
    user = await register(client, spellings[registered_as])
    assert user["email"] == spellings["unicode"]  # the canonical form keeps the domain in Unicode
    token = await log_in(client, other)
    assert (await client.get(ME, headers=bearer(token))).json() == user
    assert_problem(await client.post(USERS, json={"email": other, "password": PASSWORD}), 409)


@pytest.mark.parametrize(
    "look_alike",
    [
        "\u0430lice-{n}@example.com",  # a Cyrillic a in a Latin local part
        "alice-{n}@ex\u0430mple.com",  # and in a domain label
        "\u03bfscar-{n}@example.com",  # a Greek omicron
        "\u13aa\u13b3\u13a1-{n}@example.com",  # Cherokee, a script of limited use
    ],
    ids=["cyrillic-in-local-part", "cyrillic-in-domain", "greek-in-local-part", "cherokee"],
)
async def test_look_alike_addresses_are_refused_at_registration(
    client: httpx.AsyncClient, database_url: str, look_alike: str
) -> None:
    number = uuid4().int % 10**12
    response = await client.post(
        USERS, json={"email": look_alike.format(n=number), "password": PASSWORD}
    )
    body = assert_problem(response, 422)
    assert ["body", "email"] in [error["location"] for error in body["errors"]]
    query = "SELECT count(*) FROM users WHERE email LIKE :pattern"
    assert await fetch_column(database_url, query, pattern=f"%-{number}@%") == [0]


@pytest.mark.parametrize(
    "email",
    [
        "たなかtanaka-{n}@例え.jp",  # Hiragana with Latin, and Han with Hiragana
        "алиса{n}@пример.рф",  # Cyrillic throughout
        "jürgen-{n}@bücher.example",  # Latin with diacritics
    ],
    ids=["japanese-and-latin", "cyrillic", "latin"],
)
async def test_addresses_in_one_script_or_an_allowed_mixture_are_accounts(
    client: httpx.AsyncClient, email: str
) -> None:
    address = email.format(n=uuid4().int % 10**12)
    user = await register(client, address)
    assert user["email"] == address
    assert (await client.get(ME, headers=bearer(await log_in(client, address)))).json() == user


# Log-in


async def test_log_in_returns_a_bearer_token_for_the_right_password(
    client: httpx.AsyncClient,
) -> None:
    email = unique_email()
    await register(client, email)
    response = await client.post(TOKEN, data={"username": email, "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 1800
    assert isinstance(body["access_token"], str)
    assert body["access_token"]


async def test_log_in_accepts_the_email_in_another_case(client: httpx.AsyncClient) -> None:
    email = unique_email()
    await register(client, email)
    token = await log_in(client, email.upper())
    response = await client.get(ME, headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["email"] == email


async def test_wrong_password_and_unknown_email_are_the_same_401(
    client: httpx.AsyncClient,
) -> None:
    email = unique_email()
    await register(client, email)
    attempts = [
        (email, "nope-nope"),  # a wrong password
        (unique_email("ghost"), PASSWORD),  # an unknown email
        (email.replace("example", "\u0435xample"), PASSWORD),  # a look-alike: no address at all
        ("not an address", PASSWORD),
    ]
    responses = [
        await client.post(TOKEN, data={"username": username, "password": password})
        for username, password in attempts
    ]
    bodies = [assert_unauthorized(response) for response in responses]
    assert len({body.pop("request_id") for body in bodies}) == len(bodies)
    assert all(body == bodies[0] for body in bodies)
    assert {response.headers["WWW-Authenticate"] for response in responses} == {"Bearer"}


async def test_wrong_password_and_unknown_email_take_similar_time(
    client: httpx.AsyncClient,
) -> None:
    email = unique_email()
    await register(client, email)
    await client.post(TOKEN, data={"username": email, "password": "warm-up-1"})  # warm-up
    wrong_password: list[float] = []
    unknown_email: list[float] = []
    for _ in range(5):  # interleaved, so a slow moment of the machine hits both
        for durations, username in ((wrong_password, email), (unknown_email, unique_email())):
            start = time.perf_counter()
            response = await client.post(
                TOKEN, data={"username": username, "password": "wrong-password"}
            )
            durations.append(time.perf_counter() - start)
            assert response.status_code == 401
    slow, fast = sorted([statistics.median(wrong_password), statistics.median(unknown_email)])
    assert slow < 3 * fast, (wrong_password, unknown_email)


async def test_log_in_without_the_form_fields_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(TOKEN, data={"username": unique_email()})
    body = assert_problem(response, 422)
    assert ["body", "password"] in [error["location"] for error in body["errors"]]


# The current user and its token


async def test_me_returns_the_user_the_token_belongs_to(client: httpx.AsyncClient) -> None:
    email = unique_email()
    user = await register(client, email)
    response = await client.get(ME, headers=bearer(await log_in(client, email)))
    assert response.status_code == 200
    assert response.json() == user


async def test_me_without_a_token_is_401(client: httpx.AsyncClient) -> None:
    body = assert_unauthorized(await client.get(ME))
    assert body["instance"] == ME


@pytest.mark.parametrize(
    "authorization", ["Bearer abc", "Bearer a.b.c", "Bearer ", "Basic dXNlcjpwYXNz", "abc"]
)
async def test_me_with_a_malformed_token_is_401(
    client: httpx.AsyncClient, authorization: str
) -> None:
    assert_unauthorized(await client.get(ME, headers={"Authorization": authorization}))


@pytest.mark.parametrize(
    "forgery",
    [
        {"key": "another-secret-" + "k" * 40},
        {"audience": "another-service"},
        {"issuer": "another-issuer"},
    ],
    ids=["another-secret", "another-audience", "another-issuer"],
)
async def test_me_with_a_wrongly_signed_or_scoped_token_is_401(
    client: httpx.AsyncClient, settings: Settings, forgery: Forgery
) -> None:
    user = await register(client, unique_email())
    token = forged_token(settings, str(user["id"]), **forgery)
    assert_unauthorized(await client.get(ME, headers=bearer(token)))


@pytest.mark.parametrize("subject", ["\u00b2", "99999999999999999999", "0", "-1", "abc"])
async def test_correctly_signed_token_naming_no_account_is_401(
    client: httpx.AsyncClient, settings: Settings, subject: str
) -> None:
    """Even a validly signed token must not reach the database with a bogus subject."""
    assert_unauthorized(await client.get(ME, headers=bearer(forged_token(settings, subject))))


@pytest.mark.parametrize("expires_at", [10**20, 1.5e300])
async def test_correctly_signed_token_with_absurd_expiry_is_401(
    client: httpx.AsyncClient, settings: Settings, expires_at: float
) -> None:
    user = await register(client, unique_email())
    claims = {
        "sub": str(user["id"]),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": 0,
        "nbf": 0,
        "exp": expires_at,
    }
    token = jwt.encode(claims, settings.jwt_secret_key.get_secret_value(), algorithm="HS256")
    assert_unauthorized(await client.get(ME, headers=bearer(token)))


@pytest.mark.parametrize(
    "timing",
    [
        {"expires_in": datetime(2200, 1, 1, tzinfo=UTC) - datetime.now(UTC)},
        {"expires_in": timedelta(minutes=30, seconds=31)},  # just past lifetime plus leeway
        {"issued_ago": timedelta(days=1), "expires_in": timedelta(minutes=10)},
        {"valid_from_ago": timedelta(days=1), "expires_in": timedelta(minutes=10)},
    ],
    ids=["expires-in-2200", "just-too-long", "issued-long-before", "valid-long-before"],
)
async def test_correctly_signed_token_living_longer_than_the_lifetime_is_401(
    client: httpx.AsyncClient, settings: Settings, timing: Timing
) -> None:
    """Tokens live ACCESS_TOKEN_EXPIRE_MINUTES (30) plus JWT_LEEWAY_SECONDS (30) at most."""
    user = await register(client, unique_email())
    token = forged_token(settings, str(user["id"]), **timing)
    assert_unauthorized(await client.get(ME, headers=bearer(token)))


async def test_correctly_signed_token_of_the_longest_lifetime_is_accepted(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    user = await register(client, unique_email())
    token = forged_token(settings, str(user["id"]), expires_in=timedelta(minutes=30, seconds=30))
    assert (await client.get(ME, headers=bearer(token))).json() == user


async def test_forged_token_builder_is_accepted_with_the_right_key(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """Control for the forged tokens above: only the altered part makes them fail."""
    user = await register(client, unique_email())
    response = await client.get(ME, headers=bearer(forged_token(settings, str(user["id"]))))
    assert response.status_code == 200
    assert response.json() == user


async def test_token_expires_after_its_lifetime_plus_leeway(database_url: str) -> None:
    clock = FrozenClock(datetime.now(UTC))
    async with app_client(make_settings(database_url), clock=clock) as client:
        email = unique_email()
        await register(client, email)
        headers = bearer(await log_in(client, email))
        assert (await client.get(ME, headers=headers)).status_code == 200

        clock.advance(minutes=30, seconds=29)  # past exp, within JWT_LEEWAY_SECONDS=30
        assert (await client.get(ME, headers=headers)).status_code == 200

        clock.advance(seconds=2)
        assert_unauthorized(await client.get(ME, headers=headers))


async def test_signing_keys_rotate_without_logging_anyone_out(database_url: str) -> None:
    """The README's procedure: sign with the new key, keep the old one verifying for a
    token lifetime, then remove it."""
    old, new, stranger = "o" * 40, "n" * 40, "s" * 40
    async with app_client(make_settings(database_url, jwt_secret_key=old)) as client:
        email = unique_email()
        user = await register(client, email)
        old_token = await log_in(client, email)
    assert jwt.get_unverified_header(old_token)["kid"] == key_id(old)

    rotated = make_settings(database_url, jwt_secret_key=new, jwt_previous_keys=[old])
    async with app_client(rotated) as client:
        assert (await client.get(ME, headers=bearer(old_token))).status_code == 200
        new_token = await log_in(client, email)
    assert jwt.get_unverified_header(new_token)["kid"] == key_id(new)

    settings = make_settings(database_url, jwt_secret_key=new)
    async with app_client(settings) as client:
        assert (await client.get(ME, headers=bearer(new_token))).status_code == 200
        assert_unauthorized(await client.get(ME, headers=bearer(old_token)))
        subject = str(user["id"])
        unknown = forged_token(settings, subject, key=stranger, kid=key_id(stranger))
        assert_unauthorized(await client.get(ME, headers=bearer(unknown)))
        impostor = forged_token(settings, subject, key=stranger, kid=key_id(new))
        assert_unauthorized(await client.get(ME, headers=bearer(impostor)))


async def test_token_used_before_its_not_before_time_is_401(database_url: str) -> None:
    clock = FrozenClock(datetime.now(UTC))
    async with app_client(make_settings(database_url), clock=clock) as client:
        email = unique_email()
        await register(client, email)
        headers = bearer(await log_in(client, email))

        clock.advance(minutes=-2)  # well beyond the 30 s leeway
        assert_unauthorized(await client.get(ME, headers=headers))

        clock.advance(minutes=2)
        assert (await client.get(ME, headers=headers)).status_code == 200


# Password hash upgrade


async def test_log_in_upgrades_a_hash_made_with_older_parameters(database_url: str) -> None:
    email = unique_email()
    # The email is a generated UUID address, safe to inline.
    query = f"SELECT password_hash FROM users WHERE lower(email) = lower('{email}')"  # noqa: S608
    async with app_client(make_settings(database_url)) as client:
        await register(client, email)
    [original] = await fetch_column(database_url, query)
    assert original.startswith("$argon2id$")
    assert "t=1" in original

    stronger = make_settings(database_url, password_hash_time_cost=2)
    async with app_client(stronger) as client:
        await log_in(client, email)
        [upgraded] = await fetch_column(database_url, query)
        assert upgraded != original
        assert upgraded.startswith("$argon2id$")
        assert "t=2" in upgraded

        token = await log_in(client, email)  # the upgraded hash verifies too
        assert (await client.get(ME, headers=bearer(token))).status_code == 200
        assert await fetch_column(database_url, query) == [upgraded]  # no further rehash

        wrong = await client.post(TOKEN, data={"username": email, "password": "not-it-at-all"})
        assert_unauthorized(wrong)


# Passwords are compared in NFC

NFC_PASSWORD = unicodedata.normalize("NFC", "crème brûlée à l'été")
NFD_PASSWORD = unicodedata.normalize("NFD", NFC_PASSWORD)


@pytest.mark.parametrize(
    ("registered_with", "logged_in_with"),
    [(NFC_PASSWORD, NFD_PASSWORD), (NFD_PASSWORD, NFC_PASSWORD)],
    ids=["nfc-then-nfd", "nfd-then-nfc"],
)
async def test_a_password_opens_its_account_in_either_normalisation_form(
    client: httpx.AsyncClient, registered_with: str, logged_in_with: str
) -> None:
    assert NFC_PASSWORD != NFD_PASSWORD
    email = unique_email()
    user = await register(client, email, registered_with)
    token = await log_in(client, email, logged_in_with)
    assert (await client.get(ME, headers=bearer(token))).json() == user


async def test_a_hash_made_from_an_unnormalised_password_opens_and_is_replaced(
    client: httpx.AsyncClient, settings: Settings, database_url: str
) -> None:
    """An account from before passwords were normalised: its hash is of the NFD password
    as sent, and its email in the spelling registration kept then (capitals and all)."""
    argon2 = PasswordHash(
        (
            Argon2Hasher(
                time_cost=settings.password_hash_time_cost,
                memory_cost=settings.password_hash_memory_kib,
                parallelism=settings.password_hash_parallelism,
            ),
        )
    )
    email = unique_email("Legacy")
    await execute(
        database_url,
        "INSERT INTO users (email, password_hash) VALUES (:email, :hash)",
        email=email,
        hash=argon2.hash(NFD_PASSWORD),
    )
    [user_id] = await fetch_column(database_url, "SELECT id FROM users WHERE email = :e", e=email)
    query = "SELECT password_hash FROM users WHERE id = :id"
    # Until then only what was hashed opens it: the NFC form was never hashed.
    assert_unauthorized(
        await client.post(TOKEN, data={"username": email, "password": NFC_PASSWORD})
    )

    token = await log_in(client, email.lower(), NFD_PASSWORD)
    assert (await client.get(ME, headers=bearer(token))).json()["id"] == user_id
    [replaced] = await fetch_column(database_url, query, id=user_id)
    assert argon2.verify(NFC_PASSWORD, replaced)  # a hash of the NFC form now
    assert not argon2.verify(NFD_PASSWORD, replaced)

    await log_in(client, email, NFC_PASSWORD)  # either form opens it from now on
    await log_in(client, email, NFD_PASSWORD)
    assert await fetch_column(database_url, query, id=user_id) == [replaced]  # no further rehash
