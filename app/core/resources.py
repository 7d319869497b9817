"""What the lifespan builds once per worker, reached by name and type from any request.

The lifespan puts each resource in the state it yields, which the server copies into
every request's scope. A ``Resource`` is the name of one entry together with its type,
declared beside the class it holds: the lifespan stores through it and readers
(dependencies, middleware, endpoints) get the object typed, with no cast and no
string to misspell.
"""

from typing import Any, Generic, TypeVar

from starlette.requests import Request
from starlette.types import Scope

T = TypeVar("T")


class Resource(Generic[T]):
    def __init__(self, name: str) -> None:
        self.name = name

    def put(self, state: dict[str, Any], value: T) -> None:
        state[self.name] = value

    def of(self, scope: Scope) -> T:
        """The resource, from an ASGI scope (for middleware)."""
        value: T = scope["state"][self.name]
        return value

    async def __call__(self, request: Request) -> T:
        """The resource, as a FastAPI dependency: ``Depends(DATABASE)``."""
        return self.of(request.scope)
