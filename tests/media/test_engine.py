"""The media engine on real loopback sockets: SRTP tones both ways, latching, hold, DTMF, RTCP."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import secrets
import socket
import struct
from pathlib import Path

import pytest

from sippa.media import (
    DtmfReceived,
    EngineSettings,
    MediaEngine,
    RemoteLatched,
    RtcpByeReceived,
    RtcpReport,
    SourceFinished,
    StreamConfig,
    ToneSource,
    WavFileSource,
    WavRecorder,
)
from sippa.media.audio import AudioSink
from sippa.rtp.srtp import SUITES, SrtpContext
from tests.media.tonecheck import analyse_pcm, analyse_wav

SETTINGS = EngineSettings(rtp_port_min=42000, rtp_port_max=47999, rtcp_interval=0.3)
ALL_SUITES = sorted(SUITES)


class Frames(AudioSink):
    def __init__(self) -> None:
        self.pcm = bytearray()

    def write(self, pcm: bytes) -> None:
        self.pcm += pcm


def pair(
    engine: MediaEngine,
    suite: str | None = "AES_CM_128_HMAC_SHA1_80",
    *,
    codec: str = "PCMU",
    pt: int = 0,
    clock_rate: int = 8000,
    rtcp_mux: bool = False,
) -> tuple[StreamConfig, StreamConfig]:
    pa, pb = engine.reserve_port(rtcp_mux=rtcp_mux), engine.reserve_port(rtcp_mux=rtcp_mux)
    n = SUITES[suite].master_length if suite else 0
    ka, kb = (secrets.token_bytes(n), secrets.token_bytes(n)) if suite else (None, None)
    common = dict(codec=codec, payload_type=pt, clock_rate=clock_rate, telephone_event_pt=101,
                  rtcp_mux=rtcp_mux, remote_host="127.0.0.1", srtp_suite=suite)
    a = StreamConfig(local_port=pa, remote_port=pb, srtp_local_key=ka, srtp_remote_key=kb,
                     **common)  # type: ignore[arg-type]
    b = StreamConfig(local_port=pb, remote_port=pa, srtp_local_key=kb, srtp_remote_key=ka,
                     **common)  # type: ignore[arg-type]
    return a, b


async def test_two_engines_exchange_srtp_tones_for_every_suite(tmp_path: Path) -> None:
    async with MediaEngine(SETTINGS) as one, MediaEngine(SETTINGS) as two:
        calls = []
        for suite in ALL_SUITES:
            a, b = pair(one, suite)
            # the second stream lives in the other engine: move b's reservation over
            one.release_port(b.local_port)  # type: ignore[arg-type]
            b = dataclasses.replace(b, local_port=None)
            sb = two.start_stream(b, source=ToneSource(1000),
                                  sink=WavRecorder(tmp_path / f"{suite}-b.wav"))
            a = dataclasses.replace(a, remote_port=sb.local_port)
            sa = one.start_stream(a, source=ToneSource(500),
                                  sink=WavRecorder(tmp_path / f"{suite}-a.wav"),
                                  record_sent=WavRecorder(tmp_path / f"{suite}-a-sent.wav"))
            calls.append((suite, sa, sb))
        await asyncio.sleep(1.6)
        stats = {suite: (sa.stats(), sb.stats()) for suite, sa, sb in calls}
    for suite, (st_a, st_b) in stats.items():
        assert st_a.packets_received > 50, suite
        assert st_b.packets_received > 50, suite
        assert st_a.auth_failures == st_b.auth_failures == 0, suite
        assert st_b.latched and st_b.remote_address[1] == next(  # type: ignore[index]
            sa.local_port for s, sa, _ in calls if s == suite
        )
        assert analyse_wav(tmp_path / f"{suite}-a.wav").holds(1000), suite
        assert analyse_wav(tmp_path / f"{suite}-b.wav").holds(500), suite
        assert analyse_wav(tmp_path / f"{suite}-a-sent.wav").holds(500), suite
    # and a recording does not "hold" the wrong tone (the check can fail)
    assert not analyse_wav(tmp_path / f"{ALL_SUITES[0]}-a.wav").holds(500)


async def test_wideband_g722_and_rtcp_mux() -> None:
    async with MediaEngine(SETTINGS) as engine:
        a, b = pair(engine, "AEAD_AES_128_GCM", codec="G722", pt=9, rtcp_mux=True)
        rx_a, rx_b = Frames(), Frames()
        sa = engine.start_stream(a, source=ToneSource(3000), sink=rx_a)
        sb = engine.start_stream(b, source=ToneSource(1200), sink=rx_b)
        await asyncio.sleep(1.2)
        assert sa.sample_rate == 16000
        assert analyse_pcm(bytes(rx_a.pcm), 16000).holds(1200, min_active=0.8)
        assert analyse_pcm(bytes(rx_b.pcm), 16000).holds(3000, min_active=0.8)
        # RTCP flowed over the RTP port, authenticated
        assert sa.stats().rtcp_received >= 1
        assert sb.rtcp_socket is None
        assert sa.stats().auth_failures == 0


async def test_latching_happens_only_after_authentication() -> None:
    async with MediaEngine(SETTINGS) as engine:
        a, b = pair(engine)
        decoy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        decoy.bind(("127.0.0.1", 0))
        attacker.bind(("127.0.0.1", 0))
        try:
            # A believes the peer is at the decoy address (e.g. a NAT rewrote it)
            a = dataclasses.replace(a, remote_port=decoy.getsockname()[1])
            sa = engine.start_stream(a, source=ToneSource(500))
            # forged packets: right header, wrong key; and garbage
            forged = SrtpContext(a.srtp_suite, secrets.token_bytes(30), outbound=True)  # type: ignore[arg-type]
            for seq in range(5):
                rtp = struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 0x5EED) + bytes(160)
                attacker.sendto(forged.protect(rtp), ("127.0.0.1", a.local_port))
            attacker.sendto(b"\x00" * 40, ("127.0.0.1", a.local_port))
            await asyncio.sleep(0.2)
            st = sa.stats()
            assert st.auth_failures == 6  # five forged packets and 40 zero octets
            assert not st.latched
            assert st.remote_address == ("127.0.0.1", decoy.getsockname()[1])
            assert sa.pending_events() == []
            # now the real peer speaks: A latches to it, once
            sb = engine.start_stream(b, source=ToneSource(1000))
            await asyncio.sleep(0.3)
            st = sa.stats()
            assert st.latched
            assert st.remote_address == ("127.0.0.1", sb.local_port)
            assert RemoteLatched(("127.0.0.1", sb.local_port)) in sa.pending_events()
            # A's RTP now reaches B (it did not before: B had nothing from A)
            received = sb.stats().packets_received
            await asyncio.sleep(0.2)
            assert sb.stats().packets_received > received
            # the call goes on after all those failures
            assert not sa.closed
        finally:
            decoy.close()
            attacker.close()


def plain_rtp(seq: int, ssrc: int = 7, pt: int = 0) -> bytes:
    return struct.pack("!BBHII", 0x80, pt, seq, seq * 160, ssrc) + bytes(160)


async def test_plain_rtp_from_the_sdp_address_latches_at_once_unknown_pts_do_not() -> None:
    async with MediaEngine(SETTINGS) as engine:
        a, _ = pair(engine, None)
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", 0))
        try:
            sa = engine.start_stream(dataclasses.replace(a, remote_port=peer.getsockname()[1]))
            dest = ("127.0.0.1", sa.local_port)
            peer.sendto(plain_rtp(1, pt=96), dest)  # PT 96 was not negotiated
            await asyncio.sleep(0.1)
            assert not sa.stats().latched
            assert sa.stats().malformed == 1
            peer.sendto(plain_rtp(2), dest)
            await asyncio.sleep(0.1)
            st = sa.stats()
            assert st.latched and st.packets_received == 1 and st.rejected_source == 0
            assert st.remote_address == peer.getsockname()
        finally:
            peer.close()


async def test_plain_rtp_from_elsewhere_is_heard_only_after_probation() -> None:
    """Behind a NAT the peer sends from an address the SDP did not name: it is learned after
    PROBATION packets in sequence from one SSRC; a stray packet (or a scanner's burst with
    broken sequence) is never heard and never moves where our RTP goes."""
    from sippa.media.stream import PROBATION

    async with MediaEngine(SETTINGS) as engine:
        a, _ = pair(engine, None)
        nat, stray = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
        nat.bind(("127.0.0.1", 0))
        stray.bind(("127.0.0.1", 0))
        rx = Frames()
        try:
            sa = engine.start_stream(dataclasses.replace(a, remote_port=9), sink=rx)
            dest = ("127.0.0.1", sa.local_port)
            # a stray packet, then the NAT'd peer interleaved with a stray sender: the
            # interleaving resets the probation each time, nobody is learned
            stray.sendto(plain_rtp(100, ssrc=66), dest)
            for seq in range(1, PROBATION + 2):
                nat.sendto(plain_rtp(seq), dest)
                stray.sendto(plain_rtp(100 + seq, ssrc=66), dest)
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            st = sa.stats()
            assert not st.latched and st.packets_received == 0
            assert st.remote_address == ("127.0.0.1", 9)
            assert st.rejected_source == 2 * (PROBATION + 1) + 1
            # a sequence gap restarts the count too
            for seq in (20, 21, 22, 24):  # PROBATION - 1 in a row, then a gap
                nat.sendto(plain_rtp(seq), dest)
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            assert not sa.stats().latched
            # PROBATION packets in a row: learned; the last one is heard and RTP goes there
            for seq in range(30, 30 + PROBATION):
                nat.sendto(plain_rtp(seq), dest)
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            st = sa.stats()
            assert st.latched and st.packets_received == 1
            assert st.remote_address == nat.getsockname()
            assert RemoteLatched(nat.getsockname()) in sa.pending_events()
            # from now on only the learned source is heard: the stray sender is dropped
            rejected = st.rejected_source
            for seq in range(200, 200 + 3 * PROBATION):
                stray.sendto(plain_rtp(seq, ssrc=66), dest)
            nat.sendto(plain_rtp(30 + PROBATION), dest)
            await asyncio.sleep(0.1)
            st = sa.stats()
            assert st.packets_received == 2
            assert st.rejected_source == rejected + 3 * PROBATION
            assert st.remote_address == nat.getsockname()
        finally:
            nat.close()
            stray.close()


async def test_the_sdp_address_wins_the_rtp_bleed_race() -> None:
    """An attacker who sprays the port before the peer's first packet (RTP Bleed) gets in
    at most until the address the signalling named speaks; after that it is dropped."""
    from sippa.media.stream import PROBATION

    async with MediaEngine(SETTINGS) as engine:
        a, _ = pair(engine, None)
        peer, attacker = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
        peer.bind(("127.0.0.1", 0))
        attacker.bind(("127.0.0.1", 0))
        try:
            sa = engine.start_stream(dataclasses.replace(a, remote_port=peer.getsockname()[1]))
            dest = ("127.0.0.1", sa.local_port)
            for seq in range(1, PROBATION + 1):
                attacker.sendto(plain_rtp(seq, ssrc=666), dest)
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            assert sa.stats().remote_address == attacker.getsockname()  # it did take the latch
            peer.sendto(plain_rtp(1), dest)
            await asyncio.sleep(0.05)
            st = sa.stats()
            assert st.remote_address == peer.getsockname()
            received, rejected = st.packets_received, st.rejected_source
            for seq in range(PROBATION + 1, 3 * PROBATION):
                attacker.sendto(plain_rtp(seq, ssrc=666), dest)
            await asyncio.sleep(0.1)
            st = sa.stats()
            assert st.remote_address == peer.getsockname()
            assert st.packets_received == received
            # dropped by the kernel once the socket is connected to the SDP address, or by us
            assert st.rejected_source in (rejected, rejected + 2 * PROBATION - 1)
            peer.settimeout(1.0)
            assert peer.recvfrom(2048)[1] == dest  # our RTP now reaches the peer
        finally:
            peer.close()
            attacker.close()


async def test_plain_rtcp_only_from_the_peer_host() -> None:
    async with MediaEngine(SETTINGS) as engine:
        a, _ = pair(engine, None)
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", 0))
        try:
            other.bind(("127.0.0.2", 0))
        except OSError:
            pytest.skip("no 127.0.0.2 here")
        try:
            sa = engine.start_stream(dataclasses.replace(a, remote_port=peer.getsockname()[1]))
            assert sa.rtcp_socket is not None
            rtcp_dest = ("127.0.0.1", sa.rtcp_socket.getsockname()[1])
            bye = struct.pack("!BBHI", 0x81, 203, 1, 7)  # RFC 3550 §6.6 BYE for SSRC 7
            other.sendto(bye, rtcp_dest)
            await asyncio.sleep(0.1)
            assert sa.stats().rtcp_received == 0
            assert sa.stats().rejected_source == 1
            assert not any(isinstance(e, RtcpByeReceived) for e in sa.pending_events())
            peer.sendto(bye, rtcp_dest)
            await asyncio.sleep(0.1)
            assert sa.stats().rtcp_received == 1
            assert any(isinstance(e, RtcpByeReceived) for e in sa.pending_events())
        finally:
            peer.close()
            other.close()


@pytest.mark.parametrize("behind_nat", [False, True], ids=["sdp-address", "nat"])
async def test_after_latching_to_the_sdp_address_only_the_peer_reaches_the_stream(
    behind_nat: bool,
) -> None:
    from sippa.media.stream import PROBATION
    from sippa.net.ports import can_disconnect_udp

    if not can_disconnect_udp():
        pytest.skip("no connect(AF_UNSPEC) here: streams stay unconnected")
    async with MediaEngine(SETTINGS) as engine:
        a, _ = pair(engine, None)
        peer, other = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
        peer.bind(("127.0.0.1", 0))
        other.bind(("127.0.0.1", 0))
        # the SDP names the peer's address, or (behind a NAT) an address it does not send from
        sdp_port = 9 if behind_nat else peer.getsockname()[1]
        sa = engine.start_stream(dataclasses.replace(a, remote_port=sdp_port))
        dest = ("127.0.0.1", sa.local_port)

        def rtp(seq: int) -> bytes:
            return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 7) + bytes(160)

        try:
            for seq in range(-PROBATION + 1, 2) if behind_nat else (1,):
                peer.sendto(rtp(seq & 0xFFFF), dest)  # behind a NAT: learned after probation
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            assert sa.stats().remote_address == peer.getsockname()
            # the peer gets our RTP (connected or not)
            peer.settimeout(1.0)
            assert peer.recvfrom(2048)[1] == dest
            received, rejected = sa.stats().packets_received, sa.stats().rejected_source
            for seq in range(2, 12):
                other.sendto(rtp(seq), dest)
            await asyncio.sleep(0.1)
            if behind_nat:
                # latched to an address the SDP did not name: not connected, so the real
                # peer could never be locked out by a stray first packet
                with pytest.raises(OSError):
                    sa.rtp_socket.getpeername()
                # but plain RTP from anyone but the learned source is dropped by us
                assert sa.stats().packets_received == received
                assert sa.stats().rejected_source == rejected + 10
                return
            assert sa.rtp_socket.getpeername() == peer.getsockname()
            # someone else's valid-looking RTP never reaches the stream (dropped by the kernel)
            assert sa.stats().packets_received == received
            assert sa.stats().malformed == sa.stats().auth_failures == 0
            # a re-INVITE to a new remote undoes it: latching starts over, anyone may speak
            sa.update(dataclasses.replace(sa.config, remote_port=other.getsockname()[1]))
            with pytest.raises(OSError):
                sa.rtp_socket.getpeername()
            assert sa.rtp_socket.getsockname() == dest  # the port stays ours
            other.sendto(rtp(20), dest)
            await asyncio.sleep(0.1)
            assert sa.stats().packets_received == received + 1
            assert sa.rtp_socket.getpeername() == other.getsockname()
        finally:
            peer.close()
            other.close()


async def test_auth_failures_are_counted_and_never_end_the_call() -> None:
    async with MediaEngine(SETTINGS) as engine:
        a, b = pair(engine)
        sa = engine.start_stream(a, source=ToneSource(500))
        # B with the wrong remote key: everything it receives fails authentication
        bad = dataclasses.replace(b, srtp_remote_key=secrets.token_bytes(30))
        rx = Frames()
        sb = engine.start_stream(bad, source=ToneSource(1000), sink=rx)
        # baresip's clear RTCP APP "PING" on the RTCP port fails SRTCP authentication too
        ping = struct.pack("!BBHI4s", 0x80, 204, 2, 0x1234, b"PING")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(ping, ("127.0.0.1", sb.local_port + 1))
        await asyncio.sleep(0.6)
        st = sb.stats()
        assert st.auth_failures >= 20
        assert st.rtcp_auth_failures >= 1  # the PING (and A's SRTCP under the wrong key)
        assert st.packets_received == 0
        assert not st.latched
        assert not analyse_pcm(bytes(rx.pcm), 8000).holds(500, min_active=0.1)
        # A is unaffected and still receives B
        assert sa.stats().packets_received > 20
        assert not sb.closed


async def test_hold_directions_and_update() -> None:
    async with MediaEngine(SETTINGS) as engine:
        a, b = pair(engine)
        rx_a, rx_b = Frames(), Frames()
        sa = engine.start_stream(dataclasses.replace(a, direction="sendonly"),
                                 source=ToneSource(500), sink=rx_a)
        sb = engine.start_stream(dataclasses.replace(b, direction="recvonly"),
                                 source=ToneSource(1000), sink=rx_b)
        await asyncio.sleep(0.6)
        assert sb.stats().packets_sent == 0
        assert sa.stats().packets_received == 0
        assert sb.stats().packets_received > 10
        assert rx_a.pcm == b""  # sendonly: nothing is played
        assert analyse_pcm(bytes(rx_b.pcm), 8000).holds(500, min_active=0.2)
        # both still exchange RTCP while on hold (RFC 3264 §5.1)
        assert sa.stats().rtcp_received >= 1
        assert sb.stats().rtcp_received >= 1
        # inactive: no RTP either way
        sa.update(dataclasses.replace(a, direction="inactive"))
        sb.update(dataclasses.replace(b, direction="inactive"))
        await asyncio.sleep(0.1)
        sent_a, sent_b = sa.stats().packets_sent, sb.stats().packets_sent
        await asyncio.sleep(0.3)
        assert sa.stats().packets_sent == sent_a
        assert sb.stats().packets_sent == sent_b
        # resume: sendrecv both ways, same SSRC and continuing sequence numbers
        ssrc = sa.ssrc
        sa.update(a)
        sb.update(b)
        await asyncio.sleep(0.5)
        assert sa.ssrc == ssrc
        assert sa.stats().packets_received > 5
        assert sb.stats().packets_sent > 5
        with pytest.raises(ValueError):
            sa.update(dataclasses.replace(a, local_port=a.local_port + 2))  # type: ignore[operator]


async def test_rekey_and_new_remote_on_update() -> None:
    async with MediaEngine(SETTINGS) as engine:
        a, b = pair(engine)
        sa = engine.start_stream(a, source=ToneSource(500))
        sb = engine.start_stream(b, source=ToneSource(1000))
        await asyncio.sleep(0.3)
        k1, k2 = secrets.token_bytes(30), secrets.token_bytes(30)
        sa.update(dataclasses.replace(a, srtp_local_key=k1, srtp_remote_key=k2))
        sb.update(dataclasses.replace(b, srtp_local_key=k2, srtp_remote_key=k1))
        before = sb.stats().packets_received
        await asyncio.sleep(0.3)
        assert sb.stats().packets_received > before + 5
        assert sb.stats().auth_failures <= 2  # at most packets in flight during the switch


async def test_dtmf_and_rtcp_reports_and_bye(tmp_path: Path) -> None:
    async with MediaEngine(SETTINGS) as engine:
        a, b = pair(engine)
        sa = engine.start_stream(a, source=ToneSource(500))
        sb = engine.start_stream(b, source=ToneSource(1000))
        sa.send_dtmf("19#", duration_ms=60)
        with pytest.raises(Exception, match="DTMF"):
            sa.send_dtmf("x")
        await asyncio.sleep(1.2)
        events = sb.pending_events()
        digits = [e.digit for e in events if isinstance(e, DtmfReceived)]
        assert digits == ["1", "9", "#"]
        reports = [e for e in sa.pending_events() if isinstance(e, RtcpReport)]
        assert reports
        assert any(r.rtt is not None and r.rtt < 0.5 for r in reports)
        assert sa.stats().rtt is not None
        assert sa.stats().packets_lost == 0
        await engine.stop_stream(sa)
        assert sa.closed
        await asyncio.sleep(0.1)
        assert any(isinstance(e, RtcpByeReceived) for e in sb.pending_events())


async def test_wav_source_end_is_reported(tmp_path: Path) -> None:
    import wave

    path = tmp_path / "short.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(2 * 800))  # 100 ms
    async with MediaEngine(SETTINGS) as engine:
        a, _ = pair(engine)
        sa = engine.start_stream(a, source=WavFileSource(path))
        event = await asyncio.wait_for(sa.next_event(), 2)
        assert isinstance(event, SourceFinished)


async def test_ports_are_random_even_and_in_range() -> None:
    settings = EngineSettings(rtp_port_min=43000, rtp_port_max=43999)
    async with MediaEngine(settings) as engine:
        ports = [engine.reserve_port() for _ in range(20)]
        assert all(p % 2 == 0 and 43000 <= p <= 43998 for p in ports)
        assert len(set(ports)) == 20
        diffs = {b - a for a, b in itertools.pairwise(ports)}
        assert diffs != {2}  # not sequential
        with pytest.raises(ValueError):
            engine.start_stream(StreamConfig("PCMU", 0, local_port=43001))  # not reserved
        for p in ports:
            engine.release_port(p)


async def test_engine_stop_closes_everything() -> None:
    engine = MediaEngine(SETTINGS)
    with pytest.raises(RuntimeError):
        engine.start_stream(StreamConfig("PCMU", 0))
    await engine.start()
    a, b = pair(engine)
    sa = engine.start_stream(a)
    sb = engine.start_stream(b)
    await asyncio.sleep(0.1)
    await engine.stop()
    assert sa.closed and sb.closed
    assert sa.rtp_socket.fileno() == -1
    assert engine.streams == frozenset()


async def test_echo_sends_back_what_arrives() -> None:
    from sippa.media import Echo

    async with MediaEngine(SETTINGS) as engine:
        a, b = pair(engine, "AEAD_AES_256_GCM")
        rx = Frames()
        engine.start_stream(a, source=ToneSource(700), sink=rx)
        echo = Echo()
        engine.start_stream(b, source=echo, sink=echo)
        await asyncio.sleep(1.4)
        assert analyse_pcm(bytes(rx.pcm), 8000).holds(700, min_active=0.8)


def test_stream_config_validation_and_repr_hides_keys() -> None:
    key = secrets.token_bytes(30)
    c = StreamConfig("PCMU", 0, remote_host="127.0.0.1", remote_port=4000,
                     srtp_suite="AES_CM_128_HMAC_SHA1_80", srtp_local_key=key, srtp_remote_key=key)
    assert key.hex() not in repr(c) and str(key) not in repr(c)
    assert c.remote_rtcp == ("127.0.0.1", 4001)
    assert dataclasses.replace(c, rtcp_mux=True).remote_rtcp == ("127.0.0.1", 4000)
    assert dataclasses.replace(c, remote_rtcp_port=5005).remote_rtcp == ("127.0.0.1", 5005)
    for bad in (
        dict(payload_type=128),
        dict(direction="sideways"),
        dict(ptime=0),
        dict(remote_host="example.com"),
        dict(srtp_remote_key=None),
    ):
        with pytest.raises(ValueError):
            dataclasses.replace(c, **bad)  # type: ignore[arg-type]
