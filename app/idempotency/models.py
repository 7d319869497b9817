"""The ``idempotency_keys`` table: a keyed write's outcome, stored with the write itself."""

from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, SmallInteger, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.db.columns import CreatedAt

KEY_MAX_LENGTH = 255


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    # Expired keys are found by age, whoever they belong to.
    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)

    # Keys are the caller's: two users may pick the same one.
    owner_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(KEY_MAX_LENGTH), primary_key=True)
    # SHA-256 of the operation and its body: a repeat must be the same request.
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(SmallInteger)
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[CreatedAt]
