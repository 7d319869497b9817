"""Index items by (owner_id, id), replacing the index on owner_id alone.

A page of one owner's items, newest first, is then a range of the index instead of
every one of the owner's rows sorted.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 16:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # On a large table that takes writes, build it with postgresql_concurrently=True
    # inside ``with op.get_context().autocommit_block():``, so writes are not blocked.
    op.create_index("ix_items_owner_id_id", "items", ["owner_id", "id"], unique=False)
    op.drop_index("ix_items_owner_id", table_name="items")


def downgrade() -> None:
    op.create_index("ix_items_owner_id", "items", ["owner_id"], unique=False)
    op.drop_index("ix_items_owner_id_id", table_name="items")
