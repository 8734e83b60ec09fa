"""One RTP/SRTP audio stream: what the engine's scheduler and receiver drive.

The stream owns no task: :meth:`MediaStream.tick` is called by the engine's scheduler once per
frame (send one frame, play one frame out, send RTCP when due) and
:meth:`on_rtp_datagram` / :meth:`on_rtcp_datagram` by its receiver. Bad media is dropped and
counted, never raised: an SRTP packet that fails authentication (or is a replay) only bumps
``auth_failures`` (RFC 3711 §3.3, step 5), so a peer's stray clear RTCP "PING" (baresip)
cannot end a call.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import socket
import struct
from collections import deque
from collections.abc import Callable

from sippa.errors import RemoteProtocolError
from sippa.media.audio import AudioSink, AudioSource
from sippa.media.config import EngineSettings, StreamConfig
from sippa.media.events import (
    DtmfReceived,
    MediaEvent,
    RemoteLatched,
    RtcpByeReceived,
    RtcpReport,
    SourceFinished,
    StreamStats,
)
from sippa.media.playout import Playout
from sippa.net.ports import can_disconnect_udp, disconnect_udp
from sippa.rtp.codecs import get_decoder, get_encoder
from sippa.rtp.dtmf import DtmfPacket, DtmfReceiver, DtmfSender, digit_to_event
from sippa.rtp.packet import peek_rtp
from sippa.rtp.rtcp import (
    ReceptionStats,
    ReportBlock,
    RtcpBye,
    RtcpPacket,
    RtcpReceiverReport,
    RtcpSdes,
    RtcpSenderReport,
    ntp_from_unix,
    parse_rtcp,
    round_trip_time,
    serialize_rtcp,
)
from sippa.rtp.srtp import SrtpContext, SrtpError

__all__ = ["MediaStream"]

_log = logging.getLogger(__name__)
_HEADER = struct.Struct("!BBHII")
_UNPACK_FIXED = struct.Struct("!xBHII").unpack_from
_MAX_EVENTS = 256
PROBATION = 4
"""Packets in sequence a plain-RTP source the SDP did not name must send before it is heard."""
_random = secrets.SystemRandom()


def _same_address(addr: tuple[str, int], expected: tuple[str, int] | None) -> bool:
    if expected is None or addr[1] != expected[1]:
        return False
    try:
        return ipaddress.ip_address(addr[0]) == ipaddress.ip_address(expected[0])
    except ValueError:
        return False


class MediaStream:
    """A running audio stream. Created by :meth:`MediaEngine.start_stream`."""

    # Slots: hundreds of streams are walked every 20 ms; a compact layout keeps each
    # stream's hot state in fewer cache lines than a per-instance dict (and reads faster).
    __slots__ = (
        "__weakref__",
        "_clock",
        "_conceal",
        "_connected",
        "_decode",
        "_decoder",
        "_dtmf_rx",
        "_dtmf_sender",
        "_dtmf_tx",
        "_encode",
        "_encoder",
        "_event_waiter",
        "_events",
        "_latch_rtcp",
        "_latch_rtp",
        "_log_prefix",
        "_marker",
        "_mux",
        "_next_rtcp",
        "_pending_digits",
        "_playout",
        "_probe",
        "_protect",
        "_pt",
        "_receiving",
        "_remote_fraction_lost",
        "_remote_jitter",
        "_rtt",
        "_rx_source",
        "_rx_srtp",
        "_rx_stats",
        "_samples_per_frame",
        "_sending",
        "_sent_since_report",
        "_seq",
        "_source_finished",
        "_te_pt",
        "_ts",
        "_ts_step",
        "_tx_srtp",
        "_unprotect",
        "_wallclock",
        "auth_failures",
        "closed",
        "cname",
        "config",
        "latched",
        "late_frames_skipped",
        "local_port",
        "malformed",
        "name",
        "octets_received",
        "octets_sent",
        "packets_received",
        "packets_sent",
        "record_sent",
        "rejected_source",
        "remote",
        "remote_rtcp",
        "rtcp_auth_failures",
        "rtcp_received",
        "rtcp_sent",
        "rtcp_socket",
        "rtp_socket",
        "sample_rate",
        "send_errors",
        "settings",
        "sink",
        "source",
        "ssrc",
    )

    def __init__(
        self,
        config: StreamConfig,
        rtp_socket: socket.socket,
        rtcp_socket: socket.socket | None,
        *,
        settings: EngineSettings,
        clock: Callable[[], float],
        wallclock: Callable[[], float],
        source: AudioSource | None = None,
        sink: AudioSink | None = None,
        record_sent: AudioSink | None = None,
        name: str = "",
    ) -> None:
        self.rtp_socket = rtp_socket
        self.rtcp_socket = rtcp_socket
        self.local_port = int(rtp_socket.getsockname()[1])
        self.name = name or f"rtp:{self.local_port}"
        self.settings = settings
        self._clock = clock
        self._wallclock = wallclock
        self.source = source or AudioSource()
        self.sink = sink
        self.record_sent = record_sent
        self.closed = False
        self._connected = False
        """The RTP socket is connected to the latched remote."""
        # RFC 3550 §5.1: random initial SSRC, sequence number and timestamp.
        self.ssrc = secrets.randbits(32) or 1
        self._seq = secrets.randbits(16)
        self._ts = secrets.randbits(32)
        self.cname = f"{secrets.token_hex(8)}@sippa"  # RFC 7022: a random CNAME per stream
        self._marker = True  # RFC 3551 §4.1: first packet of a talkspurt
        self._events: deque[MediaEvent] = deque(maxlen=_MAX_EVENTS)
        self._event_waiter: asyncio.Future[None] | None = None
        self._source_finished = False
        # counters
        self.packets_sent = 0
        self.octets_sent = 0
        self.packets_received = 0
        self.octets_received = 0
        self.auth_failures = 0
        self.rtcp_auth_failures = 0
        self.malformed = 0
        self.rejected_source = 0
        self.send_errors = 0
        self.late_frames_skipped = 0
        self.rtcp_sent = 0
        self.rtcp_received = 0
        self._rx_stats: ReceptionStats | None = None
        self._remote_fraction_lost: float | None = None
        self._remote_jitter: float | None = None
        self._rtt: float | None = None
        self._sent_since_report = False
        self._dtmf_rx: DtmfReceiver | None = None
        self._dtmf_tx: deque[DtmfPacket] = deque()
        self._pending_digits: deque[tuple[str, int]] = deque()
        self.config = config
        self._configure(config, first=True)
        now = clock()
        self._next_rtcp = now + self._rtcp_interval(initial=True)

    def __repr__(self) -> str:
        return f"<MediaStream {self.name} {self.config!r}>"

    # --- configuration (start and re-INVITE) ---

    def _configure(self, config: StreamConfig, *, first: bool) -> None:
        old = None if first else self.config
        self.config = config
        self._log_prefix = f"[{self.name}]"
        if old is None or (old.codec, old.clock_rate, old.channels) != (
            config.codec,
            config.clock_rate,
            config.channels,
        ):
            self._encoder = get_encoder(
                config.codec, config.clock_rate, config.channels, ptime=config.ptime
            )
            self._decoder = get_decoder(
                config.codec, config.clock_rate, config.channels, ptime=config.ptime
            )
            self.sample_rate = self._encoder.sample_rate
            self.source.open(self.sample_rate)
            if self.sink is not None:
                self.sink.open(self.sample_rate)
            if self.record_sent is not None:
                self.record_sent.open(self.sample_rate)
        self._samples_per_frame = self.sample_rate * config.ptime // 1000
        self._ts_step = config.clock_rate * config.ptime // 1000
        self._pt = config.payload_type
        self._te_pt = config.telephone_event_pt
        self._encode = self._encoder.encode
        self._decode = self._decoder.decode
        self._conceal = self._decoder.conceal
        self._mux = config.rtcp_mux
        if old is None or (old.srtp_suite, old.srtp_local_key, old.srtp_remote_key) != (
            config.srtp_suite,
            config.srtp_local_key,
            config.srtp_remote_key,
        ):
            if config.srtp_suite is not None:
                assert config.srtp_local_key is not None  # checked by StreamConfig
                assert config.srtp_remote_key is not None
                self._tx_srtp: SrtpContext | None = SrtpContext(
                    config.srtp_suite, config.srtp_local_key, outbound=True
                )
                self._rx_srtp: SrtpContext | None = SrtpContext(
                    config.srtp_suite, config.srtp_remote_key, outbound=False
                )
            else:
                self._tx_srtp = self._rx_srtp = None
        self._protect = self._tx_srtp.protect if self._tx_srtp is not None else None
        self._unprotect = self._rx_srtp.unprotect if self._rx_srtp is not None else None
        if old is None or (old.remote_rtp, old.remote_rtcp) != (config.remote_rtp,
                                                                 config.remote_rtcp):
            # A new remote (re-INVITE) restarts symmetric-RTP latching.
            self._disconnect()
            self.remote = config.remote_rtp
            self.remote_rtcp = config.remote_rtcp
            self._latch_rtp = config.symmetric_rtp
            self._latch_rtcp = config.symmetric_rtp
            self.latched = False
            self._rx_source: tuple[str, int] | None = None
            self._probe: tuple[tuple[str, int], int, int, int] | None = None
        self._sending = config.sends
        self._receiving = config.receives
        if old is None or old.ptime != config.ptime or old.clock_rate != config.clock_rate:
            self._playout = Playout(
                config.clock_rate,
                self._samples_per_frame,
                config.ptime,
                min_delay=self.settings.jitter_min_delay,
                max_delay=self.settings.jitter_max_delay,
                initial_delay=self.settings.jitter_initial_delay,
            )
        if self._te_pt is not None:
            self._dtmf_rx = self._dtmf_rx or DtmfReceiver()
            self._dtmf_sender = DtmfSender(config.clock_rate, config.ptime)
        else:
            self._dtmf_rx = None

    def update(self, config: StreamConfig) -> None:
        """Apply a re-negotiated configuration (re-INVITE: hold, new remote, new keys).

        SSRC, sequence number and timestamp continue (RFC 3550 §5.1); the local port
        cannot change (a new port means a new stream).
        """
        if config.local_port not in (None, self.local_port):
            raise ValueError("a stream keeps its local port; start a new stream instead")
        if config.rtcp_mux != self.config.rtcp_mux:
            raise ValueError("rtcp-mux cannot change during a stream")
        was_sending = self._sending
        self._configure(config, first=False)
        if self._sending and not was_sending:
            self._marker = True
        _log.info("%s updated: %r", self._log_prefix, config)

    # --- events ---

    def _emit(self, event: MediaEvent) -> None:
        self._events.append(event)
        waiter = self._event_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pending_events(self) -> list[MediaEvent]:
        """Take every event reported so far (DTMF, latching, RTCP, source end)."""
        events = list(self._events)
        self._events.clear()
        return events

    async def next_event(self) -> MediaEvent:
        """Wait for the next event."""
        while not self._events:
            self._event_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._event_waiter
            finally:
                self._event_waiter = None
        return self._events.popleft()

    # --- DTMF (RFC 4733) ---

    def send_dtmf(self, digits: str, duration_ms: int = 100) -> None:
        """Queue telephone events; they replace audio frames while they play (RFC 4733 §2.5)."""
        if self._te_pt is None:
            raise ValueError("telephone-event was not negotiated for this stream")
        if duration_ms <= 0:
            raise ValueError("DTMF duration must be positive")
        for digit in digits:
            digit_to_event(digit)  # raises LocalProtocolError for anything but 0-9*#A-D
        for digit in digits:
            self._pending_digits.append((digit, duration_ms))

    # --- the paced send / playout path (called by the scheduler) ---

    def skip(self, frames: int) -> None:
        """The scheduler fell behind: advance the media clock without sending."""
        self.late_frames_skipped += frames
        self._ts = (self._ts + frames * self._ts_step) & 0xFFFFFFFF
        self._marker = True

    def tick(self, deadline: float, now: float) -> None:
        """Send this frame, play one frame out, send RTCP when due."""
        if self._sending and self.remote is not None:
            if not self._dtmf_tx and self._pending_digits and self._te_pt is not None:
                digit, duration = self._pending_digits.popleft()
                self._dtmf_tx.extend(self._dtmf_sender.packets(digit, self._ts, duration))
            if self._dtmf_tx:
                self._send_dtmf_frame()
            else:
                pcm = self.source.read(self._samples_per_frame)
                if self.record_sent is not None:
                    self.record_sent.write(pcm)
                self._send_rtp(self._pt, self._encode(pcm))
                if not self._source_finished and self.source.finished:
                    self._source_finished = True
                    self._emit(SourceFinished())
        else:
            self._ts = (self._ts + self._ts_step) & 0xFFFFFFFF
        if self._receiving and self.sink is not None:
            self.sink.write(self._playout.get(now, self._decode, self._conceal))
        if now >= self._next_rtcp:
            self._send_rtcp(now)

    def _send_rtp(self, pt: int, payload: bytes, *, advance: bool = True) -> None:
        marker = self._marker
        self._marker = False
        packet = _HEADER.pack(
            0x80, (0x80 if marker else 0) | pt, self._seq, self._ts, self.ssrc
        ) + payload
        if self._protect is not None:
            packet = self._protect(packet)
        try:
            if self._connected:
                self.rtp_socket.send(packet)
            else:
                self.rtp_socket.sendto(packet, self.remote)  # type: ignore[arg-type]
        except OSError:
            self.send_errors += 1
        self._seq = (self._seq + 1) & 0xFFFF
        if advance:
            self._ts = (self._ts + self._ts_step) & 0xFFFFFFFF
        self.packets_sent += 1
        self.octets_sent += len(payload)
        self._sent_since_report = True

    def _send_dtmf_frame(self) -> None:
        # RFC 4733 §2.5.1: one event packet per frame slot, all with the event's start
        # timestamp; the media clock keeps running underneath, audio resumes with a marker.
        assert self._te_pt is not None  # only queued when negotiated
        packet = self._dtmf_tx.popleft()
        media_ts = self._ts
        self._ts = packet.timestamp
        self._marker = packet.marker
        self._send_rtp(self._te_pt, packet.payload, advance=False)
        self._ts = (media_ts + self._ts_step) & 0xFFFFFFFF
        if not self._dtmf_tx:
            self._marker = True

    # --- receiving ---

    def on_rtp_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        """One datagram arrived on the RTP port (RTCP too, with rtcp-mux)."""
        if self._mux and len(data) > 1 and 64 <= (data[1] & 0x7F) <= 95:  # is_rtcp, inlined
            self.on_rtcp_datagram(data, addr)
            return
        if self._unprotect is not None:
            try:
                data = self._unprotect(data)
            except SrtpError:
                self._auth_failed("SRTP", addr)
                return
        if data[0] == 0x80 and len(data) > 12:
            # Fast path: RFC 3550 §5.1 header without CSRC, extension or padding.
            b1, seq, ts, ssrc = _UNPACK_FIXED(data, 0)
            pt, marker, start, end = b1 & 0x7F, b1 > 0x7F, 12, len(data)
        else:
            try:
                pt, seq, ts, ssrc, marker, start, end = peek_rtp(data)
            except RemoteProtocolError:
                self.malformed += 1
                return
        if pt != self._pt and pt != self._te_pt:  # noqa: PLR1714 (no tuple per packet)
            self.malformed += 1  # not a payload type we negotiated
            return
        if self._unprotect is None:
            # Plain RTP carries no proof of origin: only the learned source reaches the call.
            if addr != self._rx_source and not self._admit_plain(addr, ssrc, seq):
                return
        elif self._latch_rtp:
            self._latch(addr, rtcp=False)
        now = self._clock()
        stats = self._rx_stats
        if stats is None or stats.ssrc != ssrc:
            stats = self._rx_stats = ReceptionStats(ssrc, self.config.clock_rate)
            self._playout.reset()
        stats.update(seq, ts, now)
        self.packets_received += 1
        self.octets_received += end - start
        if pt == self._te_pt:
            if self._dtmf_rx is not None:
                try:
                    detected = self._dtmf_rx.receive(data[start:end], ts)
                except RemoteProtocolError:
                    self.malformed += 1
                    return
                if detected is not None:
                    self._emit(DtmfReceived(detected.digit))
            return
        if self._receiving and self.sink is not None:
            self._playout.buffer.put_payload(seq, ts, data[start:end], now, marker)

    def _auth_failed(self, what: str, addr: tuple[str, int]) -> None:
        if what == "SRTCP":
            self.rtcp_auth_failures += 1
            count = self.rtcp_auth_failures
        else:
            self.auth_failures += 1
            count = self.auth_failures
        if count <= 3 or not count % 1000:
            _log.warning(
                "%s dropped %s packet from %s:%s failing authentication (%d so far)",
                self._log_prefix, what, addr[0], addr[1], count,
            )

    def _admit_plain(self, addr: tuple[str, int], ssrc: int, seq: int) -> bool:
        """Whether a plain RTP packet from a source not (yet) learned may reach the call.

        SRTP proves where a packet comes from; plain RTP does not, so anyone who guesses
        the port could speak into the call or, by sending first, take the symmetric-RTP
        latch ("RTP Bleed"). The source the SDP named is trusted at once, and wins over a
        source learned otherwise. Any other source is learned only after PROBATION
        packets in sequence from one SSRC (RFC 3550 §6.2.1's probation for a new source;
        Asterisk's "strictrtp" does the same), and only while nothing is learned yet:
        behind a NAT the peer's packets come from an address the SDP did not name.
        Packets from anyone else are dropped and counted.
        """
        if _same_address(addr, self.config.remote_rtp):
            self._learn_source(addr)
            return True
        if self._rx_source is None:
            probe = self._probe
            if (
                probe is not None
                and probe[0] == addr
                and probe[1] == ssrc
                and seq == (probe[2] + 1) & 0xFFFF
            ):
                count = probe[3] + 1
            else:
                count = 1
            if count >= PROBATION:
                self._learn_source(addr)
                return True
            self._probe = (addr, ssrc, seq, count)
        self.rejected_source += 1
        if self.rejected_source <= 3 or not self.rejected_source % 1000:
            _log.warning(
                "%s dropped plain RTP from %s:%s, not the call's %s (%d so far)",
                self._log_prefix, addr[0], addr[1],
                "source" if self._rx_source is not None else "SDP address",
                self.rejected_source,
            )
        return False

    def _learn_source(self, addr: tuple[str, int]) -> None:
        self._rx_source = addr
        self._probe = None
        if self.config.symmetric_rtp:
            self._latch_rtp = True  # latch (again: the SDP's address wins) to the learned source
            self._latch(addr, rtcp=False)

    def _plain_rtcp_allowed(self, addr: tuple[str, int]) -> bool:
        # Plain RTCP (a BYE, made-up reports) is taken only from the host the RTP comes
        # from or the host the SDP named for RTCP.
        host = addr[0]
        learned = self._rx_source
        if learned is not None and learned[0] == host:
            return True
        for named in (self.config.remote_rtcp, self.config.remote_rtp):
            if named is not None and _same_address((host, named[1]), named):
                return True
        self.rejected_source += 1
        return False

    def _latch(self, addr: tuple[str, int], *, rtcp: bool) -> None:
        # RFC 4961 / symmetric RTP: latch to the source of the first packet that passed
        # authentication, once; later packets from elsewhere never move the destination.
        if rtcp:
            self._latch_rtcp = False
            if addr != self.remote_rtcp:
                self.remote_rtcp = addr
                self._emit(RemoteLatched(addr, rtcp=True))
            return
        self._latch_rtp = False
        self.latched = True
        if addr != self.remote:
            _log.info("%s latched RTP to %s:%s", self._log_prefix, addr[0], addr[1])
            self.remote = addr
            self._emit(RemoteLatched(addr))
            if self._mux:
                self.remote_rtcp = addr
        # When the first authenticated packet came from exactly the address the SDP named,
        # connect the socket to it: the kernel then drops datagrams from anyone else, and a
        # connected UDP send skips the per-packet route lookup. Not when it came from
        # elsewhere (a NAT, or a stray or late packet of someone else): connecting would
        # lock the real peer out for the rest of the call.
        if _same_address(addr, self.config.remote_rtp) and can_disconnect_udp():
            try:
                self.rtp_socket.connect(addr)
            except OSError as exc:
                _log.info("%s cannot connect RTP to %s:%s: %s", self._log_prefix, *addr[:2], exc)
            else:
                self._connected = True

    def _disconnect(self) -> None:
        if not self._connected:
            return
        self._connected = False
        try:
            disconnect_udp(self.rtp_socket)
        except OSError:
            _log.exception("%s cannot disconnect the RTP socket", self._log_prefix)

    def on_rtcp_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        """One datagram arrived on the RTCP port (or an RTCP one on the muxed port)."""
        if self._rx_srtp is not None:
            try:
                data = self._rx_srtp.unprotect_rtcp(data)
            except SrtpError:
                self._auth_failed("SRTCP", addr)
                return
        elif not self._plain_rtcp_allowed(addr):
            return
        try:
            packets = parse_rtcp(data)
        except RemoteProtocolError:
            self.malformed += 1
            return
        self.rtcp_received += 1
        if self._latch_rtcp and not self._mux:
            self._latch(addr, rtcp=True)
        wall = self._wallclock()
        for packet in packets:
            self._on_rtcp_packet(packet, wall)

    def _on_rtcp_packet(self, packet: RtcpPacket, wall: float) -> None:
        blocks: tuple[ReportBlock, ...] = ()
        if isinstance(packet, RtcpSenderReport):
            if self._rx_stats is not None and packet.ssrc == self._rx_stats.ssrc:
                self._rx_stats.on_sender_report(packet, wall)
            blocks = packet.reports
        elif isinstance(packet, RtcpReceiverReport):
            blocks = packet.reports
        elif isinstance(packet, RtcpBye):
            self._emit(RtcpByeReceived(packet.reason.decode("utf-8", "replace")))
        for block in blocks:
            if block.ssrc != self.ssrc:
                continue
            rtt = round_trip_time(block, wall)
            if rtt is not None:
                self._rtt = rtt
            self._remote_fraction_lost = block.fraction_lost / 256
            self._remote_jitter = block.jitter / self.config.clock_rate
            self._emit(
                RtcpReport(
                    block.fraction_lost / 256,
                    block.cumulative_lost,
                    block.jitter / self.config.clock_rate,
                    rtt,
                )
            )

    # --- RTCP sending (RFC 3550 §6) ---

    def _rtcp_interval(self, *, initial: bool = False) -> float:
        # RFC 3550 §6.3.1: randomized to 0.5..1.5 times the interval; the first report
        # comes after half of it (§6.2: 2.5 s minimum at start when the interval is 5 s).
        base = self.settings.rtcp_interval * (0.5 if initial else 1.0)
        return base * (0.5 + _random.random())

    def _compound(self, wall: float, *, bye: bool = False) -> bytes:
        blocks = []
        if self._rx_stats is not None and self._rx_stats.received:
            blocks.append(self._rx_stats.report_block(wall))
        first: RtcpPacket
        if self._sent_since_report or (bye and self.packets_sent):
            # RFC 3550 §6.4.1: SR when we sent RTP since the last report.
            first = RtcpSenderReport(
                self.ssrc,
                ntp_from_unix(wall),
                self._ts,
                self.packets_sent,
                self.octets_sent,
                tuple(blocks),
            )
        else:
            first = RtcpReceiverReport(self.ssrc, tuple(blocks))
        self._sent_since_report = False
        packets: list[RtcpPacket] = [first, RtcpSdes.cname_for(self.ssrc, self.cname)]
        if bye:
            packets.append(RtcpBye((self.ssrc,)))
        return serialize_rtcp(packets)

    def _send_rtcp(self, now: float, *, bye: bool = False) -> None:
        self._next_rtcp = now + self._rtcp_interval()
        dest = self.remote_rtcp
        if dest is None:
            return
        data = self._compound(self._wallclock(), bye=bye)
        if self._tx_srtp is not None:
            data = self._tx_srtp.protect_rtcp(data)
        sock = self.rtp_socket if self._mux or self.rtcp_socket is None else self.rtcp_socket
        try:
            if self._connected and sock is self.rtp_socket and dest == self.remote:
                sock.send(data)  # BSDs refuse sendto() with an address on a connected socket
            else:
                sock.sendto(data, dest)
        except OSError:
            self.send_errors += 1
        self.rtcp_sent += 1

    # --- stats and shutdown ---

    def stats(self) -> StreamStats:
        """A snapshot of the counters."""
        rx = self._rx_stats
        return StreamStats(
            packets_sent=self.packets_sent,
            octets_sent=self.octets_sent,
            packets_received=self.packets_received,
            octets_received=self.octets_received,
            packets_lost=max(0, rx.lost) if rx is not None else 0,
            jitter=rx.jitter / self.config.clock_rate if rx is not None else 0.0,
            remote_fraction_lost=self._remote_fraction_lost,
            remote_jitter=self._remote_jitter,
            rtt=self._rtt,
            auth_failures=self.auth_failures,
            rtcp_auth_failures=self.rtcp_auth_failures,
            malformed=self.malformed,
            rejected_source=self.rejected_source,
            send_errors=self.send_errors,
            late_frames_skipped=self.late_frames_skipped,
            concealed_frames=self._playout.concealed,
            rtcp_sent=self.rtcp_sent,
            rtcp_received=self.rtcp_received,
            remote_address=self.remote,
            latched=self.latched,
            rtcp_short_tag=self._rx_srtp.rtcp_short_tag if self._rx_srtp is not None else 0,
        )

    def close(self) -> None:
        """Send RTCP BYE (RFC 3550 §6.6), close sockets, source and sinks. Idempotent."""
        if self.closed:
            return
        self.closed = True
        try:
            self._send_rtcp(self._clock(), bye=True)
        except Exception:
            _log.exception("%s RTCP BYE failed", self._log_prefix)
        for closer in (self.source.close, *(s.close for s in (self.sink, self.record_sent) if s)):
            try:
                closer()
            except Exception:
                _log.exception("%s closing audio failed", self._log_prefix)
        self.rtp_socket.close()
        if self.rtcp_socket is not None:
            self.rtcp_socket.close()
