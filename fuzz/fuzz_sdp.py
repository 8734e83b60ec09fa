"""Atheris fuzz harness for SDP, SDES and offer/answer (run by hand; see fuzz/README.md).

The only invariant (h11 style): for any input, ``parse_sdp``, ``parse_crypto`` and the
negotiator (answering the input as an offer, and applying it as an answer to our offer) return
or raise :class:`~sippa.errors.RemoteProtocolError`. Anything else escaping is a bug. An SDP
that parses must serialise and parse back to the same description.

    pip install atheris
    mkdir -p /tmp/sdp-corpus && cp tests/vectors/sdes/*.sdp tests/vectors/sdes/realworld/*.sdp \
        /tmp/sdp-corpus/
    python fuzz/fuzz_sdp.py -max_len=4096 -runs=1000000 /tmp/sdp-corpus
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from sippa.errors import RemoteProtocolError
    from sippa.sdp import (
        MediaCapabilities,
        Negotiator,
        SrtpPolicy,
        parse_crypto,
        parse_sdp,
    )

_POLICIES = list(SrtpPolicy)


def _negotiator(policy: SrtpPolicy) -> Negotiator:
    caps = MediaCapabilities("192.0.2.1", 4000, srtp=policy)
    return Negotiator(caps, session_id=1, session_version=1, random_bytes=bytes)


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 1)
    policy = _POLICIES[fdp.ConsumeIntInRange(0, len(_POLICIES) - 1)]
    payload = fdp.ConsumeBytes(fdp.remaining_bytes())
    if mode == 1:
        with contextlib.suppress(RemoteProtocolError):
            attr = parse_crypto(payload.decode("utf-8", "replace"))
            if parse_crypto(str(attr)).key_params != attr.key_params:
                raise AssertionError("crypto attribute round trip is not stable")
        return
    try:
        sdp = parse_sdp(payload)
    except RemoteProtocolError:
        return
    if parse_sdp(bytes(sdp)) != sdp:
        raise AssertionError("SDP serialise/parse round trip is not stable")
    with contextlib.suppress(RemoteProtocolError):
        answer, _ = _negotiator(policy).receive_offer(sdp)
        if len(answer.media) != len(sdp.media):
            raise AssertionError("answer must keep the offer's m= line count")
    offerer = _negotiator(policy)
    offerer.create_offer()
    with contextlib.suppress(RemoteProtocolError):
        offerer.receive_answer(sdp)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
