"""Random local ports: outgoing TCP/TLS connections and RTP sockets.

The reviewed phone picked its source ports as a predictable sequence, which helps off-path
attackers guess a flow (RFC 6056 §1). Every port here comes from :mod:`secrets` over a
configurable range ("SIP TCP Port Min/Max", "RTP Port Min/Max"); a port that is in use is
skipped by drawing again, never by counting upwards.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_EPHEMERAL",
    "PortRange",
    "bind_random_port",
    "bind_rtp_pair",
    "can_disconnect_udp",
    "connect_from_random_port",
    "disconnect_udp",
    "random_port",
]

#: IANA dynamic/private ports (RFC 6335 §6), used when the kernel's range cannot be read.
DEFAULT_EPHEMERAL = (49152, 65535)
_PROC_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# Errors that mean "this local port (or 4-tuple) is taken, draw another one".
_BUSY = {errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES}
# Ranges up to this size are walked as a random permutation, so every port gets its chance.
_PERMUTE_LIMIT = 4096
_RANDOM_ATTEMPTS = 128


@dataclass(frozen=True, slots=True)
class PortRange:
    """An inclusive range of local ports to draw from."""

    low: int
    """Lowest port (e.g. the profile's "SIP TCP Port Min" or "RTP Port Min")."""
    high: int
    """Highest port, inclusive ("... Port Max")."""

    def __post_init__(self) -> None:
        if not 1 <= self.low <= self.high <= 65535:
            raise ValueError(f"bad port range {self.low}-{self.high}")

    def __len__(self) -> int:
        return self.high - self.low + 1

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.low <= port <= self.high

    @classmethod
    def ephemeral(cls) -> PortRange:
        """The kernel's ephemeral range (Linux), else the IANA dynamic range 49152-65535."""
        try:
            low, high = (int(x) for x in _PROC_RANGE.read_text().split())
            return cls(low, high)
        except (OSError, ValueError):
            return cls(*DEFAULT_EPHEMERAL)

    @classmethod
    def narrowed(cls, low: int | None, high: int | None) -> PortRange:
        """The ephemeral range narrowed by optional Min/Max settings (0 or None = not set)."""
        base = cls.ephemeral()
        return cls(low or base.low, high or base.high)


def random_port(
    ports: PortRange, *, even: bool = False, below: Callable[[int], int] = secrets.randbelow
) -> int:
    """One port drawn uniformly from ``ports`` (an even one when ``even``, for RTP)."""
    if even:
        first = ports.low + (ports.low % 2)
        count = (ports.high - first) // 2 + 1
        if count <= 0:
            raise ValueError(f"no even port in {ports.low}-{ports.high}")
        return first + 2 * below(count)
    return ports.low + below(len(ports))


def _candidates(ports: PortRange, even: bool) -> list[int] | None:
    """A random permutation of a small range (None: draw at random instead)."""
    if len(ports) > _PERMUTE_LIMIT:
        return None
    pool = [p for p in range(ports.low, ports.high + 1) if not even or p % 2 == 0]
    secrets.SystemRandom().shuffle(pool)
    return pool


def _draws(ports: PortRange, even: bool, attempts: int | None) -> list[int]:
    pool = _candidates(ports, even)
    if pool is None:
        pool = [random_port(ports, even=even) for _ in range(attempts or _RANDOM_ATTEMPTS)]
    elif attempts is not None:
        pool = pool[:attempts]
    return pool


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET


def bind_random_port(
    sock: socket.socket, host: str, ports: PortRange, *, attempts: int | None = None
) -> int:
    """Bind ``sock`` to a random free port of ``ports`` on ``host``; return the port."""
    for port in _draws(ports, False, attempts):
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in _BUSY:
                continue
            raise
        return port
    raise OSError(errno.EADDRINUSE, f"no free local port in {ports.low}-{ports.high}")


async def connect_from_random_port(
    host: str,
    port: int,
    *,
    ports: PortRange | None = None,
    local_host: str | None = None,
    attempts: int | None = None,
) -> socket.socket:
    """A connected, non-blocking TCP socket whose local port was drawn at random.

    ``host`` is an IP address (server location has already resolved names). A local port
    that is taken, or whose 4-tuple is still in TIME_WAIT, is replaced by a new draw.
    """
    ports = ports or PortRange.ephemeral()
    family = _family(host)
    bind_host = local_host or ("::" if family == socket.AF_INET6 else "0.0.0.0")  # noqa: S104
    loop = asyncio.get_running_loop()
    for local_port in _draws(ports, False, attempts):
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            try:
                sock.bind((bind_host, local_port))
            except OSError as exc:
                if exc.errno in _BUSY:
                    sock.close()
                    continue
                raise
            try:
                await loop.sock_connect(sock, (host, port))
            except OSError as exc:
                if exc.errno in {errno.EADDRINUSE, errno.EADDRNOTAVAIL}:
                    sock.close()
                    continue
                raise
        except BaseException:
            sock.close()
            raise
        return sock
    raise OSError(errno.EADDRINUSE, f"no usable local port in {ports.low}-{ports.high}")


def bind_rtp_pair(
    host: str, ports: PortRange, *, attempts: int | None = None
) -> tuple[socket.socket, socket.socket]:
    """Two bound UDP sockets on a random EVEN port P and P+1 (RTP and RTCP, RFC 3550 §11)."""
    family = _family(host)
    for port in _draws(ports, True, attempts):
        if port + 1 > 65535:
            continue
        rtp = socket.socket(family, socket.SOCK_DGRAM)
        rtcp = socket.socket(family, socket.SOCK_DGRAM)
        try:
            rtp.bind((host, port))
            rtcp.bind((host, port + 1))
        except OSError as exc:
            rtp.close()
            rtcp.close()
            if exc.errno in _BUSY:
                continue
            raise
        rtp.setblocking(False)
        rtcp.setblocking(False)
        return rtp, rtcp
    raise OSError(errno.EADDRINUSE, f"no free even port pair in {ports.low}-{ports.high}")


def _libc_connect() -> Callable[[int, bytes, int], int] | None:
    import ctypes  # noqa: PLC0415
    import ctypes.util  # noqa: PLC0415

    name = ctypes.util.find_library("c")
    try:
        # find_library can come back empty (musl); the running process has libc loaded
        fn = ctypes.CDLL(name, use_errno=True).connect
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)
    fn.restype = ctypes.c_int
    return fn


