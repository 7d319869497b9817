"""The ``items`` table. Lengths are stated here once; the schemas check the same ones."""

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.db.columns import BigIntPrimaryKey, CreatedAt, UpdatedAt

TITLE_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 10_000


class Item(Base):
    __tablename__ = "items"

    id: Mapped[BigIntPrimaryKey]
    owner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(TITLE_MAX_LENGTH))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


# One owner's items in key order: a page (owner, newest first, older than the cursor) is a
# range of this index however many items there are, and a read by id may use it too.
# It also serves the foreign key: deleting an account finds its items by the first column.
Index("ix_items_owner_id_id", Item.owner_id, Item.id)
