"""What the items API reads and writes: bodies are checked here, before any use case runs."""

from datetime import datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.types import StorableText
from app.items.models import DESCRIPTION_MAX_LENGTH, TITLE_MAX_LENGTH


class ItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: StorableText = Field(min_length=1, max_length=TITLE_MAX_LENGTH)
    description: StorableText | None = Field(default=None, max_length=DESCRIPTION_MAX_LENGTH)


class ItemUpdate(BaseModel):
    """Only the fields sent are changed; ``description: null`` clears it."""

    model_config = ConfigDict(extra="forbid")

    title: StorableText | None = Field(default=None, min_length=1, max_length=TITLE_MAX_LENGTH)
    description: StorableText | None = Field(default=None, max_length=DESCRIPTION_MAX_LENGTH)

    @model_validator(mode="after")
    def _title_cannot_be_cleared(self) -> Self:
        if "title" in self.model_fields_set and self.title is None:
            raise ValueError("title cannot be null")
        return self


class ItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    description: str | None
    created_at: datetime
    updated_at: datetime
