"""The offer/answer negotiator (RFC 3264), with SDES-SRTP (RFC 4568) and hold (RFC 3264 §8.4).

Like PJSIP's ``pjmedia_sdp_neg``, the negotiator is a separate state machine that the INVITE
session drives; it never sees SIP. It turns local capabilities into offers and answers and
peer SDP into a plain :class:`MediaParameters` for the media layer::

    neg = Negotiator(caps, session_id=..., session_version=..., random_bytes=os.urandom)
    offer = neg.create_offer()                # -> SessionDescription; bytes(offer) for the body
    params = neg.receive_answer(answer_sdp)   # -> MediaParameters, or RemoteProtocolError(488)
    answer, params = neg.receive_offer(offer_sdp)   # we are the answerer
    neg.cancel_offer()                        # our offer was refused (488, 491 glare...)
    other = neg.fork()                        # a second early dialog answering the same offer

Choices (documented here because RFC 3264 and RFC 4568 leave them open):

* codecs: the answer keeps the offerer's payload type numbers and order (RFC 3264 §6.1); the
  codec we send is the first one in the peer's list that we support.
* SRTP: the answerer picks by *our* security ranking (:data:`SECURITY_RANKING`, restricted to
  ``MediaCapabilities.suites``), not the offerer's order, and answers with the offer's tag and a
  key of its own (RFC 4568 §5.1.2). Lines with an MKI, several keys, or session parameters we
  cannot honour (UNENCRYPTED_*, UNAUTHENTICATED_SRTP, KDR other than 0, FEC_KEY) are skipped.
* An answer's ``a=crypto`` must echo the tag *and* suite of one of our offered lines (RFC 4568
  §5.1.3); otherwise the answer is refused with a clear reason rather than falling back to
  plain RTP (some stacks answer a non-matching suite and then send plain RTP).
* SRTP policy: ``off`` offers RTP/AVP without crypto and refuses RTP/SAVP; ``best-effort``
  offers RTP/AVP with ``a=crypto`` (RFC 8643 opportunistic style) and accepts plain media with
  ``srtp_reason`` set; ``mandatory`` offers RTP/SAVP and refuses anything without usable crypto.
* Our keys are kept across re-offers and re-answers (so a re-INVITE does not force a re-key);
  :meth:`Negotiator.rekey` draws new ones. Media must keep a running SRTP context (sequence
  numbers and ROC) while the key is unchanged.
* The o= version goes up by one whenever the SDP we send differs from the previous one we sent
  and stays the same for an identical one (RFC 3264 §8); the session id never changes.
* Hold: :meth:`Negotiator.hold_offer` stops receiving (sendonly offer, RFC 3264 §8.4); a peer's
  ``c=0.0.0.0`` (the RFC 2543 hold) is read as "do not send to me". The hold wish survives
  :meth:`Negotiator.cancel_offer` (a retry after 491 is the same hold offer) until
  :meth:`Negotiator.resume_offer`.
* A key lifetime (``|2^20``) in a peer's ``a=crypto`` is accepted and not enforced: calls do not
  re-key, and 2^20 packets last about 5.8 hours at 20 ms.
* Telephone-event is only paired with a codec of the same clock rate (RFC 4733 §2.1); an opus
  call whose peer offers telephone-event/8000 only gets ``telephone_event_pt=None``.
"""

from __future__ import annotations

import copy
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from sippa.errors import LocalProtocolError, ProtocolError, RemoteProtocolError

from .model import (
    Attribute,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    RtpMap,
    SessionDescription,
    Timing,
)
from .sdes import (
    CRYPTO_SUITES,
    SECURITY_RANKING,
    CryptoAttribute,
    CryptoSuite,
    KeyParams,
    new_key_params,
)

__all__ = [
    "DEFAULT_CODECS",
    "G722",
    "OPUS",
    "PCMA",
    "PCMU",
    "Codec",
    "CodecParameters",
    "MediaCapabilities",
    "MediaParameters",
    "Negotiator",
    "NegotiatorState",
    "SrtpPolicy",
]

log = logging.getLogger(__name__)


class NegotiatorState(enum.Enum):
    """Where the offer/answer exchange stands (RFC 3264 §4)."""

    IDLE = "idle"
    """Nothing exchanged yet."""
    LOCAL_OFFER = "local-offer"
    """We sent an offer and wait for the answer."""
    DONE = "done"
    """An offer/answer exchange completed; media parameters are active."""


