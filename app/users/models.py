"""The ``users`` table: the account an access token names."""

from sqlalchemy import Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.db.columns import BigIntPrimaryKey, CreatedAt, UpdatedAt

EMAIL_MAX_LENGTH = 320


class User(Base):
    __tablename__ = "users"

    id: Mapped[BigIntPrimaryKey]
    email: Mapped[str] = mapped_column(String(EMAIL_MAX_LENGTH))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


# Emails are unique whatever their case: Ada@x and ada@x are one account.
Index("uq_users_email_lower", func.lower(User.email), unique=True)
