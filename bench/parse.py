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

SDP_TEMPLATE = (
    "v=0\r\n"
    "o=alice {sess} {sess} IN IP4 192.0.2.101\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.101\r\n"
    "t=0 0\r\n"
    "m=audio {port} RTP/AVP 0 8 9 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=ptime:20\r\n"
    "a=sendrecv\r\n"
)
INVITE_TEMPLATE = (
    "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP proxy.biloxi.example.com:5060;branch=z9hG4bK{branch1}.1\r\n"
    "Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK{branch2};rport=5060"
    ";received=192.0.2.101\r\n"
    "Max-Forwards: 70\r\n"
    "To: Bob <sip:bob@biloxi.example.com>\r\n"
    'From: "Alice" <sip:alice@atlanta.example.com>;tag={tag}\r\n'
    "Call-ID: {call_id}@pc33.atlanta.example.com\r\n"
    "CSeq: {cseq} INVITE\r\n"
    "Contact: <sip:alice@pc33.atlanta.example.com:5060;transport=udp>\r\n"
    "Record-Route: <sip:proxy.biloxi.example.com;lr>\r\n"
    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY\r\n"
    "Supported: replaces, timer\r\n"
    "User-Agent: sippa-bench/1.0\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: {length}\r\n"
    "\r\n"
)


def make_message(i: int) -> tuple[bytes, bytes]:
    """The i-th distinct INVITE (branches, tag, Call-ID, CSeq, SDP session and port vary)."""
    sdp = SDP_TEMPLATE.format(sess=2890844526 + i, port=49172 + 2 * (i % 1000)).encode()
    head = INVITE_TEMPLATE.format(
        branch1=f"{0x4B43C2FF8 + i * 7919:x}",
        branch2=f"776asd{i:06x}",
        tag=f"{1928301774 + i * 31}",
        call_id=f"a84b{i:08x}c76e66710",
        cseq=314159 + i,
        length=len(sdp),
    )
    return head.encode() + sdp, sdp


# Distinct messages, generated before timing; every parser gets the same list.
MESSAGES = [make_message(i) for i in range(512)]
INVITE, SDP = MESSAGES[0]
BODIES = [sdp for _, sdp in MESSAGES]
INVITES = [msg for msg, _ in MESSAGES]


def _sdp_values(sdp: object) -> object:
    """What a UA reads from an SDP offer: address, port, proto, formats, codecs, direction."""
    if sdp is None:
        return None
    media = sdp.media[0]  # type: ignore[attr-defined]
    return (
        sdp.connection_for(media).address,  # type: ignore[attr-defined]
        media.port,
        media.proto,
        media.formats,
        {pt: (r.encoding, r.clock_rate) for pt, r in media.rtpmaps().items()},
        media.fmtps(),
        media.ptime,
        sdp.direction(media),  # type: ignore[attr-defined]
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
    return values, _sdp_values(sdp)


def sippa_headers(data: bytes) -> object:
    """The SIP part of :func:`sippa_parse` alone (for the breakdown line)."""
    msg = parse_message(data)
    return (
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


def sippa_sdp(data: bytes) -> object:
    """The SDP part of :func:`sippa_parse` alone (for the breakdown line)."""
    return _sdp_values(SessionDescription.parse(data))


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
    return values, _sdp_values(sdp)


def pyvoip_parse(data: bytes) -> object:
    from pyVoIP.SIP import SIPMessage

    msg = SIPMessage(data)
    h = msg.headers
    values = (
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
    )
    body = msg.body
    media = body["m"][0]
    attrs = media["attributes"]
    sdp = (
        body["c"][0]["address"],
        media["port"],
        media["protocol"],
        media["methods"],
        {pt: (a["rtpmap"]["name"], a["rtpmap"]["frequency"]) for pt, a in attrs.items()},
        {pt: a["fmtp"]["settings"] for pt, a in attrs.items() if "fmtp" in a},
        body["a"].get("ptime"),
        body["a"].get("transmit_type"),
    )
    return values, sdp


Case = tuple[Callable[[bytes], object], list[bytes]]


def measure(cases: dict[str, Case], seconds: float, rounds: int = 7) -> dict[str, float]:
    """Messages per second per case: the best of ``rounds`` interleaved rounds.

    Each case walks its own list of distinct, pre-generated messages (the same list for every
    parser), so nothing can be reused from one message to the next.  Interleaving (A, B, C,
    A, B, C, ...) exposes every parser to the same machine load, so the ratios stay
    meaningful on a busy machine; the best round filters out interruptions.
    """
    for fn, messages in cases.values():
        for data in messages:
            fn(data)  # warm up (and fail loudly if a parser cannot handle a message)
    best = dict.fromkeys(cases, 0.0)
    budget = seconds / rounds
    for _ in range(rounds):
        for name, (fn, messages) in cases.items():
            n = 0
            start = time.perf_counter()
            while True:
                for data in messages:
                    fn(data)
                n += len(messages)
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

    print(
        f"messages: {len(INVITES)} distinct INVITEs of ~{len(INVITE)} bytes, each with a "
        f"{len(SDP)}-byte SDP body"
    )
    if SessionDescription is None:
        print("note: sippa.sdp is not available; SDP bodies are not parsed by sippa/sipmessage")
    cases: dict[str, Case] = {
        "sippa": (sippa_parse, INVITES),
        "sipmessage": (sipmessage_parse, INVITES),
        "pyVoIP": (pyvoip_parse, INVITES),
        # the breakdown of sippa's time: the SIP part alone (typed headers) and the SDP alone
        "sippa SIP only": (sippa_headers, INVITES),
    }
    if SessionDescription is not None:
        cases["sippa.sdp only"] = (sippa_sdp, BODIES)
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
