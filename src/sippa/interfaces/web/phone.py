"""What the web pages and the API need from the phone, and the event hub behind the SSE stream.

The web layer stays thin: it calls a :class:`PhoneService` (the app's phone, through a small
adapter) and never builds SIP itself. Without a running phone (``phone=None``) the pages still
serve the configuration, and the call endpoints answer 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

Listener = Callable[[str, dict[str, Any]], None]


class PhoneService(Protocol):
    """The phone as the web sees it. Dicts are JSON-ready (``Call.as_dict()`` style)."""

    def lines(self) -> list[dict[str, Any]]: ...
    def calls(self) -> list[dict[str, Any]]: ...
    def history(self, count: int = 50) -> list[dict[str, Any]]: ...
    async def dial(self, target: str, line: int | None = None) -> dict[str, Any]: ...
    async def answer(self, call_id: str) -> None: ...
    async def hangup(self, call_id: str) -> None: ...
    async def hold(self, call_id: str, on: bool) -> None: ...
    async def dtmf(self, call_id: str, digits: str) -> None: ...
    async def transfer(self, call_id: str, target: str) -> None: ...
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(kind, data)`` for each line or call event; returns an unsubscriber."""
        ...


class EventHub:
    """Fans events out to every open event stream; safe to publish from any thread."""

    QUEUE = 256  # a stream that falls this far behind loses events (and is told so)

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[tuple[str, dict[str, Any]]]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._deliver(kind, data)
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._deliver, kind, data)

    def _deliver(self, kind: str, data: dict[str, Any]) -> None:
        for q in list(self._queues):
            try:
                q.put_nowait((kind, data))
            except asyncio.QueueFull:
                log.warning("an event stream is too slow: dropping an event")

    @contextlib.asynccontextmanager
    async def stream(self) -> AsyncIterator[asyncio.Queue[tuple[str, dict[str, Any]]]]:
        self.bind(asyncio.get_running_loop())
        q: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(self.QUEUE)
        self._queues.add(q)
        try:
            yield q
        finally:
            self._queues.discard(q)

    @property
    def listeners(self) -> int:
        return len(self._queues)


def sse(kind: str, data: dict[str, Any]) -> bytes:
    """One server-sent event (WHATWG HTML §9.2): ``event:`` and a single-line JSON ``data:``."""
    return f"event: {kind}\ndata: {json.dumps(data, default=str)}\n\n".encode()
