"""SIP timer values (RFC 3261 §17 and Table 4, RFC 6026 Timers L and M).

Everything here is pure arithmetic on ``T1``/``T2``/``T4``: the cores ask for a duration and add it
to the ``now`` they were given. Timers that only exist to absorb retransmissions on an unreliable
transport are 0 on a reliable one (Timer D, I, J, K); retransmission timers (A, E, G) are ``None``
on a reliable transport, meaning "never fires".
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TimerConfig", "Timers", "is_reliable"]

# RFC 3261 §18: transports that deliver in order without loss. Retransmissions are for UDP only.
RELIABLE_TRANSPORTS = frozenset({"tcp", "tls", "sctp", "tls-sctp", "ws", "wss"})


def is_reliable(transport: str) -> bool:
    """True when ``transport`` (any case) is a reliable, connection-oriented SIP transport."""
    return transport.lower() in RELIABLE_TRANSPORTS


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """The three base timers of RFC 3261 §17.1.1.1 / Table 4, in seconds."""

    t1: float = 0.5
    """RTT estimate; default 500 ms."""
    t2: float = 4.0
    """Maximum retransmit interval for non-INVITE requests and INVITE responses; default 4 s."""
    t4: float = 5.0
    """Maximum duration a message remains in the network; default 5 s."""
    timer_d: float = 32.0
    """Timer D on unreliable transports: "> 32 s" (§17.1.1.2)."""

    # --- RFC 3261 Table 4 -------------------------------------------------------------------
    def a(self, reliable: bool) -> float | None:
        """Timer A, INVITE request retransmit, initially T1 (unreliable only)."""
        return None if reliable else self.t1

    def b(self) -> float:
        """Timer B, INVITE transaction timeout, 64*T1."""
        return 64 * self.t1

    def d(self, reliable: bool) -> float:
        """Timer D, wait time for response retransmits: > 32 s unreliable, 0 reliable."""
        return 0.0 if reliable else self.timer_d

    def e(self, reliable: bool) -> float | None:
        """Timer E, non-INVITE request retransmit, initially T1 (unreliable only)."""
        return None if reliable else self.t1

    def f(self) -> float:
        """Timer F, non-INVITE transaction timeout, 64*T1."""
        return 64 * self.t1

    def g(self, reliable: bool) -> float | None:
        """Timer G, INVITE response retransmit, initially T1 (unreliable only)."""
        return None if reliable else self.t1

    def h(self) -> float:
        """Timer H, wait time for ACK receipt, 64*T1."""
        return 64 * self.t1

    def i(self, reliable: bool) -> float:
        """Timer I, wait time for ACK retransmits: T4 unreliable, 0 reliable."""
        return 0.0 if reliable else self.t4

    def j(self, reliable: bool) -> float:
        """Timer J, wait time for non-INVITE request retransmits: 64*T1 unreliable, 0 reliable."""
        return 0.0 if reliable else 64 * self.t1

    def k(self, reliable: bool) -> float:
        """Timer K, wait time for response retransmits: T4 unreliable, 0 reliable."""
        return 0.0 if reliable else self.t4

    # --- RFC 6026 §8.4 / §8.7 ---------------------------------------------------------------
    def l(self) -> float:  # noqa: E743 - the RFC's name
        """Timer L, wait time for accepted INVITE request retransmits, 64*T1."""
        return 64 * self.t1

    def m(self) -> float:
        """Timer M, wait time for retransmission of 2xx to INVITE, 64*T1."""
        return 64 * self.t1

    def backoff(self, interval: float, *, cap: bool) -> float:
        """The next retransmit interval: doubled, capped at T2 when ``cap`` (§17.1.2.2, §17.2.1)."""
        doubled = interval * 2
        return min(doubled, self.t2) if cap else doubled


@dataclass(slots=True)
class Timers:
    """A named set of deadlines (absolute times); the earliest one is what ``get_timer()`` says."""

    deadlines: dict[str, float] = field(default_factory=dict)

    def start(self, name: str, now: float, duration: float) -> None:
        """Arm (or re-arm) timer ``name`` to fire at ``now + duration``."""
        self.deadlines[name] = now + duration

    def stop(self, name: str) -> None:
        """Disarm timer ``name`` (no-op if it is not armed)."""
        self.deadlines.pop(name, None)

    def stop_all(self) -> None:
        """Disarm every timer."""
        self.deadlines.clear()

    def running(self, name: str) -> bool:
        """True if timer ``name`` is armed."""
        return name in self.deadlines

    def earliest(self) -> float | None:
        """The earliest deadline, or None when nothing is armed."""
        return min(self.deadlines.values(), default=None)

    def pop_due(self, now: float) -> list[str]:
        """Disarm and return the timers due at ``now``, earliest first (ties by name)."""
        due = sorted((when, name) for name, when in self.deadlines.items() if when <= now)
        for _, name in due:
            del self.deadlines[name]
        return [name for _, name in due]
