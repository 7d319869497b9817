"""Input types shared by every domain's schemas."""

from typing import Annotated

from pydantic import AfterValidator, Field


def _encodable(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


# Text PostgreSQL can store: no NUL characters (stated in the schema, so clients and
# schema-driven tools know) and no lone surrogates. Refused here they are a 422;
# reaching the database they would be a 500.
StorableText = Annotated[str, Field(pattern=r"^[^\x00]*$"), AfterValidator(_encodable)]
