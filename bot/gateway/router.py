"""Handler registry: handlers register for a message/event kind (optionally a ChangeType),
and receive only the dependencies their signature names (as aiogram's dispatcher does)."""
from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping

from bot.gateway.messages import WeComMessage

log = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[Any]]


class MissingDependency(RuntimeError):
    pass


@dataclass(frozen=True)
class _Route:
    kind: str
    change_type: str | None
    handler: Handler
    params: tuple[str, ...]
    optional: frozenset[str]


class Router:
    def __init__(self) -> None:
        self._routes: list[_Route] = []

    def on(self, kind: str, change_type: str | None = None) -> Callable[[Handler], Handler]:
        """`@router.on("text")`, `@router.on("event:change_external_contact", "add_external_contact")`."""

        def deco(fn: Handler) -> Handler:
            self.add(kind, fn, change_type)
            return fn

        return deco

    def add(self, kind: str, fn: Handler, change_type: str | None = None) -> None:
        sig = inspect.signature(fn).parameters
        params = tuple(sig)
        if not params:
            raise TypeError(f"handler {fn.__name__} must take the message as its first parameter")
        optional = frozenset(n for n, p in sig.items() if p.default is not inspect.Parameter.empty)
        self._routes.append(_Route(kind, change_type, fn, params[1:], optional))

    def include(self, other: "Router") -> None:
        self._routes.extend(other._routes)

    def handlers_for(self, message: WeComMessage) -> list[_Route]:
        change = message.raw.get("ChangeType")
        return [
            r for r in self._routes
            if (r.kind == message.kind or r.kind == "*") and (r.change_type is None or r.change_type == change)
        ]

    async def dispatch(self, message: WeComMessage, deps: Mapping[str, Any]) -> int:
        """Run every matching handler; returns how many ran. A handler's exception propagates
        so that the worker leaves the entry pending for a retry."""
        routes = self.handlers_for(message)
        if not routes:
            log.info("no handler for callback", extra={"kind": message.kind})
        for route in routes:
            kwargs = {}
            for name in route.params:
                if name in deps:
                    kwargs[name] = deps[name]
                elif name not in route.optional:
                    raise MissingDependency(f"handler {route.handler.__name__} needs {name!r}")
            await route.handler(message, **kwargs)
        return len(routes)
