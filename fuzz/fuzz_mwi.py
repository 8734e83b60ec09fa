"""Fuzz the RFC 3842 message-summary parser and a subscription's NOTIFY handling (atheris;
run by hand).

    pip install atheris
    python fuzz/fuzz_mwi.py -max_len=4096 [corpus_dir]

Without atheris, ``python fuzz/fuzz_mwi.py FILE...`` replays saved inputs (crash files).
The invariant: ``MessageSummary.parse`` succeeds or raises RemoteProtocolError, and what parses
serialises to a summary that parses back equal; a NOTIFY built around the input (as its body,
or its Subscription-State) is answered with a status code, nothing escapes.
"""

from __future__ import annotations

import contextlib
import random

from _harness import run  # fuzz/_harness.py, beside this script

from sippa.errors import RemoteProtocolError
from sippa.sip.headers import NameAddr
from sippa.sip.message import Request, parse_message
from sippa.sip.mwi import CONTENT_TYPE, MessageSummary
from sippa.sip.subscription import Subscription, SubscriptionConfig
from sippa.sip.uri import Uri


def _subscription() -> Subscription:
    config = SubscriptionConfig(
        Uri.parse("sip:alice@example.test"), NameAddr.parse("<sip:alice@example.test>"),
        "message-summary", accept=(CONTENT_TYPE,), parse_body=MessageSummary.parse,
    )
    sub = Subscription(config, random.Random(1).getrandbits)
    sub.start(0.0)
    return sub


def test_one_input(data: bytes) -> None:
    try:
        summary = MessageSummary.parse(data)
    except RemoteProtocolError:
        summary = None
    if summary is not None and MessageSummary.parse(bytes(summary)) != summary:
        raise AssertionError(f"round trip changed {summary!r}")
    sub = _subscription()
    state = data[:60].decode("latin-1").replace("\r", "").replace("\n", "")
    head = (
        "NOTIFY sip:alice@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKf\r\n"
        f"From: <sip:alice@example.test>;tag=n\r\nTo: <sip:alice@example.test>;tag={sub.from_tag}"
        f"\r\nCall-ID: {sub.call_id}\r\nCSeq: 1 NOTIFY\r\nContact: <sip:n@127.0.0.1>\r\n"
        f"Event: message-summary\r\nSubscription-State: {state}\r\n"
        f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    with contextlib.suppress(RemoteProtocolError):
        request = parse_message(head.encode("latin-1") + data)
        if isinstance(request, Request):
            status = sub.notify_received(request, 1.0)
            if not 200 <= status < 700:
                raise AssertionError(f"status {status}")


def main() -> None:
    run(test_one_input)


if __name__ == "__main__":
    main()
