"""Busy lamp field keys end to end on loopback: a Phone with Extended_Function_1_ and a scripted
registrar/notifier (UDP) that challenges the SUBSCRIBE (Event: dialog), accepts it and NOTIFYs
dialog-info documents; plus the Extended Function syntax."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from sippa.app.blf import blf_text, parse_extended_function
from sippa.app.settings import SettingError
from sippa.sip.dialog_info import Lamp
from sippa.sip.digest_server import DigestVerifier
from sippa.sip.message import Request, Response, parse_message
from tests.app.test_mwi import Notifier, _phone, _store, _until

pytestmark = pytest.mark.timeout(60)

DOC = (
    '<?xml version="1.0"?>\n<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" '
    'version="{v}" state="{s}" entity="sip:bob@127.0.0.1">{d}</dialog-info>'
)
RINGING = ('<dialog id="d1" call-id="c1" direction="recipient"><state>early</state>'
           '<remote><identity display="Carol">sip:carol@example.test</identity></remote>'
           "</dialog>")
TALKING = RINGING.replace("early", "confirmed")


def _doc(version: int, dialogs: str = "", state: str = "full") -> bytes:
    return DOC.format(v=version, s=state, d=dialogs).encode()


class _UniqueNonces:
    """The verifier with one nonce per challenge (its nonces are per second: two clients
    challenged in the same second would both send nc=1, which it takes for a replay)."""

    def __init__(self, verifier: DigestVerifier) -> None:
        self.verifier = verifier
        self.count = itertools.count()

    def challenges(self, now: float, *, stale: bool = False) -> list[str]:
        return self.verifier.challenges(now + next(self.count), stale=stale)

    def verify(self, method: str, authorization: Any, now: float, body: bytes = b"") -> Any:
        return self.verifier.verify(method, authorization, now, body)


class DialogNotifier(Notifier):
    """The MWI test's notifier, NOTIFYing the dialog package."""

    def __init__(self) -> None:
        super().__init__()
        self.verifier = _UniqueNonces(self.verifier)  # type: ignore[assignment]

    async def notify_dialog(self, body: bytes, state: str = "active;expires=600",
                            content_type: str = "application/dialog-info+xml",
                            event: str = "dialog") -> Response:
        loop = asyncio.get_running_loop()
        assert self.phone_addr is not None and self.subscribe is not None
        self._seq += 1
        host, port = self.phone_addr
        sub = self.subscribe
        msg = (
            f"NOTIFY sip:alice@{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK-d{self._seq};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:bob@127.0.0.1>;tag=vm\r\n"
            f"To: {sub.headers.get('From')}\r\nCall-ID: {sub.call_id}\r\n"
            f"CSeq: {self._seq} NOTIFY\r\nContact: <sip:ps@127.0.0.1:{self.port}>\r\n"
            f"Subscription-State: {state}\r\nEvent: {event}\r\n"
            + (f"Content-Type: {content_type}\r\n" if body else "")
            + f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        count = len(self.responses)
        await loop.sock_sendto(self.sock, msg, (host, port))
        await self.wait(lambda: len(self.responses) > count)
        return self.responses[-1]


async def test_key_subscribes_and_follows_the_dialogs() -> None:
    notifier = DialogNotifier()
    notifier.start()
    store = _store(notifier.port, mwi_enable=False)
    store.update({("extended_function_1", 0): "fnc=blf+sd+cp;sub=bob@$PROXY;nme=Bob"})
    phone = _phone(store)
    try:
        async with phone:
            await notifier.wait(lambda: notifier.subscribe is not None)
            bob = notifier.subscribe
            assert bob is not None and "Authorization" in bob.headers  # answered the 401
            assert bob.headers.get("Event") == "dialog"
            assert bob.headers.get("Accept") == "application/dialog-info+xml"
            assert str(bob.uri) == "sip:bob@127.0.0.1"  # $PROXY: line 1's domain
            methods = [r.method for r in notifier.requests]
            assert methods.index("REGISTER") < methods.index("SUBSCRIBE")
            (key,) = phone.lines[1].blf
            assert key.label == "Bob"
            await _until(lambda: key.subscription == "active")
            assert key.lamp is Lamp.UNKNOWN

            # no body (nothing published yet): idle
            assert (await notifier.notify_dialog(b"")).status_code == 200
            assert key.lamp is Lamp.IDLE
            assert (await notifier.notify_dialog(_doc(1, RINGING))).status_code == 200
            assert (key.lamp, key.remote) == (Lamp.RINGING, "Carol")
            shown = phone.status()["lines"][0]["blf"]
            assert shown[0]["speed_dial"] is True  # fnc=blf+sd+cp
            assert shown[0]["lamp"] == "ringing" and blf_text(shown[0]) == (
                "Bob: ringing (from Carol)")
            partial = _doc(2, TALKING, "partial")
            assert (await notifier.notify_dialog(partial)).status_code == 200
            assert key.lamp is Lamp.BUSY
            # an older version is ignored (RFC 4235 §4.1.2)
            assert (await notifier.notify_dialog(_doc(1))).status_code == 200
            assert key.lamp is Lamp.BUSY
            # malformed documents and wrong types are refused; the lamp stays
            assert (await notifier.notify_dialog(b"<dialog-info")).status_code == 400
            bomb = b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
            assert (await notifier.notify_dialog(bomb)).status_code == 400
            wrong = await notifier.notify_dialog(_doc(9), content_type="text/plain")
            assert wrong.status_code == 415
            assert key.lamp is Lamp.BUSY
            # a NOTIFY outside the key's subscription (another Call-ID): 481, nothing changes
            real = notifier.subscribe
            stranger = parse_message(bytes(real))
            assert isinstance(stranger, Request)
            stranger.headers.set("Call-ID", "not-a-subscription")
            notifier.subscribe = stranger
            assert (await notifier.notify_dialog(_doc(20))).status_code == 481
            notifier.subscribe = real
            assert key.lamp is Lamp.BUSY
            # a partial document after a gap: ignored, and a refresh asks for the full state
            before = len(notifier.expires)
            gap = _doc(7, RINGING.replace('"d1"', '"d2"'), "partial")
            assert (await notifier.notify_dialog(gap)).status_code == 200
            await notifier.wait(lambda: len(notifier.expires) > before)
            assert key.lamp is Lamp.BUSY
            assert (await notifier.notify_dialog(_doc(8))).status_code == 200
            assert key.lamp is Lamp.IDLE
            # the notifier ends the subscription: the lamp no longer knows
            ended = await notifier.notify_dialog(b"", state="terminated;reason=noresource")
            assert ended.status_code == 200
            await _until(lambda: key.lamp is Lamp.UNKNOWN)

            # keys follow their settings live: a new key subscribes, a removed one is gone
            await _until(lambda: key.subscription == "given-up")
            store.update({("extended_function_1", 0): "",
                          ("extended_function_3", 0): "fnc=blf;sub=sip:carol@127.0.0.1"})
            await notifier.wait(lambda: notifier.subscribe is not None
                                and notifier.subscribe.uri.user == "carol")
            await _until(lambda: [k.key for k in phone.lines[1].blf] == [3])
            carol = phone.lines[1].blf[0]
            assert carol.label == "carol"
            await _until(lambda: carol.subscription == "active")
    finally:
        notifier.close()
        store.close()


def test_bad_key_settings_are_refused_with_clear_errors() -> None:
    from sippa.app.store import ConfigStore

    store = ConfigStore(":memory:", lines=1)
    try:
        with pytest.raises(SettingError, match="sub= is missing"):
            store.update({("extended_function_2", 0): "fnc=blf"})
        with pytest.raises(SettingError, match="unknown function 'xyz'"):
            store.update({("extended_function_2", 0): "fnc=blf+xyz;sub=bob"})
    finally:
        store.close()


@pytest.mark.parametrize(
    ("text", "uri", "label"),
    [
        ("fnc=blf+sd+cp;sub=bob@$PROXY", "sip:bob@pbx.test", "bob"),
        ("fnc=blf;sub=bob;nme=Bob B.", "sip:bob@pbx.test", "Bob B."),
        (" FNC=BLF ; sub=sips:bob@other.test ", "sips:bob@other.test", "bob"),
        ("fnc=blf;sub=1002", "sip:1002@pbx.test", "1002"),
    ],
)
def test_extended_function(text: str, uri: str, label: str) -> None:
    key = parse_extended_function(text)
    assert key is not None
    assert (str(key.resource("pbx.test", secure=False)), key.label) == (uri, label)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("sub=bob", "fnc= is missing"),
        ("fnc=sd;sub=bob", "fnc must include blf"),
        ("fnc=blf;sub=bob;ext=1", "unknown parameter 'ext'"),
        ("fnc=blf;sub=bob;sub=carol", "appears twice"),
        ("fnc=blf;bob", "is not name=value"),
        ("fnc=blf;sub=sip:@@", "is not a SIP URI"),
        ("fnc=blf;sub=bob;nme=" + "x" * 65, "longer than 64"),
    ],
)
def test_bad_extended_function(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_extended_function(text)


def test_empty_extended_function_is_no_key() -> None:
    assert parse_extended_function("  ") is None