# State machine: (state, event) -> next state. Anything else is a LocalProtocolError naming both,
# except an offer received while ours is pending (glare, RFC 3261 §14.1), a 491 for the peer.
_TRANSITIONS: dict[tuple[NegotiatorState, str], NegotiatorState] = {
    (NegotiatorState.IDLE, "create_offer"): NegotiatorState.LOCAL_OFFER,
    (NegotiatorState.DONE, "create_offer"): NegotiatorState.LOCAL_OFFER,
    (NegotiatorState.LOCAL_OFFER, "receive_answer"): NegotiatorState.DONE,
    (NegotiatorState.IDLE, "receive_offer"): NegotiatorState.DONE,
    (NegotiatorState.DONE, "receive_offer"): NegotiatorState.DONE,
}


class SrtpPolicy(enum.StrEnum):
    """How much SRTP the phone insists on."""

    OFF = "off"
    """Plain RTP only: offer RTP/AVP without crypto, refuse RTP/SAVP offers."""
    BEST_EFFORT = "best-effort"
    """Offer RTP/AVP with a=crypto (RFC 8643 style); fall back to plain RTP with a reason."""
    MANDATORY = "mandatory"
    """Offer RTP/SAVP; refuse (488) any session without usable crypto."""


@dataclass(frozen=True, slots=True)
class Codec:
    """A codec we can use."""

    name: str
    """Encoding name as in rtpmap (``PCMU``, ``opus``...)."""
    clock_rate: int
    """RTP clock rate (8000 for G.722, RFC 3551 §4.5.2)."""
    channels: int = 1
    """Channels in rtpmap (opus is always ``/2``, RFC 7587 §7)."""
    payload_type: int | None = None
    """Static payload type (RFC 3551), or None for a dynamic one (96..127)."""
    fmtp: str | None = None
    """Format parameters we send in our SDP (what we want to receive)."""

    def matches(self, rtpmap: RtpMap) -> bool:
        """True when ``rtpmap`` names this codec (names compare case-insensitively)."""
        return (rtpmap.encoding.lower() == self.name.lower()
                and rtpmap.clock_rate == self.clock_rate and rtpmap.channels == self.channels)


PCMU = Codec("PCMU", 8000, 1, 0)
PCMA = Codec("PCMA", 8000, 1, 8)
G722 = Codec("G722", 8000, 1, 9)
OPUS = Codec("opus", 48000, 2, None, "useinbandfec=1")
DEFAULT_CODECS = (OPUS, G722, PCMU, PCMA)
_TELEPHONE_EVENT = "telephone-event"
_TE_FMTP = "0-16"  # RFC 4733 §7.1.1: DTMF 0-9 * # A-D and flash

# RFC 3551 §6, Table 4: static audio payload types, used when an offer omits the rtpmap.
_STATIC = {
    0: RtpMap(0, "PCMU", 8000), 3: RtpMap(3, "GSM", 8000), 4: RtpMap(4, "G723", 8000),
    5: RtpMap(5, "DVI4", 8000), 6: RtpMap(6, "DVI4", 16000), 7: RtpMap(7, "LPC", 8000),
    8: RtpMap(8, "PCMA", 8000), 9: RtpMap(9, "G722", 8000), 10: RtpMap(10, "L16", 44100, 2),
    11: RtpMap(11, "L16", 44100), 12: RtpMap(12, "QCELP", 8000), 13: RtpMap(13, "CN", 8000),
    14: RtpMap(14, "MPA", 90000), 15: RtpMap(15, "G728", 8000), 18: RtpMap(18, "G729", 8000),
}
_RTP_PROTOS = frozenset({"RTP/AVP", "RTP/SAVP", "RTP/AVPF", "RTP/SAVPF"})


