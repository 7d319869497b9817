from sqlalchemy import BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.db.columns import BigIntPrimaryKey, CreatedAt, UpdatedAt

TITLE_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 10_000


class Item(Base):
    __tablename__ = "items"

    id: Mapped[BigIntPrimaryKey]
    owner_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(TITLE_MAX_LENGTH))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
