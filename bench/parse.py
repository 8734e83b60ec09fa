"""Messages per second for a full parse of a typical INVITE with SDP: sippa vs sipmessage vs pyVoIP.

"Full parse" means every value a UA needs as a typed value: the Via list (with branch), From
and To as name-addr with tags, Call-ID, CSeq, Contact, Max-Forwards, Content-Type,
Content-Length, and the SDP body parsed.  All three parsers run in the same process on the
same bytes, so the printed ratios are comparable across machines.

* sippa: ``parse_message`` + typed accessors + ``sippa.sdp.SessionDescription.parse``;
* sipmessage (PyPI): ``Message.parse`` + its typed properties; it has no SDP parser, so its
  SDP is parsed with ``sippa.sdp`` (the same cost as ours);
* pyVoIP: ``pyVoIP.SIP.SIPMessage(data)``, which parses headers and SDP eagerly.

Run: ``.venv/bin/python bench/parse.py [--seconds 1.0]``
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

from sippa.sip.message import parse_message

try:  # sippa.sdp is written by another part of the project; the bench still runs without it
    from sippa.sdp import SessionDescription
except ImportError:  # pragma: no cover
    SessionDescription = None  # type: ignore[assignment,misc]

SDP = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.101\r\n"
    b"t=0 0\r\n"
    b"m=audio 49172 RTP/AVP 0 8 9 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:9 G722/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=ptime:20\r\n"
    b"a=sendrecv\r\n"
)
INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP proxy.biloxi.example.com:5060;branch=z9hG4bK4b43c2ff8.1\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport=5060"
    b";received=192.0.2.101\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b'From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com:5060;transport=udp>\r\n"
    b"Record-Route: <sip:proxy.biloxi.example.com;lr>\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY\r\n"
    b"Supported: replaces, timer\r\n"
    b"User-Agent: sippa-bench/1.0\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n"
    b"\r\n" + SDP
)


def sippa_parse(data: bytes) -> object:
    msg = parse_message(data)
    values = (
        [v.branch for v in msg.vias],
        msg.from_.tag,
        msg.to.tag,
        msg.to.uri,
        msg.call_id,
        msg.cseq.seq,
        msg.cseq.method,
        msg.contacts[0].uri,
        msg.max_forwards,
        msg.content_type,
        msg.headers.get("Content-Length"),
    )
    sdp = SessionDescription.parse(msg.body) if SessionDescription is not None else None
    return values, sdp


def sippa_headers(data: bytes) -> object:
    """The SIP part of :func:`sippa_parse` alone (for the breakdown line)."""
    msg = parse_message(data)
    return (
        [v.branch for v in msg.vias],
        msg.from_.tag,
        msg.to.tag,
        msg.call_id,
        msg.cseq,
        msg.contacts[0].uri,
        msg.max_forwards,
        msg.content_type,
        msg.headers.get("Content-Length"),
    )


def sipmessage_parse(data: bytes) -> object:
    from sipmessage import Message

    msg = Message.parse(data)
    values = (
        [v.parameters.get("branch") for v in msg.via],
        msg.from_address.parameters.get("tag"),
        msg.to_address.parameters.get("tag"),
        msg.to_address.uri,
        msg.call_id,
        msg.cseq.sequence,
        msg.cseq.method,
        msg.contact[0].uri,
        msg.max_forwards,
        msg.content_type,
        msg.content_length,
    )
    sdp = SessionDescription.parse(msg.body) if SessionDescription is not None else None
    return values, sdp


def pyvoip_parse(data: bytes) -> object:
    from pyVoIP.SIP import SIPMessage

    msg = SIPMessage(data)
    h = msg.headers
    return (
        [v.get("branch") for v in h["Via"]],
        h["From"]["tag"],
        h["To"]["tag"],
        h["To"]["address"],
        h["Call-ID"],
        h["CSeq"]["check"],
        h["CSeq"]["method"],
        h["Contact"],
        h["Max-Forwards"],
        h["Content-Type"],
        h["Content-Length"],
    ), msg.body


def measure(
    cases: dict[str, tuple[Callable[[bytes], object], bytes]], seconds: float, rounds: int = 7
) -> dict[str, float]:
    """Messages per second per case: the best of ``rounds`` interleaved rounds.

    Interleaving (A, B, C, A, B, C, ...) exposes every parser to the same machine load, so the
    ratios stay meaningful on a busy machine; the best round filters out interruptions.
    """
    for fn, data in cases.values():
        fn(data)  # warm up (and fail loudly if a parser cannot handle the message)
    best = dict.fromkeys(cases, 0.0)
    budget = seconds / rounds
    for _ in range(rounds):
        for name, (fn, data) in cases.items():
            n = 0
            start = time.perf_counter()
            while True:
                for _ in range(50):
                    fn(data)
                n += 50
                now = time.perf_counter()
                if now - start >= budget:
                    break
            best[name] = max(best[name], n / (now - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="time per parser")
    args = parser.parse_args()
    with warnings.catch_warnings():
        # pyVoIP imports audioop, deprecated since Python 3.11: not our concern here
        warnings.simplefilter("ignore", DeprecationWarning)
        # (pyVoIP.VoIP first: importing pyVoIP.SIP first hits a circular import in pyVoIP)
        import pyVoIP.VoIP  # noqa: F401

    print(f"message: {len(INVITE)} bytes INVITE with a {len(SDP)}-byte SDP body")
    if SessionDescription is None:
        print("note: sippa.sdp is not available; SDP bodies are not parsed by sippa/sipmessage")
    cases: dict[str, tuple[Callable[[bytes], object], bytes]] = {
        "sippa": (sippa_parse, INVITE),
        "sipmessage": (sipmessage_parse, INVITE),
        "pyVoIP": (pyvoip_parse, INVITE),
        # the breakdown of sippa's time: the SIP part alone (typed headers) and the SDP alone
        "sippa SIP only": (sippa_headers, INVITE),
    }
    if SessionDescription is not None:
        cases["sippa.sdp only"] = (SessionDescription.parse, SDP)
    results = measure(cases, args.seconds * len(cases))
    for name, value in results.items():
        print(f"{name:>15}: {value:10.0f} /s  {1e6 / value:7.1f} us each")
    ours = results["sippa"]
    print(f"sippa / sipmessage = {ours / results['sipmessage']:.2f}x")
    print(f"sippa / pyVoIP     = {ours / results['pyVoIP']:.2f}x (target >= 3.5x)")
    print(
        f"sippa SIP part alone / pyVoIP full parse = "
        f"{results['sippa SIP only'] / results['pyVoIP']:.2f}x"
    )


if __name__ == "__main__":
    main()