@dataclass(frozen=True, slots=True)
class MediaCapabilities:
    """What the phone can do for one audio stream; the input to offers and answers."""

    address: str
    """Our RTP address for c= and o= (IPv4 or IPv6 literal)."""
    port: int
    """Our RTP port (RTCP on port + 1 unless rtcp-mux is agreed)."""
    codecs: tuple[Codec, ...] = DEFAULT_CODECS
    """Codecs in our order of preference."""
    ptime: int = 20
    """Packet time we want to receive, ms."""
    telephone_event: bool = True
    """Offer/accept RFC 4733 telephone-event at 8000 Hz (and 48000 Hz with opus)."""
    srtp: SrtpPolicy = SrtpPolicy.MANDATORY
    """SRTP policy."""
    suites: tuple[str, ...] = SECURITY_RANKING
    """Enabled SDES suites; offered in this order, ranked by SECURITY_RANKING when answering."""
    rtcp_mux: bool = True
    """Offer and accept RTP/RTCP multiplexing (RFC 5761)."""
    username: str = "-"
    """o= username."""
    session_name: str = "-"
    """s= text."""

    @property
    def addrtype(self) -> str:
        """``IP6`` for an IPv6 address, else ``IP4``."""
        return "IP6" if ":" in self.address else "IP4"


@dataclass(frozen=True, slots=True)
class CodecParameters:
    """One agreed codec."""

    name: str
    """Encoding name."""
    payload_type: int
    """Payload type number the peer uses for it."""
    clock_rate: int
    """RTP clock rate."""
    channels: int
    """Channels."""
    fmtp: str | None
    """The peer's format parameters for it (what it wants to receive), or None."""


@dataclass(frozen=True, slots=True)
class MediaParameters:
    """The outcome of offer/answer for the audio stream, for the media layer (no SDP inside)."""

    codec: str
    """Codec we send (first of ``codecs``)."""
    payload_type: int
    """Its payload type."""
    clock_rate: int
    """Its RTP clock rate."""
    channels: int
    """Its channel count."""
    fmtp: str | None
    """The peer's format parameters for it."""
    ptime: int
    """Packet time to send, ms (the peer's a=ptime, capped by its a=maxptime, else ours)."""
    telephone_event_pt: int | None
    """Payload type of telephone-event at the codec's clock rate, None when not agreed."""
    remote_address: str
    """Peer's RTP address as in its c= line: an IP literal, ``0.0.0.0`` for an old-style hold,
    or (RFC 8866 §5.7 allows it) a host name the caller must resolve."""
    remote_port: int
    """Peer's RTP port."""
    remote_rtcp_address: str
    """Peer's RTCP address (RFC 3605 a=rtcp, else the RTP address)."""
    remote_rtcp_port: int | None
    """Peer's RTCP port; None when RTCP is multiplexed on the RTP port."""
    rtcp_mux: bool
    """RTP and RTCP share one port (RFC 5761)."""
    direction: Direction
    """Our direction: ``sends``/``receives`` say whether we send and receive."""
    codecs: tuple[CodecParameters, ...]
    """Every agreed codec (telephone-event excluded), the one we send first."""
    srtp_suite: str | None = None
    """Agreed SDES suite, None for plain RTP."""
    srtp_local_key: bytes | None = field(default=None, repr=False)
    """Our sending master key||salt (never logged)."""
    srtp_remote_key: bytes | None = field(default=None, repr=False)
    """Peer's sending master key||salt (never logged)."""
    srtp_reason: str | None = None
    """Why SRTP is not in use, when it is not."""

    @property
    def secure(self) -> bool:
        """True when the media is SRTP protected."""
        return self.srtp_suite is not None


@dataclass(frozen=True, slots=True)
class _SrtpChoice:
    suite: str | None = None
    local: bytes | None = None
    remote: bytes | None = None
    reason: str | None = None
    answer_attr: CryptoAttribute | None = None


# An accepted stream: our answer's m= section, the media parameters, telephone-event PTs by rate.
_Accepted = tuple[MediaDescription, MediaParameters, dict[int, int]]


