"""An in-memory "network" for UA cores: a fake clock and scripted loss, delay, duplication.

Cores are attached by their local addresses; everything one queues is delivered to the core
listening at the destination after ``latency`` (plus any scripted delay). Deterministic: ties are
broken by send order, and ids come from counters.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from sippa.sip.core import CoreConfig, UserAgentCore
from sippa.sip.events import Address, Event
from sippa.sip.headers import NameAddr
from sippa.sip.timers import TimerConfig
from sippa.sip.uri import Uri


@dataclass
class Packet:
    """One message on the wire."""

    data: bytes
    src: Address
    dst: Address
    sent_at: float

    @property
    def first_line(self) -> str:
        return self.data.split(b"\r\n", 1)[0].decode()

    @property
    def is_response(self) -> bool:
        return self.data.startswith(b"SIP/2.0 ")

    @property
    def method(self) -> str | None:
        """Method of a request, None for a response."""
        return None if self.is_response else self.first_line.split(" ", 1)[0]

    @property
    def status(self) -> int | None:
        return int(self.first_line.split(" ")[1]) if self.is_response else None

    @property
    def cseq_method(self) -> str:
        for line in self.data.split(b"\r\n"):
            if line.lower().startswith(b"cseq:"):
                return line.split()[-1].decode()
        return ""

    def header(self, name: str) -> str | None:
        prefix = name.lower().encode() + b":"
        for line in self.data.split(b"\r\n"):
            if line.lower().startswith(prefix):
                return line.split(b":", 1)[1].strip().decode()
        return None


Match = Callable[[Packet], bool]


def request(method: str) -> Match:
    """Matches requests of ``method``."""
    return lambda p: p.method == method


def response(status: int | range, method: str | None = None) -> Match:
    """Matches responses with ``status`` (a code or a range) to ``method`` (any if None)."""

    def match(p: Packet) -> bool:
        if p.status is None:
            return False
        ok = p.status in status if isinstance(status, range) else p.status == status
        return ok and (method is None or p.cseq_method == method)

    return match


@dataclass
class Rule:
    """A scripted fault: applies to the next ``times`` packets that ``match``."""

    match: Match
    action: str  # "drop" | "duplicate" | "delay"
    times: int = 1
    delay: float = 0.0


@dataclass
class Node:
    """One attached core and the events it produced."""

    name: str
    core: UserAgentCore
    events: list[Event] = field(default_factory=list)

    def of(self, kind: type) -> list:  # type: ignore[type-arg]
        """Events of one class."""
        return [e for e in self.events if isinstance(e, kind)]


def make_core(
    name: str,
    host: str,
    port: int = 5060,
    *,
    transport: str = "udp",
    timers: TimerConfig | None = None,
    **kwargs: object,
) -> UserAgentCore:
    """A core with deterministic ids (``name-1``, ``name-2``...) and a fixed random source."""
    counter = itertools.count(1)
    rand_values: list[float] = list(kwargs.pop("rand_values", []) or [])  # type: ignore[call-overload]
    local = (Address(transport, host, port),)
    config = CoreConfig(
        local=local,
        aor=NameAddr(None, Uri("sip", name, None, host, None)),
        contact_user=name,
        timers=timers or TimerConfig(),
        **kwargs,  # type: ignore[arg-type]
    )

    def rand() -> float:
        return rand_values.pop(0) if rand_values else 0.5

    return UserAgentCore(config, ids=lambda: f"{name}{next(counter)}", rand=rand)


class Network:
    """Delivers what attached cores send, on a fake clock."""

    def __init__(self, latency: float = 0.01) -> None:
        self.now = 0.0
        self.latency = latency
        self.nodes: dict[tuple[str, str, int], Node] = {}
        self._flight: list[tuple[float, int, Packet]] = []
        self._seq = itertools.count()
        self.rules: list[Rule] = []
        self.sent: list[Packet] = []
        """Every packet queued by a core (before faults)."""
        self.delivered: list[Packet] = []
        self.lost: list[Packet] = []
        self.raw: dict[tuple[str, str, int], list[Packet]] = {}
        """Addresses of hand-driven peers: what reaches them is stored here (see ``listen``)."""
        self.source_override: dict[tuple[str, str, int], Address] = {}
        """Make a node's packets appear to come from another address (a NAT)."""

    # --- wiring -------------------------------------------------------------------------------
    def add(self, name: str, core: UserAgentCore) -> Node:
        node = Node(name, core)
        for address in core.config.local:
            self.nodes[(address.transport, address.host, address.port)] = node
        return node

    def listen(self, address: Address) -> list[Packet]:
        """A hand-driven peer at ``address``: returns its inbox (answer with ``inject``)."""
        inbox: list[Packet] = []
        self.raw[(address.transport, address.host, address.port)] = inbox
        return inbox

    def drop(self, match: Match, times: int = 1) -> None:
        self.rules.append(Rule(match, "drop", times))

    def duplicate(self, match: Match, times: int = 1) -> None:
        self.rules.append(Rule(match, "duplicate", times))

    def delay(self, match: Match, by: float, times: int = 1) -> None:
        self.rules.append(Rule(match, "delay", times, by))

    def inject(self, data: bytes, src: Address, dst: Address) -> None:
        """Put a raw datagram on the wire (a hand-written peer)."""
        self._push(Packet(data, src, dst, self.now), self.now + self.latency)

    # --- running ------------------------------------------------------------------------------
    def _push(self, packet: Packet, at: float) -> None:
        heapq.heappush(self._flight, (at, next(self._seq), packet))

    def _collect(self) -> None:
        for node in self._unique_nodes():
            for data, dst in node.core.messages_to_send():
                local = next(
                    (a for a in node.core.config.local if a.transport == dst.transport),
                    node.core.config.local[0],
                )
                key = (local.transport, local.host, local.port)
                src = self.source_override.get(key, local)
                packet = Packet(data, src, dst, self.now)
                self.sent.append(packet)
                at = self.now + self.latency
                copies = 1
                for rule in self.rules:
                    if rule.times != 0 and rule.match(packet):
                        rule.times -= 1
                        if rule.action == "drop":
                            copies = 0
                        elif rule.action == "duplicate":
                            copies = 2
                        elif rule.action == "delay":
                            at += rule.delay
                        break
                for i in range(copies):
                    self._push(packet, at + i * 0.001)
                if copies == 0:
                    self.lost.append(packet)
            while (event := node.core.next_event()) is not None:
                node.events.append(event)

    def _unique_nodes(self) -> list[Node]:
        seen: list[Node] = []
        for node in self.nodes.values():
            if node not in seen:
                seen.append(node)
        return seen

    def run(self, until: float | None = None, *, duration: float | None = None) -> None:
        """Deliver and fire timers until nothing is left, or until ``until``/``now+duration``."""
        if duration is not None:
            until = self.now + duration
        for _ in range(100_000):
            self._collect()
            times = [self._flight[0][0]] if self._flight else []
            for node in self._unique_nodes():
                deadline = node.core.get_timer()
                if deadline is not None:
                    times.append(deadline)
            if not times:
                break
            t = min(times)
            if until is not None and t > until:
                break
            self.now = max(self.now, t)
            while self._flight and self._flight[0][0] <= self.now:
                _, _, packet = heapq.heappop(self._flight)
                key = (packet.dst.transport, packet.dst.host, packet.dst.port)
                if key in self.raw:
                    self.delivered.append(packet)
                    self.raw[key].append(packet)
                    continue
                node = self.nodes.get(key)
                if node is None:
                    self.lost.append(packet)
                    continue
                self.delivered.append(packet)
                node.core.receive(packet.data, packet.src, self.now)
                self._collect()
            for node in self._unique_nodes():
                deadline = node.core.get_timer()
                if deadline is not None and deadline <= self.now:
                    node.core.handle_timer(self.now)
        else:  # pragma: no cover - a livelock is a test failure
            raise AssertionError("network did not settle")
        self._collect()
        if until is not None:
            self.now = max(self.now, until)

    # --- inspection ---------------------------------------------------------------------------
    def sent_by(self, node: Node, match: Match | None = None) -> list[Packet]:
        addrs = {(a.transport, a.host, a.port) for a in node.core.config.local}
        return [
            p
            for p in self.sent
            if (p.src.transport, p.src.host, p.src.port) in addrs or self._overridden(p.src, addrs)
            if match is None or match(p)
        ]

    def _overridden(self, src: Address, addrs: set[tuple[str, str, int]]) -> bool:
        return any(self.source_override.get(a) == src for a in addrs)
