"""SDP parsing: sippa.sdp against pyVoIP's SDP reader, measured in the same run.

pyVoIP has no separate SDP entry point: it reads the SDP while parsing a SIP message. Its SDP
cost is therefore measured as (INVITE with the SDP body) minus (the same INVITE without a body),
both parsed by ``pyVoIP.SIP.SIPMessage``. sippa's is ``SessionDescription.parse`` on the body,
which validates every line and keeps unknown attributes verbatim; pyVoIP splits fields without
validation. The ratio printed last compares the two per-SDP costs. Also timed: the full
offer/answer step (parse the offer, build and serialise the answer) for the same body.

Run: ``.venv/bin/python bench/sdp.py [--seconds 1.5]``
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable

from sippa.sdp import MediaCapabilities, Negotiator, SessionDescription, SrtpPolicy

SDP = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.101\r\n"
    b"t=0 0\r\n"
    b"m=audio 49172 RTP/SAVP 0 8 9 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:9 G722/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=ptime:20\r\n"
    b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"
    b"a=sendrecv\r\n"
)


def invite(body: bytes) -> bytes:
    head = (
        b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds\r\n"
        b"Max-Forwards: 70\r\n"
        b"To: Bob <sip:bob@biloxi.example.com>\r\n"
        b'From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
        b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
        b"CSeq: 314159 INVITE\r\n"
        b"Contact: <sip:alice@pc33.atlanta.example.com:5060>\r\n"
    )
    if body:
        head += b"Content-Type: application/sdp\r\n"
    return head + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body


def seconds_per_call(fn: Callable[[], object], seconds: float) -> float:
    """Best of three rounds, in seconds per call."""
    fn()  # warm up, and fail loudly if it cannot handle the input
    best = float("inf")
    for _ in range(3):
        n = 0
        start = time.perf_counter()
        deadline = start + seconds / 3
        while True:
            for _ in range(100):
                fn()
            n += 100
            now = time.perf_counter()
            if now >= deadline:
                break
        best = min(best, (now - start) / n)
    return best


def answer_once() -> bytes:
    caps = MediaCapabilities("192.0.2.1", 4000, srtp=SrtpPolicy.MANDATORY)
    neg = Negotiator(caps, session_id=1, session_version=1, random_bytes=os.urandom)
    answer, _ = neg.receive_offer(SessionDescription.parse(SDP))
    return bytes(answer)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="time per measurement")
    args = parser.parse_args()
    with warnings.catch_warnings():
        # pyVoIP imports audioop, deprecated since Python 3.11: not our concern here
        warnings.simplefilter("ignore", DeprecationWarning)
        import pyVoIP.VoIP  # noqa: F401  (first: pyVoIP.SIP alone hits a circular import)
        from pyVoIP.SIP import SIPMessage

    with_body, without_body = invite(SDP), invite(b"")
    ours = seconds_per_call(lambda: SessionDescription.parse(SDP), args.seconds)
    full = seconds_per_call(lambda: SIPMessage(with_body), args.seconds)
    bare = seconds_per_call(lambda: SIPMessage(without_body), args.seconds)
    theirs = max(full - bare, 1e-9)
    oa = seconds_per_call(answer_once, args.seconds)
    lines = SDP.count(b"\n")
    print(f"SDP body: {len(SDP)} bytes, {lines} lines")
    print(f"  sippa SessionDescription.parse: {ours * 1e6:8.1f} us")
    print(f"  pyVoIP SDP share of SIPMessage: {theirs * 1e6:8.1f} us "
          f"({full * 1e6:.1f} with body - {bare * 1e6:.1f} without)")
    print(f"  sippa offer -> answer bytes:    {oa * 1e6:8.1f} us")
    print(f"sippa / pyVoIP SDP speed = {theirs / ours:.2f}x")


if __name__ == "__main__":
    main()