class Negotiator:
    """RFC 3264 offer/answer for one audio stream in one dialog. Sans-IO and deterministic:
    keys come from ``random_bytes(n)``; the session id and first version are given."""

    def __init__(
        self,
        local: MediaCapabilities,
        *,
        session_id: int,
        session_version: int,
        random_bytes: Callable[[int], bytes],
    ) -> None:
        unknown = [s for s in local.suites if s not in CRYPTO_SUITES]
        if unknown:
            raise LocalProtocolError(f"unknown SRTP suites {unknown}")
        if local.srtp is not SrtpPolicy.OFF and not local.suites:
            raise LocalProtocolError("SRTP enabled but no suite enabled")
        if not local.codecs:
            raise LocalProtocolError("no codecs")
        self.local = local
        self.session_id = session_id
        self._version = session_version
        self._random_bytes = random_bytes
        self.state = NegotiatorState.IDLE
        self.active: MediaParameters | None = None
        """The media parameters of the last completed exchange."""
        self.local_sdp: SessionDescription | None = None
        """The last SDP we produced (offer or answer)."""
        self.remote_sdp: SessionDescription | None = None
        """The last SDP the peer sent that we accepted."""
        self._hold = False
        self._keys: dict[str, KeyParams] = {}
        self._pending: SessionDescription | None = None
        self._pending_prev_state = NegotiatorState.IDLE
        self._offered_crypto: dict[int, CryptoAttribute] = {}
        self._pt_map: dict[tuple[str, int, int], int] = {}  # (name, rate, channels) -> PT
        self._last_content: SessionDescription | None = None
        self._audio_index = 0  # which m= line carries our audio

    # --- state ---
    def _transition(self, event: str) -> NegotiatorState:
        nxt = _TRANSITIONS.get((self.state, event))
        if nxt is None:
            if event == "receive_offer" and self.state is NegotiatorState.LOCAL_OFFER:
                # RFC 3261 §14.2: an offer while ours is outstanding is glare -> 491.
                raise RemoteProtocolError("offer received while our offer is pending", 491)
            raise LocalProtocolError(f"{event} not allowed in state {self.state.value}")
        return nxt

    def _set_state(self, state: NegotiatorState) -> None:
        if state is not self.state:
            log.debug("sdp negotiator %s -> %s", self.state.value, state.value)
        self.state = state

    @property
    def session_version(self) -> int:
        """The o= version of the last SDP we produced (or the initial one)."""
        return self._version

    # --- offers ---
    def create_offer(self) -> SessionDescription:
        """An offer (initial or re-offer) from our capabilities and hold state."""
        nxt = self._transition("create_offer")
        audio = self._build_offer_media()
        # RFC 3264 §8: a re-offer keeps every m= line of the previous SDP, in order; streams we
        # do not use stay rejected with port 0.
        previous = self.local_sdp.media if self.local_sdp is not None else ()
        media = [MediaDescription(md.media, 0, md.proto, md.formats) for md in previous]
        if media:
            media[self._audio_index] = audio
        else:
            media = [audio]
        sdp = self._finish(*media)
        self._pending = sdp
        self._pending_prev_state = self.state
        self._set_state(nxt)
        return sdp

    def hold_offer(self) -> SessionDescription:
        """A re-offer putting the call on hold: we stop receiving (sendonly, RFC 3264 §8.4)."""
        self._hold = True
        return self.create_offer()

    def resume_offer(self) -> SessionDescription:
        """A re-offer taking the call off hold (sendrecv)."""
        self._hold = False
        return self.create_offer()

    def fork(self) -> Negotiator:
        """An independent copy for another dialog of the same INVITE (RFC 3261 §13.2.2.4: a
        forked offer gets one answer per early dialog). The copy shares nothing mutable; it
        keeps the pending offer, keys and version, so each dialog can apply its own answer."""
        twin = copy.copy(self)
        twin._keys = dict(self._keys)
        twin._offered_crypto = dict(self._offered_crypto)
        twin._pt_map = dict(self._pt_map)
        return twin

    def rekey(self) -> None:
        """Use fresh SRTP keys in the next offer or answer (RFC 4568 §7.1.4)."""
        self._keys.clear()

    def cancel_offer(self) -> None:
        """Our pending offer was refused or lost (488, 491 glare, timeout): back to the state
        before it, keeping the previous media parameters."""
        if self.state is not NegotiatorState.LOCAL_OFFER:
            raise LocalProtocolError(f"cancel_offer not allowed in state {self.state.value}")
        self._pending = None
        self._offered_crypto = {}
        self._set_state(self._pending_prev_state)

    def _key_for(self, suite: CryptoSuite) -> KeyParams:
        key = self._keys.get(suite.name)
        if key is None:
            key = self._keys[suite.name] = new_key_params(suite, self._random_bytes)
        return key

    def _build_offer_media(self) -> MediaDescription:
        local = self.local
        wanted = list(local.codecs)
        if local.telephone_event:
            rates = sorted({c.clock_rate for c in local.codecs})
            wanted += [Codec(_TELEPHONE_EVENT, r, 1, None, _TE_FMTP) for r in rates]
        # Keep numbers from earlier exchanges (RFC 3264 §8.3.2), then static ones, then dynamic.
        pts: list[int | None] = []
        used: set[int] = set()
        for codec in wanted:
            pt = self._pt_map.get(_codec_key(codec.name, codec.clock_rate, codec.channels))
            if pt is None:
                pt = codec.payload_type
            if pt is not None and pt in used:
                pt = None
            if pt is not None:
                used.add(pt)
            pts.append(pt)
        dynamic = (n for n in range(96, 128) if n not in used)
        entries: list[tuple[int, Codec]] = []
        for fixed, codec in zip(pts, wanted, strict=True):
            pt = fixed if fixed is not None else next(dynamic, None)
            if pt is None:
                raise LocalProtocolError("out of dynamic payload types")
            entries.append((pt, codec))

        attrs = [Attribute("rtpmap", str(RtpMap(pt, c.name, c.clock_rate, c.channels)))
                 for pt, c in entries]
        attrs += [Attribute("fmtp", f"{pt} {c.fmtp}") for pt, c in entries if c.fmtp]
        attrs.append(Attribute("ptime", str(local.ptime)))
        if local.rtcp_mux:
            attrs.append(Attribute("rtcp-mux"))
        self._offered_crypto = {}
        if local.srtp is not SrtpPolicy.OFF:
            for tag, name in enumerate(local.suites, start=1):
                attr = CryptoAttribute(tag, name, (self._key_for(CRYPTO_SUITES[name]),))
                self._offered_crypto[tag] = attr
                attrs.append(Attribute("crypto", str(attr)))
        attrs.append(Attribute(Direction.of(True, not self._hold).value))
        proto = "RTP/SAVP" if local.srtp is SrtpPolicy.MANDATORY else "RTP/AVP"
        return MediaDescription("audio", local.port, proto, tuple(str(pt) for pt, _ in entries),
                                attributes=tuple(attrs))

    def _finish(self, *media: MediaDescription) -> SessionDescription:
        """Wrap media sections into our SDP, bumping the o= version when the content changed."""
        local = self.local
        content = SessionDescription(
            origin=Origin(local.username, self.session_id, 0, local.address, "IN", local.addrtype),
            session_name=local.session_name,
            connection=Connection(local.address, "IN", local.addrtype),
            timings=(Timing(0, 0),),
            media=media,
        )
        if self._last_content is not None and content != self._last_content:
            self._version += 1  # RFC 3264 §8: one more than the previous SDP we sent
        self._last_content = content
        sdp = replace(content, origin=replace(content.origin, session_version=self._version))
        self.local_sdp = sdp
        return sdp

    # --- answers to our offers ---
    def receive_answer(self, answer: SessionDescription) -> MediaParameters:
        """Apply the peer's answer to our pending offer (RFC 3264 §7).

        Raises RemoteProtocolError (488 for unacceptable media, 400 for a structurally wrong
        answer); the offer then stays pending, so call :meth:`cancel_offer` (and end or
        re-negotiate the call, quoting the error's reason).
        """
        nxt = self._transition("receive_answer")
        offer = self._pending
        if offer is None:  # unreachable: LOCAL_OFFER always has a pending offer
            raise LocalProtocolError("no pending offer")
        # RFC 3264 §6: the answer has exactly as many m= lines as the offer, in the same order.
        if len(answer.media) != len(offer.media):
            raise RemoteProtocolError(
                f"answer has {len(answer.media)} m= lines, our offer had {len(offer.media)} "
                "(RFC 3264 §6)", 400)
        ours, theirs = offer.media[self._audio_index], answer.media[self._audio_index]
        if theirs.media != ours.media:
            raise RemoteProtocolError(f"answer m={theirs.media} where we offered m=audio", 400)
        if theirs.port == 0:
            raise RemoteProtocolError("peer rejected the audio stream (port 0)", 488)
        if theirs.proto.upper() != ours.proto:
            raise RemoteProtocolError(
                f"answer uses {theirs.proto}, we offered {ours.proto} (RFC 3264 §6.1)", 488)
        conn = _connection(answer, theirs)
        codecs, te_pts = self._match_codecs(theirs)
        if not codecs:
            raise RemoteProtocolError("no codec in the answer is one we offered", 488)
        srtp = self._check_answer_crypto(theirs)
        # RFC 3264 §6.1: the answer's direction seen from our side, within what we offered.
        offered = offer.direction(ours)
        remote_dir = answer.direction(theirs)
        direction = Direction.of(
            offered.sends and remote_dir.receives and not conn.is_hold,
            offered.receives and remote_dir.sends,
        )
        mux = self.local.rtcp_mux and theirs.rtcp_mux  # RFC 5761 §5.1.1
        params = _media_parameters(theirs, conn=conn, codecs=codecs, te_pts=te_pts,
                                   direction=direction, mux=mux, srtp=srtp,
                                   local_ptime=self.local.ptime)
        self.remote_sdp = answer
        # Our re-offers keep the numbers of our own offer (RFC 3264 §8.3.2), which the
        # offer-building rules reproduce; only an offer we answered teaches us new ones.
        self._pending = None
        self.active = params
        self._set_state(nxt)
        return params

    def _check_answer_crypto(self, theirs: MediaDescription) -> _SrtpChoice:
        values = theirs.attribute_values("crypto")
        policy = self.local.srtp
        if not values:
            if policy is SrtpPolicy.MANDATORY:
                raise RemoteProtocolError("answer to our RTP/SAVP offer has no a=crypto", 488)
            if policy is SrtpPolicy.BEST_EFFORT:
                return _SrtpChoice(reason="peer answered without a=crypto; plain RTP")
            return _SrtpChoice(reason="SRTP disabled by policy")
        # RFC 4568 §5.1.2: the answer carries exactly one crypto attribute per accepted stream.
        if len(values) != 1:
            raise RemoteProtocolError(
                f"answer has {len(values)} a=crypto lines; exactly one is allowed "
                "(RFC 4568 §5.1.2)", 488)
        try:
            attr = CryptoAttribute.parse(values[0])
        except ProtocolError as exc:
            raise RemoteProtocolError(f"answer a=crypto unusable: {exc.reason}", 488) from None
        offered = self._offered_crypto.get(attr.tag)
        # RFC 4568 §5.1.3: the answer must echo the tag and suite of one of our offered lines.
        if offered is None or offered.suite != attr.suite.upper():
            raise RemoteProtocolError(
                f"answer a=crypto:{attr.tag} {attr.suite} matches none of our offered crypto "
                "lines (RFC 4568 §5.1.3); refusing the session rather than falling back to "
                "plain RTP", 488)
        unsupported = attr.unsupported_params()
        if unsupported:
            raise RemoteProtocolError(
                f"answer a=crypto uses unsupported {', '.join(unsupported)}", 488)
        return _SrtpChoice(offered.suite, offered.key_salt, attr.key_salt)

    # --- answering the peer's offers ---
    def receive_offer(
        self, offer: SessionDescription
    ) -> tuple[SessionDescription, MediaParameters]:
        """Answer the peer's offer (RFC 3264 §6): the first usable audio stream is accepted,
        every other m= line is rejected with port 0. Raises RemoteProtocolError(488) with every
        stream's reason when no audio stream is usable, or 491 when our own offer is pending."""
        nxt = self._transition("receive_offer")
        reasons: list[str] = []
        accepted: _Accepted | None = None
        audio_index = 0
        answer_media: list[MediaDescription] = []
        for index, md in enumerate(offer.media):
            result: _Accepted | str
            if accepted is not None:
                result = "only one audio stream is used"
            else:
                result = self._answer_stream(offer, md)
            if isinstance(result, str):
                reasons.append(f"m={md.media} #{index + 1}: {result}")
                # RFC 3264 §6: a rejected stream keeps its m= line with port 0.
                answer_media.append(MediaDescription(md.media, 0, md.proto, md.formats))
            else:
                accepted, audio_index = result, index
                answer_media.append(result[0])
        if accepted is None:
            raise RemoteProtocolError(
                "no acceptable audio stream: " + ("; ".join(reasons) or "no m= line"), 488)
        _, params, te_pts = accepted
        self._remember_pts(params.codecs, te_pts)
        self._audio_index = audio_index
        sdp = self._finish(*answer_media)
        self.remote_sdp = offer
        self._pending = None
        self.active = params
        self._set_state(nxt)
        return sdp, params

    def _answer_stream(
        self, offer: SessionDescription, md: MediaDescription
    ) -> _Accepted | str:
        local = self.local
        if md.media != "audio":
            return "not audio"
        if md.port == 0:
            return "disabled by the offerer (port 0)"
        proto = md.proto.upper()
        if proto not in _RTP_PROTOS:
            return f"unsupported transport {md.proto}"
        try:
            conn = _connection(offer, md)
            codecs, te_pts = self._match_codecs(md)
        except RemoteProtocolError as exc:
            return exc.reason
        if not codecs:
            return "no common codec"
        srtp = self._choose_offer_crypto(md)
        if isinstance(srtp, str):
            return srtp

        # RFC 3264 §6.1: sendonly <-> recvonly, inactive stays inactive; a c=0.0.0.0 offer
        # (RFC 3264 §8.4, old-style hold) means the offerer does not want media.
        offered = offer.direction(md)
        direction = Direction.of(
            offered.receives and not conn.is_hold,
            offered.sends and not self._hold,
        )
        mux = local.rtcp_mux and md.rtcp_mux
        params = _media_parameters(md, conn=conn, codecs=codecs, te_pts=te_pts,
                                   direction=direction, mux=mux, srtp=srtp,
                                   local_ptime=local.ptime)

        formats = [str(c.payload_type) for c in codecs] + [str(p) for p in te_pts.values()]
        attrs = [Attribute("rtpmap", str(RtpMap(c.payload_type, c.name, c.clock_rate,
                                                c.channels))) for c in codecs]
        attrs += [Attribute("rtpmap", f"{pt} {_TELEPHONE_EVENT}/{rate}")
                  for rate, pt in te_pts.items()]
        for c in codecs:
            own = self._local_codec(c.name, c.clock_rate, c.channels)
            if own is not None and own.fmtp:
                attrs.append(Attribute("fmtp", f"{c.payload_type} {own.fmtp}"))
        attrs += [Attribute("fmtp", f"{pt} {_TE_FMTP}") for pt in te_pts.values()]
        attrs.append(Attribute("ptime", str(local.ptime)))
        if mux:
            attrs.append(Attribute("rtcp-mux"))
        if srtp.answer_attr is not None:
            attrs.append(Attribute("crypto", str(srtp.answer_attr)))
        attrs.append(Attribute(direction.value))
        answer = MediaDescription("audio", local.port, md.proto, tuple(formats),
                                  attributes=tuple(attrs))
        return answer, params, te_pts

    def _choose_offer_crypto(self, md: MediaDescription) -> _SrtpChoice | str:
        """Pick the a=crypto line to accept, or the reason the stream must be refused."""
        policy = self.local.srtp
        values = md.attribute_values("crypto")
        if md.is_secure and policy is SrtpPolicy.OFF:
            return f"{md.proto} offered but SRTP is disabled"
        if policy is SrtpPolicy.OFF:
            return _SrtpChoice(reason="SRTP disabled by policy")
        if not values:
            if md.is_secure:
                return f"{md.proto} offered without a=crypto"
            if policy is SrtpPolicy.MANDATORY:
                return "plain RTP offered but SRTP is mandatory"
            return _SrtpChoice(reason="peer offered plain RTP without a=crypto")

        rank = {name: i for i, name in enumerate(s for s in SECURITY_RANKING
                                                 if s in self.local.suites)}
        best: CryptoAttribute | None = None
        skipped: list[str] = []
        for value in values:
            try:
                attr = CryptoAttribute.parse(value)
            except ProtocolError as exc:
                skipped.append(exc.reason)  # RFC 4568 §5.1.2: an unusable line is ignored
                continue
            suite = attr.suite.upper()
            if suite not in rank:
                skipped.append(f"suite {attr.suite} not enabled")
                continue
            unsupported = attr.unsupported_params()
            if unsupported:
                skipped.append(f"tag {attr.tag}: unsupported {', '.join(unsupported)}")
                continue
            if best is None or rank[suite] < rank[best.suite.upper()]:
                best = attr
        if best is None:
            why = "no acceptable a=crypto (" + "; ".join(skipped) + ")"
            if policy is SrtpPolicy.BEST_EFFORT and not md.is_secure:
                return _SrtpChoice(reason=why)
            return why
        suite_info = CRYPTO_SUITES[best.suite.upper()]
        ours = self._key_for(suite_info)
        answer_attr = CryptoAttribute(best.tag, suite_info.name, (ours,))
        return _SrtpChoice(suite_info.name, ours.key_salt, best.key_salt, None, answer_attr)

    # --- helpers ---
    def _local_codec(self, name: str, rate: int, channels: int) -> Codec | None:
        for c in self.local.codecs:
            if c.name.lower() == name.lower() and c.clock_rate == rate and c.channels == channels:
                return c
        return None

    def _match_codecs(
        self, md: MediaDescription
    ) -> tuple[tuple[CodecParameters, ...], dict[int, int]]:
        """Codecs of ``md`` we support, in its order, and telephone-event PTs by clock rate."""
        rtpmaps = md.rtpmaps()
        fmtps = md.fmtps()
        codecs: list[CodecParameters] = []
        te: dict[int, int] = {}
        for fmt in md.formats:
            if not fmt.isdigit() or int(fmt) > 127:
                continue
            pt = int(fmt)
            rtpmap = rtpmaps.get(pt) or _STATIC.get(pt)
            if rtpmap is None:
                continue
            if rtpmap.encoding.lower() == _TELEPHONE_EVENT:
                if self.local.telephone_event:
                    te.setdefault(rtpmap.clock_rate, pt)
                continue
            own = self._local_codec(rtpmap.encoding, rtpmap.clock_rate, rtpmap.channels)
            if own is not None and all(c.payload_type != pt for c in codecs):
                codecs.append(CodecParameters(own.name, pt, own.clock_rate, own.channels,
                                              fmtps.get(fmt)))
        # RFC 4733 §2.1: telephone-event uses the clock rate of the audio codec.
        rates = {c.clock_rate for c in codecs}
        return tuple(codecs), {r: p for r, p in te.items() if r in rates}

    def _remember_pts(self, codecs: tuple[CodecParameters, ...], te: dict[int, int]) -> None:
        """Keep the offerer's dynamic payload type numbers for our later re-offers
        (RFC 3264 §8.3.2); static codecs keep their RFC 3551 numbers."""
        for c in codecs:
            own = self._local_codec(c.name, c.clock_rate, c.channels)
            if own is not None and own.payload_type is None and 96 <= c.payload_type <= 127:
                self._pt_map[_codec_key(c.name, c.clock_rate, c.channels)] = c.payload_type
        for rate, pt in te.items():
            if 96 <= pt <= 127:
                self._pt_map[_codec_key(_TELEPHONE_EVENT, rate, 1)] = pt


