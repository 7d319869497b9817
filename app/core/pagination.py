"""Keyset (cursor) pagination: opaque, signed cursors and the page envelope.

A cursor records where the previous page ended, so each page costs O(limit) however
deep it is and stays stable while rows are inserted. It is signed, so a client can
neither forge one nor make the server trust a position it did not hand out.
"""

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Collection, Mapping
from typing import Annotated, Generic, TypeVar

from fastapi import Depends
from pydantic import BaseModel

from app.core.errors import InvalidInputError
from app.core.resources import Resource

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
_SIGNATURE_BYTES = 16
_NOT_VALID = "The cursor is not valid."


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    def __init__(self, secret: bytes) -> None:
        # A key of its own, derived from the app secret: a cursor is never a token.
        self._key = hmac.digest(secret, b"pagination-cursor", hashlib.sha256)

    def _sign(self, payload: bytes) -> bytes:
        return hmac.digest(self._key, payload, hashlib.sha256)[:_SIGNATURE_BYTES]

    def encode(self, position: Mapping[str, int]) -> str:
        payload = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
        return f"{_b64encode(payload)}.{_b64encode(self._sign(payload))}"

    def decode(self, cursor: str, *, fields: Collection[str], maximum: int) -> dict[str, int]:
        """The position a cursor records: exactly ``fields``, each an integer from 1 to
        ``maximum`` (the largest id the column holds).

        InvalidInputError if it is not one we issued, or if it is signed but of another
        shape (another version's, another resource's): a 400 whose detail, like the
        log, says nothing of what the cursor held.
        """
        try:
            payload_text, signature_text = cursor.split(".")
            payload, signature = _b64decode(payload_text), _b64decode(signature_text)
        except (ValueError, binascii.Error):
            raise InvalidInputError("The cursor is malformed.") from None
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise InvalidInputError(_NOT_VALID)
        try:
            position = json.loads(payload)
        except ValueError:  # not JSON, not UTF-8
            raise InvalidInputError(_NOT_VALID) from None
        if not (isinstance(position, dict) and position.keys() == set(fields)):
            raise InvalidInputError(_NOT_VALID)
        # type() rather than isinstance(): ``true`` is no position either.
        if not all(type(value) is int and 0 < value <= maximum for value in position.values()):
            raise InvalidInputError(_NOT_VALID)
        return position


CURSOR_CODEC = Resource[CursorCodec]("cursor_codec")
CursorCodecDep = Annotated[CursorCodec, Depends(CURSOR_CODEC)]
