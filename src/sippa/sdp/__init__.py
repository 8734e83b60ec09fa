"""L0: SDP (RFC 8866), offer/answer (RFC 3264) and SDES crypto attributes (RFC 4568).

Sans-IO: no sockets, clocks or randomness; keys come from an injected ``random_bytes(n)``.

Model (``model``): ``SessionDescription.parse(data: bytes | str) -> SessionDescription`` (or
``parse_sdp``) and ``bytes(sdp)`` (or ``serialize_sdp``), strict CRLF out, CRLF or LF in.
Frozen dataclasses ``SessionDescription``, ``MediaDescription``, ``Origin``, ``Connection``,
``Bandwidth``, ``Timing``, ``Attribute`` (verbatim, so unknown attributes round-trip), with typed
accessors: ``MediaDescription.rtpmaps() -> dict[int, RtpMap]``, ``.fmtps() -> dict[str, str]``,
``.ptime``, ``.maxptime``, ``.rtcp -> RtcpAttribute | None``, ``.rtcp_mux``, ``.is_secure``,
``.attribute_values(name)``; ``SessionDescription.direction(media) -> Direction`` (media-level
overrides session-level, default sendrecv) and ``.connection_for(media)``.

SDES (``sdes``): ``CryptoAttribute.parse(value)`` / ``str(attr)``, ``KeyParams``,
``CRYPTO_SUITES`` (name -> key/salt lengths), ``SECURITY_RANKING``,
``generate_crypto_offer(suites, random_bytes)``.

Offer/answer (``negotiate``): ``Negotiator(MediaCapabilities, *, session_id, session_version,
random_bytes)`` with ``create_offer()``, ``hold_offer()``, ``resume_offer()``,
``receive_answer(sdp) -> MediaParameters``, ``receive_offer(sdp) -> (answer, MediaParameters)``,
``cancel_offer()``, ``rekey()``, ``fork()``; ``MediaParameters`` is the frozen result for the
media layer.

Errors: malformed input is ``RemoteProtocolError`` with status 400 (413 when too large);
unacceptable media is 488; an offer during our pending offer is 491.
"""

from .model import (
    MAX_SDP_SIZE,
    Attribute,
    Bandwidth,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    RtcpAttribute,
    RtpMap,
    SessionDescription,
    Timing,
    parse_sdp,
    serialize_sdp,
)
from .negotiate import (
    DEFAULT_CODECS,
    G722,
    OPUS,
    PCMA,
    PCMU,
    Codec,
    CodecParameters,
    MediaCapabilities,
    MediaParameters,
    Negotiator,
    NegotiatorState,
    SrtpPolicy,
)
from .sdes import (
    CRYPTO_SUITES,
    SECURITY_RANKING,
    CryptoAttribute,
    CryptoSuite,
    KeyParams,
    generate_crypto_offer,
    parse_crypto,
)

__all__ = [
    "CRYPTO_SUITES",
    "DEFAULT_CODECS",
    "G722",
    "MAX_SDP_SIZE",
    "OPUS",
    "PCMA",
    "PCMU",
    "SECURITY_RANKING",
    "Attribute",
    "Bandwidth",
    "Codec",
    "CodecParameters",
    "Connection",
    "CryptoAttribute",
    "CryptoSuite",
    "Direction",
    "KeyParams",
    "MediaCapabilities",
    "MediaDescription",
    "MediaParameters",
    "Negotiator",
    "NegotiatorState",
    "Origin",
    "RtcpAttribute",
    "RtpMap",
    "SessionDescription",
    "SrtpPolicy",
    "Timing",
    "generate_crypto_offer",
    "parse_crypto",
    "parse_sdp",
    "serialize_sdp",
]
