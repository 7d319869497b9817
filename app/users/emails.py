"""Email addresses in one canonical form: the account's key, for registering and logging in.

An address is stripped, NFKC-normalised (a fullwidth A is an A, ligatures come
apart), lower-cased and checked with ``email-validator``, which maps the domain with
IDNA (UTS 46) to Unicode labels. The canonical form keeps the domain in Unicode
(``user@bücher.example``), and its punycode spelling (``user@xn--bcher-kva.example``)
names the same account. So one address has one spelling, whatever the client sent,
and ``users.email`` holds it. Accounts registered before this module have their domain
in that form too (``email-validator`` gave it) and their local part in the case it
was typed in, which the repository's case-insensitive lookup matches; they need no
rewriting (see the README on the few this refuses).

Look-alikes are refused: the local part and each domain label must each be written in
one script (UTS 39 "highly restrictive": Latin may go with Han, Hiragana and Katakana,
with Han and Bopomofo, or with Han and Hangul), from the scripts Unicode recommends for
identifiers (UTS 31, table 5). ``paypal`` with a Cyrillic a in it is not an address here;
historic and limited-use scripts, where many more Latin look-alikes live (Cherokee
has an A), are refused too.
"""

import unicodedata
from typing import Annotated

import regex
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from app.core.types import StorableText
from app.users.models import EMAIL_MAX_LENGTH

# UTS 31 table 5 (Recommended Scripts): each may be used alone. The East Asian ones are
# in the mixtures UTS 39 "highly restrictive" allows, which cover each of theirs alone too.
_SCRIPTS = (
    "Arab Armn Beng Cyrl Deva Ethi Geor Grek Gujr Guru Hebr Khmr Knda Laoo Mlym Mymr Orya Sinh "
    "Taml Telu Thaa Thai Tibt"
)
_MIXTURES = ("Latn Hani Hira Kana", "Latn Hani Bopo", "Latn Hani Hang")


def _letters_of(scripts: str) -> str:
    """Characters of these scripts (Script_Extensions), or of none (digits, ``.``, marks)."""
    properties = "".join(rf"\p{{scx={script}}}" for script in ("Zyyy", "Zinh", *scripts.split()))
    return f"[{properties}]*+"


_ONE_SCRIPT = regex.compile(
    "|".join(_letters_of(group) for group in (*_SCRIPTS.split(), *_MIXTURES))
)


class InvalidEmailError(ValueError):
    """Not an address an account can have; the message says why."""


def canonical_email(address: str) -> str:
    """The canonical form of ``address``; InvalidEmailError if it cannot be an account's."""
    text = unicodedata.normalize("NFKC", address).strip().lower()
    try:
        parts = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmailError(str(exc)) from None
    for part in (parts.local_part, *parts.domain.split(".")):
        if not (part.isascii() or _ONE_SCRIPT.fullmatch(part)):
            raise InvalidEmailError(
                "It mixes scripts within the local part or a domain label (such as Latin and "
                "Cyrillic), or uses a script not recommended for identifiers."
            )
    return f"{parts.local_part}@{parts.domain}"


def _canonical_or_422(address: str) -> str:
    try:
        return canonical_email(address)
    except InvalidEmailError as exc:
        # The error pydantic's EmailStr gave, so clients see the same 422 as before.
        message = "value is not a valid email address: {reason}"
        raise PydanticCustomError("value_error", message, {"reason": str(exc)}) from None


# The request field: a 422 when the address cannot be an account's, else its canonical form.
EmailAddress = Annotated[
    StorableText,
    Field(max_length=EMAIL_MAX_LENGTH, json_schema_extra={"format": "email"}),
    AfterValidator(_canonical_or_422),
]
