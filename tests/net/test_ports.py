"""Random local ports: uniform draws, retry on busy ports, never a sequence."""

from __future__ import annotations

import asyncio
import itertools
import socket

import pytest

from sippa.net.ports import (
    PortRange,
    bind_random_port,
    bind_rtp_pair,
    connect_from_random_port,
    random_port,
)
from tests.peers.process import free_port_block


def test_range_validation_and_narrowing() -> None:
    with pytest.raises(ValueError):
        PortRange(0, 10)
    with pytest.raises(ValueError):
        PortRange(5000, 4000)
    eph = PortRange.ephemeral()
    assert 1024 <= eph.low < eph.high <= 65535
    assert PortRange.narrowed(None, None) == eph
    assert PortRange.narrowed(40000, 40100) == PortRange(40000, 40100)
    assert PortRange.narrowed(eph.low + 10, None) == PortRange(eph.low + 10, eph.high)
    assert 40050 in PortRange(40000, 40100) and 39999 not in PortRange(40000, 40100)


def test_random_port_stays_in_range_and_even_when_asked() -> None:
    ports = PortRange(16385, 16483)
    seen = {random_port(ports, even=True) for _ in range(500)}
    assert all(p % 2 == 0 and p in ports for p in seen)
    assert len(seen) > 30  # spread over the 49 even ports, not a constant
    assert random_port(PortRange(7, 7)) == 7
    with pytest.raises(ValueError):
        random_port(PortRange(7, 7), even=True)


def test_random_port_uses_the_injected_source() -> None:
    assert random_port(PortRange(1000, 1999), below=lambda n: n - 1) == 1999
    assert random_port(PortRange(1001, 1999), even=True, below=lambda n: 0) == 1002


def test_bind_skips_busy_ports() -> None:
    # a 3-port range with two ports taken: the free one must be found. Another process may take
    # a port of the block between our check and our bind: then try another block (never skip).
    for _attempt in range(5):
        base = free_port_block(3, udp=False)
        ports = PortRange(base, base + 2)
        busy: list[socket.socket] = []
        try:
            for p in (base, base + 1):
                s = socket.socket()
                busy.append(s)
                s.bind(("127.0.0.1", p))
            with socket.socket() as s:
                assert bind_random_port(s, "127.0.0.1", ports) == base + 2
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", base + 2))
                with pytest.raises(OSError):
                    bind_random_port(b, "127.0.0.1", ports)
            return
        except OSError:
            continue
        finally:
            for s in busy:
                s.close()
    pytest.fail("no block of 3 free ports stayed free long enough")


def test_rtp_pair_is_even_and_adjacent() -> None:
    ports = PortRange(20000, 29999)
    pairs = [bind_rtp_pair("127.0.0.1", ports) for _ in range(8)]
    try:
        got = [(a.getsockname()[1], b.getsockname()[1]) for a, b in pairs]
        assert all(p % 2 == 0 and q == p + 1 and p in ports for p, q in got)
        firsts = sorted(p for p, _ in got)
        assert any(b - a != 2 for a, b in itertools.pairwise(firsts))
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def _sequential(ports: list[int]) -> int:
    """How many consecutive draws were the previous port plus one or two."""
    return sum(1 for a, b in itertools.pairwise(ports) if 0 < b - a <= 2)


async def test_twenty_tcp_connections_use_random_source_ports() -> None:
    accepted: list[int] = []

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer.get_extra_info("peername")[1])
        writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    local: list[int] = []
    try:
        for _ in range(20):
            sock = await connect_from_random_port("127.0.0.1", port)
            local.append(sock.getsockname()[1])
            sock.close()
    finally:
        server.close()
        await server.wait_closed()
    eph = PortRange.ephemeral()
    assert all(p in eph for p in local)
    assert len(set(local)) == 20
    assert _sequential(local) <= 1, local
    await asyncio.sleep(0.05)
    assert sorted(accepted) == sorted(local)  # the server saw exactly these source ports


async def test_connect_honours_a_narrow_range() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "::1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            low = probe.getsockname()[1]
        ports = PortRange(low, min(low + 20, 65535))
        sock = await connect_from_random_port("::1", port, ports=ports)
        assert sock.family == socket.AF_INET6
        assert sock.getsockname()[1] in ports
        sock.close()
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(("family", "host"), [(socket.AF_INET, "127.0.0.1"),
                                               (socket.AF_INET6, "::1")])
def test_a_connected_udp_socket_can_be_disconnected_and_keeps_its_port(
    family: socket.AddressFamily, host: str
) -> None:
    from sippa.net.ports import can_disconnect_udp, disconnect_udp

    if not can_disconnect_udp():
        pytest.skip("no connect(AF_UNSPEC) through libc here")
    try:
        sock, peer, other = (socket.socket(family, socket.SOCK_DGRAM) for _ in range(3))
    except OSError:
        pytest.skip("no IPv6 here")
    with sock, peer, other:
        try:
            sock.bind((host, 0))
        except OSError:
            pytest.skip("no IPv6 loopback here")
        port = sock.getsockname()[1]
        sock.close()
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.bind((host, port))  # an explicit port, as RTP sockets have
        peer.bind((host, 0))
        other.bind((host, 0))
        sock.connect(peer.getsockname()[:2])
        sock.settimeout(0.5)
        other.sendto(b"dropped", sock.getsockname()[:2])  # not from the connected peer
        peer.sendto(b"kept", sock.getsockname()[:2])
        assert sock.recv(64) == b"kept"
        disconnect_udp(sock)
        with pytest.raises(OSError):
            sock.getpeername()
        assert sock.getsockname()[1] == port
        other.sendto(b"now welcome", (host, port))
        assert sock.recv(64) == b"now welcome"
        disconnect_udp(sock)  # harmless when not connected
        sock.close()