def _codec_key(name: str, rate: int, channels: int) -> tuple[str, int, int]:
    return (name.lower(), rate, channels)


def _connection(sdp: SessionDescription, md: MediaDescription) -> Connection:
    conn = sdp.connection_for(md)
    if conn is None:  # the parser already requires one; kept for SDP built by hand
        raise RemoteProtocolError(f"no c= line for m={md.media}", 400)
    if conn.nettype != "IN" or conn.addrtype not in ("IP4", "IP6"):
        raise RemoteProtocolError(f"unsupported connection {conn}", 488)
    return conn


def _media_parameters(
    md: MediaDescription,
    *,
    conn: Connection,
    codecs: tuple[CodecParameters, ...],
    te_pts: dict[int, int],
    direction: Direction,
    mux: bool,
    srtp: _SrtpChoice,
    local_ptime: int,
) -> MediaParameters:
    first = codecs[0]
    # a=ptime is what the peer wants to receive (RFC 8866 §6.4), capped by a=maxptime (§6.5).
    ptime = md.ptime or float(local_ptime)
    if md.maxptime is not None:
        ptime = min(ptime, md.maxptime)
    ptime_ms = max(1, round(ptime))
    if mux:
        rtcp_address, rtcp_port = conn.host, None
    else:
        rtcp = md.rtcp  # RFC 3605 §2.1
        rtcp_port = rtcp.port if rtcp is not None else md.port + 1
        rtcp_address = rtcp.address if rtcp is not None and rtcp.address else conn.host
    return MediaParameters(
        codec=first.name,
        payload_type=first.payload_type,
        clock_rate=first.clock_rate,
        channels=first.channels,
        fmtp=first.fmtp,
        ptime=ptime_ms,
        telephone_event_pt=te_pts.get(first.clock_rate),
        remote_address=conn.host,
        remote_port=md.port,
        remote_rtcp_address=rtcp_address,
        remote_rtcp_port=rtcp_port,
        rtcp_mux=mux,
        direction=direction,
        codecs=codecs,
        srtp_suite=srtp.suite,
        srtp_local_key=srtp.local,
        srtp_remote_key=srtp.remote,
        srtp_reason=srtp.reason,
    )
