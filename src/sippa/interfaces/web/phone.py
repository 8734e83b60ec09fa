"""What the web pages and the API need from the phone, and the event hub behind the SSE stream.

The web layer stays thin: it calls a :class:`PhoneService` (the app's :class:`Phone` through
:class:`PhoneAdapter`) and never builds SIP itself. Without a running phone (``phone=None``)
the pages still serve the configuration, and the call endpoints answer 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from sippa.app.call import Call
from sippa.app.phone import (
    CallChanged,
    CallError,
    DialPlanRefused,
    LineChanged,
    Phone,
    PhoneEvent,
)

__all__ = ["DialRefused", "EventHub", "PhoneAdapter", "PhoneService", "quality", "sse"]

log = logging.getLogger(__name__)

Listener = Callable[[str, dict[str, Any]], None]


class DialRefused(ValueError):
    """The line's dial plan refuses the number: ``status`` 403 if barred, else 422."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class PhoneService(Protocol):
    """The phone as the web sees it. Dicts are JSON-ready (``Call.as_dict()`` style).

    Commands raise KeyError for an unknown call and ValueError when the call cannot do that.
    """

    def lines(self) -> list[dict[str, Any]]: ...
    def calls(self) -> list[dict[str, Any]]: ...
    def history(self, count: int = 50) -> list[dict[str, Any]]: ...
    async def dial(self, target: str, line: int | None = None) -> dict[str, Any]: ...
    async def answer(self, call_id: str) -> None: ...
    async def hangup(self, call_id: str) -> None: ...
    async def hold(self, call_id: str, on: bool) -> None: ...
    async def dtmf(self, call_id: str, digits: str) -> None: ...
    async def transfer(self, call_id: str, target: str) -> None: ...
    def reload_trust(self) -> None:
        """The custom trust anchors changed: use them for new TLS connections."""
        ...

    def trace(self, call_id: str) -> dict[str, Any]:
        """A call's SIP trace: ``{"id", "call": dict | None, "entries": [...]}`` (KeyError when
        the phone has no trace of it)."""
        ...

    def traces(self) -> list[dict[str, Any]]:
        """The calls that have a trace, newest first: ``{"id", "call", "started", "messages"}``."""
        ...

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(kind, data)`` for each line or call event; returns an unsubscriber."""
        ...


class PhoneAdapter:
    """:class:`PhoneService` over the app's :class:`sippa.app.phone.Phone`."""

    def __init__(self, phone: Phone) -> None:
        self.phone = phone

    def lines(self) -> list[dict[str, Any]]:
        return [line.as_dict() for line in self.phone.lines.values()]

    def calls(self) -> list[dict[str, Any]]:
        return [
            {**c.as_dict(), "quality": quality(c)}
            for c in self.phone.calls.values()
            if not c.is_over
        ]

    def history(self, count: int = 50) -> list[dict[str, Any]]:
        if self.phone.history is None:
            return []
        return [e.as_dict() for e in self.phone.history.recent(count)]

    def _known(self, call_id: str) -> None:
        call = self.phone.calls.get(call_id)
        if call is None or call.is_over:
            raise KeyError(call_id)

    @staticmethod
    async def _guard(command: Awaitable[object]) -> None:
        try:
            await command
        except CallError as exc:
            raise ValueError(str(exc)) from None

    async def dial(self, target: str, line: int | None = None) -> dict[str, Any]:
        if line is not None and line not in self.phone.lines:
            raise ValueError(f"this phone has lines 1 to {len(self.phone.lines)}")
        try:
            call = await self.phone.dial(target, line)
        except DialPlanRefused as exc:
            raise DialRefused(str(exc), 403 if exc.barred else 422) from None
        except CallError as exc:
            raise ValueError(str(exc)) from None
        return call.as_dict()

    async def answer(self, call_id: str) -> None:
        self._known(call_id)
        await self._guard(self.phone.answer(call_id))

    async def hangup(self, call_id: str) -> None:
        self._known(call_id)
        await self._guard(self.phone.hangup(call_id))

    async def hold(self, call_id: str, on: bool) -> None:
        self._known(call_id)
        await self._guard(self.phone.hold(call_id) if on else self.phone.resume(call_id))

    async def dtmf(self, call_id: str, digits: str) -> None:
        self._known(call_id)
        await self._guard(self.phone.send_dtmf(digits, call_id))

    async def transfer(self, call_id: str, target: str) -> None:
        self._known(call_id)
        await self._guard(self.phone.transfer(target, call_id))

    def reload_trust(self) -> None:
        self.phone.reload_trust()

    def trace(self, call_id: str) -> dict[str, Any]:
        try:
            entries = self.phone.trace(call_id)
        except CallError:
            raise KeyError(call_id) from None
        call = self.phone.calls.get(call_id)
        return {
            "id": call_id,
            "call": call.as_dict() if call is not None else None,
            "entries": [e.as_dict() for e in entries],
        }

    def traces(self) -> list[dict[str, Any]]:
        out = []
        for call_id in self.phone.traced_calls():
            call = self.phone.calls.get(call_id)
            entries = self.phone.trace(call_id)
            out.append({
                "id": call_id,
                "call": call.as_dict() if call is not None else None,
                "started": entries[0].time if entries else None,
                "messages": len(entries),
            })
        return out

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        def on_event(event: PhoneEvent) -> None:
            if isinstance(event, LineChanged):
                listener("line", {**event.status, "line": event.line})
            elif isinstance(event, CallChanged):
                listener("call", {**event.info, "id": event.call, "state": event.state})

        return self.phone.subscribe(on_event)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def quality(call: Call) -> dict[str, Any] | None:
    """Call quality from the media stream's RTP/RTCP counters (RFC 3550 §6.4), for the plot."""
    if call.stream is None:
        return None
    s = call.stream.stats()
    return {
        "jitter_ms": _ms(s.jitter),
        "packets_lost": s.packets_lost,
        "rtt_ms": _ms(s.rtt),
        "remote_fraction_lost": s.remote_fraction_lost,
        "remote_jitter_ms": _ms(s.remote_jitter),
        "concealed_frames": s.concealed_frames,
        "auth_failures": s.auth_failures,
        "rejected_source": s.rejected_source,
    }


class EventHub:
    """Fans events out to every open event stream; safe to publish from any thread."""

    QUEUE = 256  # a stream that falls this far behind loses events (and the log says so)

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
