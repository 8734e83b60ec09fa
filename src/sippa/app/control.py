"""The local control channel: JSON lines over a Unix socket (mode 0600), and what each op does.

One request per line, one answer per line::

    {"op": "call", "target": "echo", "duration": 3}
    {"ok": true, "call": {...}}
    {"op": "config_set", "key": "proxy", "line": 1, "value": "example.test"}
    {"ok": false, "error": "Proxy (Ext 1): ..."}

:class:`Controller` holds the logic (the CLI uses it in-process too when no daemon runs); the
socket server and :func:`control_request` only move JSON. The web/REST API of the next issue
calls the same Phone methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sippa.app.call import Call, CallState
from sippa.app.phone import CallError, Phone
from sippa.app.settings import SCHEMA, Kind, SettingError, format_value
from sippa.app.store import ConfigStore
from sippa.errors import ProtocolError
from sippa.media import AudioSink, AudioSource, ToneSource, WavFileSource, WavRecorder

__all__ = ["ControlError", "Controller", "control_request", "serve_control"]

log = logging.getLogger(__name__)

MAX_LINE = 1 << 16


class ControlError(Exception):
    """An operation that failed (the message is for people)."""


def _int(value: object, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ControlError(f"{name} must be a number")
    try:
        return int(value)
    except ValueError:
        raise ControlError(f"{name} must be a number") from None


class Controller:
    """Carries out control operations on a phone (and its settings)."""

    def __init__(self, phone: Phone | None, store: ConfigStore) -> None:
        self.phone = phone
        self.store = store
        self._ops: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            "status": self._status,
            "call": self._call,
            "answer": self._answer,
            "reject": self._reject,
            "hangup": self._hangup,
            "hold": self._hold,
            "resume": self._resume,
            "dtmf": self._dtmf,
            "transfer": self._transfer,
            "history": self._history,
            "config_get": self._config_get,
            "config_set": self._config_set,
        }

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run one request; never raises for a bad request or a failed operation."""
        op = request.get("op")
        handler = self._ops.get(op) if isinstance(op, str) else None
        if handler is None:
            return {"ok": False, "error": f"unknown operation {op!r}"}
        try:
            result = await handler(request)
        except (ControlError, CallError) as exc:
            return {"ok": False, "error": str(exc)}
        except SettingError as exc:
            return {"ok": False, "error": str(exc)}
        except ProtocolError as exc:
            return {"ok": False, "error": exc.reason}
        except (KeyError, ValueError, OSError) as exc:
            text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            return {"ok": False, "error": str(text)}
        return {"ok": True, **result}

    def _phone(self) -> Phone:
        if self.phone is None:
            raise ControlError("the phone is not running")
        return self.phone

    # --- ops ----------------------------------------------------------------------------------
    async def _status(self, req: dict[str, Any]) -> dict[str, Any]:
        return self._phone().status()

    async def _call(self, req: dict[str, Any]) -> dict[str, Any]:
        """Dial; with ``wait`` (default) follow the call: answer, DTMF, duration, hang up."""
        phone = self._phone()
        target = req.get("target")
        if not isinstance(target, str) or not target:
            raise ControlError("call needs a target")
        source: AudioSource | None = None
        sink: AudioSink | None = None
        if req.get("play"):
            source = WavFileSource(Path(str(req["play"])), loop=bool(req.get("loop", True)))
        elif req.get("tone"):
            source = ToneSource(float(req["tone"]))
        if req.get("record"):
            sink = WavRecorder(Path(str(req["record"])))
        call = await phone.dial(target, _int(req.get("line"), "line"), source=source, sink=sink)
        if not req.get("wait", True):
            return {"call": call.as_dict()}
        answer_timeout = float(req.get("answer_timeout", 60))
        with contextlib.suppress(TimeoutError):
            await phone.wait_call(call.id, lambda c: c.state is CallState.ACTIVE or c.is_over,
                                  answer_timeout)
        if call.state is not CallState.ACTIVE:
            if not call.is_over:
                await phone.hangup(call.id, reason="no answer")
                await self._until_over(phone, call)
            return {"call": call.as_dict(), "answered": False}
        connected = call.as_dict()
        dtmf = req.get("dtmf")
        if dtmf:
            await asyncio.sleep(0.3)
            await phone.send_dtmf(str(dtmf), call.id)
        duration = req.get("duration")
        with contextlib.suppress(TimeoutError):
            await phone.wait_call(call.id, lambda c: c.is_over,
                                  float(duration) if duration is not None else 86400.0)
        if not call.is_over:
            await phone.hangup(call.id)
            await self._until_over(phone, call)
        ended = call.as_dict()
        # the verdict while the call was up (after it ends media is stopped)
        ended["security"] = connected["security"]
        ended["packets_received"] = max(ended["packets_received"], connected["packets_received"])
        return {"call": ended, "answered": True}

    @staticmethod
    async def _until_over(phone: Phone, call: Call) -> None:
        with contextlib.suppress(TimeoutError):
            await phone.wait_call(call.id, lambda c: c.is_over, 10)

    async def _answer(self, req: dict[str, Any]) -> dict[str, Any]:
        call = await self._phone().answer(req.get("call"))
        return {"call": call.as_dict()}

    async def _reject(self, req: dict[str, Any]) -> dict[str, Any]:
        status = _int(req.get("status"), "status") or 486
        call = await self._phone().reject(req.get("call"), status)
        return {"call": call.as_dict()}

    async def _hangup(self, req: dict[str, Any]) -> dict[str, Any]:
        phone = self._phone()
        call = await phone.hangup(req.get("call"))
        await self._until_over(phone, call)
        return {"call": call.as_dict()}

    async def _hold(self, req: dict[str, Any]) -> dict[str, Any]:
        phone = self._phone()
        call = await phone.hold(req.get("call"))
        with contextlib.suppress(TimeoutError):
            await phone.wait_call(call.id, lambda c: c.state is not CallState.ACTIVE, 10)
        return {"call": call.as_dict()}

    async def _resume(self, req: dict[str, Any]) -> dict[str, Any]:
        phone = self._phone()
        call = await phone.resume(req.get("call"))
        with contextlib.suppress(TimeoutError):
            await phone.wait_call(call.id, lambda c: c.state is not CallState.HELD, 10)
        return {"call": call.as_dict()}

    async def _dtmf(self, req: dict[str, Any]) -> dict[str, Any]:
        digits = req.get("digits")
        if not isinstance(digits, str) or not digits:
            raise ControlError("dtmf needs digits")
        method = await self._phone().send_dtmf(digits, req.get("call"))
        return {"method": method}

    async def _transfer(self, req: dict[str, Any]) -> dict[str, Any]:
        target = req.get("target")
        if not isinstance(target, str) or not target:
            raise ControlError("transfer needs a target")
        call = await self._phone().transfer(target, req.get("call"))
        return {"call": call.as_dict()}

    async def _history(self, req: dict[str, Any]) -> dict[str, Any]:
        phone = self._phone()
        if phone.history is None:
            return {"history": []}
        count = _int(req.get("count"), "count") or 20
        return {"history": [e.as_dict() for e in phone.history.recent(count)]}

    async def _config_get(self, req: dict[str, Any]) -> dict[str, Any]:
        return config_get(self.store, req.get("key"), _int(req.get("line"), "line"))

    async def _config_set(self, req: dict[str, Any]) -> dict[str, Any]:
        key, line = req.get("key"), _int(req.get("line"), "line")
        if not isinstance(key, str):
            raise ControlError("config_set needs a key")
        value = req.get("value")
        if not isinstance(value, str | int | float | bool):
            raise ControlError("config_set needs a value")
        self.store.update({(key, line or 0): value})
        return config_get(self.store, key, line)


