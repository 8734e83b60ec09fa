"""Busy lamp field: line keys that show a colleague's line state (RFC 4235 over RFC 6665).

A key is configured as on a Cisco phone, ``Extended_Function_n_`` =
``fnc=blf+sd+cp;sub=bob@$PROXY;nme=Bob`` (:func:`parse_extended_function`); it belongs to
line 1, whose proxy ``$PROXY`` names. :class:`BlfStatus` is what a key shows (its label, the
watched URI and the lamp: idle, ringing, busy or unknown); :class:`BlfSubscriber` drives the
key's ``dialog`` subscription with the same machinery as the voicemail light
(:class:`~sippa.app.mwi.EventSubscriber`), keeping the dialogs in a sans-IO
:class:`~sippa.sip.dialog_info.DialogInfoState`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sippa.app.mwi import EventSubscriber, Route
from sippa.app.settings import BLF_KEY_COUNT
from sippa.errors import ProtocolError
from sippa.sip.core import UserAgentCore
from sippa.sip.dialog_info import (
    CONTENT_TYPE,
    EVENT_PACKAGE,
    Applied,
    DialogInfo,
    DialogInfoState,
    Lamp,
    parse_dialog_info,
)
from sippa.sip.headers import NameAddr
from sippa.sip.subscription import Notified, SubscriptionConfig
from sippa.sip.uri import Uri

__all__ = [
    "BLF_EXPIRES",
    "BLF_FUNCTIONS",
    "BLF_KEYS",
    "BlfStatus",
    "BlfSubscriber",
    "ExtendedFunction",
    "blf_text",
    "check_extended_function",
    "parse_extended_function",
]

log = logging.getLogger(__name__)

BLF_KEYS = BLF_KEY_COUNT
"""Line keys with an Extended Function setting (``Extended_Function_1_`` to ``_8_``)."""
BLF_EXPIRES = 3600
"""Subscription duration asked for, seconds (RFC 4235 §3.3: no default; an hour, as MWI)."""
BLF_FUNCTIONS = ("blf", "sd", "cp")
"""The ``fnc`` functions a Cisco line key combines: busy lamp field, speed dial, call pickup."""
_PARAMS = ("fnc", "sub", "nme")
MAX_LABEL = 64


@dataclass(frozen=True, slots=True)
class ExtendedFunction:
    """One line key's Extended Function (``fnc=blf+sd+cp;sub=bob@$PROXY;nme=Bob``)."""

    functions: tuple[str, ...]
    sub: str
    """The watched resource as written (``bob@$PROXY``, ``sip:bob@example.test``, ``bob``)."""
    name: str | None = None
    """``nme``: the key's label."""

    def resource(self, domain: str, secure: bool) -> Uri:
        """The watched URI: ``$PROXY`` is the line's SIP domain; a bare user is at it."""
        text = self.sub.replace("$PROXY", domain)
        if not text.lower().startswith(("sip:", "sips:")):
            if "@" not in text:
                text = f"{text}@{domain}"
            text = ("sips:" if secure else "sip:") + text
        uri = Uri.parse(text)
        if not uri.user:
            raise ValueError(f"sub={self.sub!r} names no user")
        return uri

    @property
    def label(self) -> str:
        return self.name or self.sub.split("@", 1)[0].split(":", 1)[-1]


def parse_extended_function(text: str) -> ExtendedFunction | None:
    """Read an Extended Function; None when empty. Raises ValueError saying what is wrong."""
    text = text.strip()
    if not text:
        return None
    params: dict[str, str] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        name, eq, value = part.partition("=")
        name, value = name.strip().lower(), value.strip()
        if not eq:
            raise ValueError(f"{part.strip()[:40]!r} is not name=value")
        if name not in _PARAMS:
            raise ValueError(f"unknown parameter {name[:20]!r} (fnc, sub and nme are known)")
        if name in params:
            raise ValueError(f"{name} appears twice")
        params[name] = value
    fnc = params.get("fnc")
    if not fnc:
        raise ValueError("fnc= is missing (fnc=blf+sd+cp;sub=user@$PROXY)")
    functions = tuple(f.strip().lower() for f in fnc.split("+"))
    unknown = [f for f in functions if f not in BLF_FUNCTIONS]
    if unknown:
        raise ValueError(f"unknown function {unknown[0][:20]!r} in fnc (blf, sd, cp)")
    if "blf" not in functions:
        raise ValueError("fnc must include blf: sippa's line keys are busy lamp fields")
    sub = params.get("sub")
    if not sub:
        raise ValueError("sub= is missing: whom the key watches (sub=user@$PROXY)")
    label = params.get("nme") or None
    if label is not None and len(label) > MAX_LABEL:
        raise ValueError(f"nme is longer than {MAX_LABEL} characters")
    key = ExtendedFunction(functions, sub, label)
    try:
        key.resource("example.invalid", secure=False)
    except ProtocolError as exc:
        raise ValueError(f"sub={sub[:60]!r} is not a SIP URI: {exc.reason}") from None
    return key


