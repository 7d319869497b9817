"""Every table of the service, imported in one place so Alembic sees them all.

Adding a resource adds its ``models`` import here.
"""

from app.idempotency.models import IdempotencyKey
from app.items.models import Item  # example:items
from app.users.models import User

__all__ = [
    "IdempotencyKey",
    "Item",  # example:items
    "User",
]