def config_get(store: ConfigStore, key: object, line: int | None) -> dict[str, Any]:
    """One setting (or, without a key, every setting) as text; passwords masked."""
    if key is None:
        out = store.export()
        return {"settings": out}
    if not isinstance(key, str):
        raise ControlError("key must be text")
    s = SCHEMA.get(key)
    if s is None:
        from sippa.app.settings import by_cisco_name  # noqa: PLC0415

        found = by_cisco_name(key)
        if found is None:
            raise ControlError(f"no setting named {key!r}")
        s, n = found
        line = line or (n or None)
        key = s.key
    value = store.get(s.key, line)
    shown = "********" if s.kind is Kind.PASSWORD and value else format_value(s, value)
    return {
        "key": s.key,
        "line": line or 0,
        "cisco": s.cisco_name(line or 0),
        "value": shown,
        "default": store.is_default(s.key, line),
    }


# --- the socket --------------------------------------------------------------------------------
async def serve_control(controller: Controller, path: Path) -> asyncio.AbstractServer:
    """Listen on the Unix socket ``path`` (replacing a stale one), readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                    if not isinstance(request, dict):
                        raise ValueError("a request is a JSON object")
                except ValueError as exc:
                    answer: dict[str, Any] = {"ok": False, "error": f"bad request: {exc}"}
                else:
                    answer = await controller.handle(request)
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    old = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(client, path, limit=MAX_LINE)
    finally:
        os.umask(old)
    path.chmod(0o600)
    return server


async def control_request(
    path: Path, request: dict[str, Any], timeout: float | None = 30.0
) -> dict[str, Any]:
    """Send one request to a running daemon; raises OSError when none listens."""
    reader, writer = await asyncio.open_unix_connection(path, limit=MAX_LINE)
    try:
        writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
    finally:
        writer.close()
    if not line:
        raise ConnectionError("the daemon closed the connection")
    answer = json.loads(line)
    if not isinstance(answer, dict):
        raise ConnectionError("the daemon sent a bad answer")
    return answer
