"""Input types shared by every domain's schemas."""

from typing import Annotated

from pydantic import AfterValidator


def _storable_text(value: str) -> str:
    """Reject what PostgreSQL cannot store in text: NUL characters and lone surrogates.

    Caught here they are a 422 for the client; caught by the database, a 500.
    """
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


StorableText = Annotated[str, AfterValidator(_storable_text)]
