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
has an A), are refused too. A letter's script is the first word of its Unicode name
(``CYRILLIC SMALL LETTER A``), which the standard library knows: a script-property
regex engine would add 9 MB to every worker for the same answers on these scripts.
"""

import unicodedata
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from app.core.types import StorableText
from app.users.models import EMAIL_MAX_LENGTH

# UTS 31 table 5 (Recommended Scripts), by the word their letters' names begin with;
# each may be used alone. The East Asian ones are in the mixtures below.
_RECOMMENDED_SCRIPTS = frozenset(
    {
        "ARABIC",
        "ARMENIAN",
        "BENGALI",
        "CYRILLIC",
        "DEVANAGARI",
        "ETHIOPIC",
        "GEORGIAN",
        "GREEK",
        "GUJARATI",
        "GURMUKHI",
        "HEBREW",
        "KANNADA",
        "KHMER",
        "LAO",
        "LATIN",
        "MALAYALAM",
        "MYANMAR",
        "ORIYA",
        "SINHALA",
        "TAMIL",
        "TELUGU",
        "THAANA",
        "THAI",
        "TIBETAN",
    }
)
_ALLOWED_MIXTURES = tuple(
    frozenset(mixture.split())
    for mixture in ("LATIN CJK HIRAGANA KATAKANA", "LATIN CJK BOPOMOFO", "LATIN CJK HANGUL")
)
# The combining diacritical mark blocks: accents shared by every script.
_SHARED_MARKS = (
    ("\u0300", "\u036f"),
    ("\u1ab0", "\u1aff"),
    ("\u1dc0", "\u1dff"),
    ("\u20d0", "\u20ff"),
    ("\ufe20", "\ufe2f"),
)
# Letters named otherwise than by their script: the Japanese length mark (both kana
# use it) and the Han iteration marks.
_SCRIPT_OF_NAME = {"KATAKANA-HIRAGANA": None, "IDEOGRAPHIC": "CJK"}


def _script(character: str) -> str | None:
    """A letter's or mark's script; None for an accent that any script may carry."""
    if any(start <= character <= end for start, end in _SHARED_MARKS):
        return None
    words = unicodedata.name(character, "UNNAMED").split(" ", 2)
    if words[0] == "COMBINING":  # COMBINING CYRILLIC TITLO, COMBINING GLAGOLITIC LETTER A
        return words[1]
    return _SCRIPT_OF_NAME.get(words[0], words[0])


def _scripts(part: str) -> set[str] | None:
    """The scripts of ``part``'s letters and marks; None if it holds anything else
    outside ASCII: symbols, digits of other scripts, unassigned code points."""
    scripts: set[str] = set()
    for character in part:
        if unicodedata.category(character)[0] in "LM":
            script = _script(character)
            if script is not None:
                scripts.add(script)
        elif not character.isascii():
            return None
    return scripts


def _in_one_script(part: str) -> bool:
    scripts = _scripts(part)
    if scripts is None:
        return False
    if len(scripts) <= 1 and scripts <= _RECOMMENDED_SCRIPTS:
        return True
    return any(scripts <= mixture for mixture in _ALLOWED_MIXTURES)


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
        if not (part.isascii() or _in_one_script(part)):
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
