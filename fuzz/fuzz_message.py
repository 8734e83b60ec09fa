"""Atheris fuzz harness for the SIP message layer (run by hand; see fuzz/README.md).

The only invariant (h11 style): for any input, the parsers return a value or raise
:class:`~sippa.errors.RemoteProtocolError`.  Anything else escaping is a bug, and atheris
reports it with the crashing input.  A message that parses must also serialise and parse
again to the same message.

    pip install atheris
    python fuzz/fuzz_message.py -max_len=4096 -runs=1000000 [corpus_dir ...]

With no corpus directory the RFC 4475 torture messages are not used; pass
``tests/vectors/rfc4475`` as a seed corpus (atheris reads the .dat files as seeds).
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from sippa.errors import RemoteProtocolError
    from sippa.sip.framer import StreamFramer
    from sippa.sip.headers import CSeq, NameAddr, Via, parse_name_addr_list, parse_via_list
    from sippa.sip.message import Request, parse_message, validate_request
    from sippa.sip.uri import Uri


def _touch(msg: object) -> None:
    """Every typed accessor: each may only raise RemoteProtocolError."""
    for name in (
        "vias",
        "from_",
        "to",
        "call_id",
        "cseq",
        "max_forwards",
        "contacts",
        "routes",
        "record_routes",
        "content_type",
        "media_type",
    ):
        try:
            value = getattr(msg, name)
            str(value)
        except RemoteProtocolError:
            pass
    if isinstance(msg, Request):
        with contextlib.suppress(RemoteProtocolError):
            validate_request(msg)


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 3)
    payload = fdp.ConsumeBytes(fdp.remaining_bytes())
    if mode == 0:
        try:
            msg = parse_message(payload)
        except RemoteProtocolError:
            return
        _touch(msg)
        again = parse_message(bytes(msg))
        if bytes(again) != bytes(msg):
            raise AssertionError("serialise/parse round trip is not stable")
    elif mode == 1:
        framer = StreamFramer()
        step = max(1, len(payload) // 7)
        try:
            for i in range(0, len(payload), step):
                for message in framer.feed(payload[i : i + step]):
                    with contextlib.suppress(RemoteProtocolError):
                        _touch(parse_message(message))
        except RemoteProtocolError:
            return
    else:
        text = payload.decode("utf-8", "replace")
        for parser in (
            Uri.parse,
            Via.parse,
            NameAddr.parse,
            CSeq.parse,
            parse_via_list,
            parse_name_addr_list,
        ):
            with contextlib.suppress(RemoteProtocolError):
                str(parser(text))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