def check_extended_function(value: object) -> str | None:
    """The settings schema's check: an error message, or None."""
    try:
        parse_extended_function(str(value))
    except ValueError as exc:
        return str(exc)
    return None


@dataclass(slots=True)
class BlfStatus:
    """What one BLF key shows."""

    key: int
    label: str
    uri: str
    """The watched resource."""
    lamp: Lamp = Lamp.UNKNOWN
    subscription: str = "off"
    reason: str | None = None
    remote: str | None = None
    """Who is calling or talking with the watched resource (the first such dialog's remote
    identity), when the notifier says."""
    updated: float | None = None
    """Wall-clock time of the last lamp change."""
    speed_dial: bool = False
    """``fnc`` has ``sd``: the key calls the watched URI (the phone page's Call button)."""
    dialogs: DialogInfoState = field(default_factory=DialogInfoState)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "uri": self.uri,
            "lamp": self.lamp.value,
            "subscription": self.subscription,
            "reason": self.reason,
            "remote": self.remote,
            "updated": self.updated,
            "speed_dial": self.speed_dial,
        }

    def show(self) -> bool:
        """Derive the lamp from the dialogs; True when anything shown changed."""
        lamp = self.dialogs.lamp
        remote = None
        for d in (self.dialogs.dialogs or {}).values():
            if d.remote_identity:
                remote = d.remote_display or d.remote_identity
                break
        if (lamp, remote) == (self.lamp, self.remote):
            return False
        self.lamp, self.remote = lamp, remote
        self.updated = time.time()
        return True


_LAMP_WORDS = {"idle": "idle", "ringing": "ringing", "busy": "on a call", "unknown": "unknown"}


def blf_text(key: dict[str, Any]) -> str:
    """What a person reads about a BLF key (web page, CLI), from :meth:`BlfStatus.as_dict`:
    ``Bob: on a call (with Carol)``, ``Bob: unknown (subscription backoff: 489 Bad Event)``."""
    lamp = str(key.get("lamp") or "unknown")
    text = f"{key.get('label')}: {_LAMP_WORDS.get(lamp, lamp)}"
    if lamp in ("ringing", "busy") and key.get("remote"):
        text += f" ({'from' if lamp == 'ringing' else 'with'} {key['remote']})"
    elif lamp == "unknown":
        why = [str(key.get("subscription") or "off")]
        if key.get("reason"):
            why.append(str(key["reason"]))
        text += f" (subscription {': '.join(why)})"
    return text


class BlfSubscriber(EventSubscriber):
    """Drives one BLF key's ``dialog`` subscription."""

    status: BlfStatus

    def __init__(
        self,
        number: int,
        status: BlfStatus,
        resource: Uri,
        subscriber: NameAddr,
        *,
        contact_user: str,
        core: Callable[[], UserAgentCore | None],
        now: Callable[[], float],
        pump: Callable[[], None],
        route: Route,
        changed: Callable[[], None],
        random_bits: Callable[[int], int],
        authorize: Any = None,
        expires: int = BLF_EXPIRES,
        retry_base: float = 30.0,
        retry_max: float = 1200.0,
    ) -> None:
        config = SubscriptionConfig(
            resource,
            subscriber,
            EVENT_PACKAGE,
            accept=(CONTENT_TYPE,),
            expires=expires,
            retry_base=retry_base,
            retry_max=retry_max,
            parse_body=parse_dialog_info,
        )
        super().__init__(
            number, config, status, contact_user=contact_user, core=core, now=now, pump=pump,
            route=route, changed=changed, random_bits=random_bits, authorize=authorize,
            label=f"blf{status.key}",
        )
        self._call_id = ""  # the subscription the dialog state belongs to

    def _notified(self, event: Notified) -> None:
        st = self.status
        sub = self.subscription
        if sub.call_id != self._call_id:
            # RFC 4235 §4.1.2: versions count within one subscription
            self._call_id = sub.call_id
            st.dialogs.reset()
        if event.content is None and event.state != "terminated":
            st.dialogs.clear()  # no state at the notifier: no dialogs
            if st.show():
                log.info("[ext%d blf%d] %s: %s", self.number, st.key, st.uri, st.lamp.value)
            return
        if not isinstance(event.content, DialogInfo):
            return
        outcome = st.dialogs.apply(event.content)
        if outcome is Applied.NEED_FULL:
            # §4.1.2: a partial state we cannot apply: a refresh brings a full one
            log.info("[ext%d blf%d] partial dialog-info without its base: refreshing",
                     self.number, st.key)
            asyncio.get_running_loop().call_soon(self.refresh)
        elif outcome is Applied.APPLIED and st.show():
            log.info("[ext%d blf%d] %s: %s", self.number, st.key, st.uri, st.lamp.value)

    def _apply(self, event: object) -> None:
        super()._apply(event)
        if not isinstance(event, Notified) or event.state == "terminated":
            state = self.subscription.status.state.value
            if state not in ("subscribed", "refreshing"):
                # failed, ended or stopped: what the lamp said no longer holds
                self.status.dialogs.reset()
                self._call_id = ""
                self.status.show()