_UNSPEC_CONNECT: list[Callable[[int, bytes, int], int] | None] = []


def can_disconnect_udp() -> bool:
    """True where :func:`disconnect_udp` works (Linux and the BSDs, through libc)."""
    if not _UNSPEC_CONNECT:
        _UNSPEC_CONNECT.append(_libc_connect() if hasattr(socket, "AF_UNSPEC") else None)
    return _UNSPEC_CONNECT[0] is not None


def disconnect_udp(sock: socket.socket) -> None:
    """Dissolve a connected UDP socket's peer (``connect`` to AF_UNSPEC, POSIX), so it takes
    datagrams from anyone again. Python's ``socket.connect`` cannot express AF_UNSPEC.

    The socket keeps its local port only when it was bound to an explicit one (as every RTP
    socket here is); one bound to port 0 loses it.
    """
    if not can_disconnect_udp():
        raise OSError(errno.EOPNOTSUPP, "cannot disconnect a UDP socket here")
    connect = _UNSPEC_CONNECT[0]
    assert connect is not None
    # A zeroed sockaddr of the socket's own size: only its family (AF_UNSPEC = 0) counts,
    # but the BSDs check the length against the socket's family.
    size = 28 if sock.family == socket.AF_INET6 else 16
    connect(sock.fileno(), bytes(size), size)
    # Linux answers 0; the BSDs dissolve the association and may then report an error for
    # the unspecified address: what counts is that no peer is left.
    try:
        sock.getpeername()
    except OSError as exc:
        if exc.errno == errno.ENOTCONN:
            return
        raise
    raise OSError(errno.EISCONN, "disconnecting a UDP socket failed")
