"""SIP dialogs (RFC 3261 §12): state kept between two UAs and the requests built from it.

A :class:`Dialog` is created by a UAC from a 1xx-with-tag or 2xx response (§12.1.2) and by a UAS
from the request it answers (§12.1.1). It owns the route set, the remote target and both CSeq
spaces, builds in-dialog requests (§12.2.1.1, including strict routing towards RFC 2543 proxies)
and checks in-dialog requests (§12.2.2).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import Enum

from sippa.errors import LocalProtocolError, RemoteProtocolError
from sippa.sip.headers import NameAddr
from sippa.sip.message import Headers, Request, Response
from sippa.sip.uri import Uri

__all__ = ["Dialog", "DialogId", "DialogState"]

log = logging.getLogger(__name__)

# RFC 3261 §8.1.1.5: the initial CSeq must be less than 2**31.
MAX_INITIAL_CSEQ = 2**31 - 1
# RFC 3261 §19.1.1 (table): URI parameters not allowed in a Request-URI.
_NOT_IN_REQUEST_URI = ("method",)


class DialogState(Enum):
    """§12: early (created by a provisional) or confirmed (by a 2xx)."""

    EARLY = "early"
    CONFIRMED = "confirmed"


@dataclass(frozen=True, slots=True)
class DialogId:
    """§12: Call-ID, local tag and remote tag."""

    call_id: str
    local_tag: str
    remote_tag: str


@dataclass(slots=True)
class Dialog:
    """One dialog, seen from our side."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: NameAddr
    """Our address (From of our requests), without tag."""
    remote_uri: NameAddr
    """The peer's address (To of our requests), without tag."""
    remote_target: Uri
    """Contact of the peer: the Request-URI of our requests (§12.1)."""
    route_set: list[NameAddr] = field(default_factory=list)
    """Record-Route, in the order our requests must carry them."""
    local_seq: int = 0
    """Last CSeq number we used (0 = none yet)."""
    remote_seq: int | None = None
    """Last CSeq number the peer used, None while empty."""
    local_contact: NameAddr | None = None
    """Our Contact, sent in target-refresh requests."""
    secure: bool = False
    """§12.1.1/§12.1.2: the request was sent over TLS to a sips Request-URI."""
    state: DialogState = DialogState.EARLY
    is_uac: bool = True
    """True when we sent the dialog-creating request."""

    @property
    def id(self) -> DialogId:
        """The dialog id (§12)."""
        return DialogId(self.call_id, self.local_tag, self.remote_tag)

    # --- creation ------------------------------------------------------------------------------
    @classmethod
    def create_uac(cls, request: Request, response: Response, *, secure: bool = False) -> Dialog:
        """§12.1.2: a dialog from our ``request`` and a 1xx-with-tag or 2xx ``response``."""
        contacts = response.contacts
        remote_target = contacts[0].uri if contacts else request.uri
        from_, to = request.from_, response.to
        dialog = cls(
            call_id=request.call_id,
            local_tag=from_.tag or "",
            remote_tag=to.tag or "",  # an RFC 2543 peer may omit it: the empty tag (§12.1.2)
            local_uri=_without_tag(from_),
            remote_uri=_without_tag(to),
            remote_target=remote_target,
            # §12.1.2: the route set is the Record-Route list in reverse order
            route_set=list(reversed(response.record_routes)),
            local_seq=request.cseq.seq,
            remote_seq=None,
            local_contact=request.contacts[0] if request.contacts else None,
            secure=secure or _sent_secure(request),
            state=DialogState.CONFIRMED if 200 <= response.status_code < 300 else DialogState.EARLY,
            is_uac=True,
        )
        log.debug("[%s] UAC dialog %s (%s)", dialog.call_id, dialog.id, dialog.state.value)
        return dialog

    @classmethod
    def create_uas(
        cls,
        request: Request,
        local_tag: str,
        local_contact: NameAddr | None,
        *,
        secure: bool = False,
        confirmed: bool = False,
    ) -> Dialog:
        """§12.1.1: a dialog from the ``request`` we answer with a To tag ``local_tag``."""
        contacts = request.contacts
        if not contacts:
            raise RemoteProtocolError("dialog-creating request without Contact", 400)
        dialog = cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=request.from_.tag or "",
            local_uri=_without_tag(request.to),
            remote_uri=_without_tag(request.from_),
            remote_target=contacts[0].uri,
            # §12.1.1: Record-Route in order
            route_set=list(request.record_routes),
            local_seq=0,
            remote_seq=request.cseq.seq,
            local_contact=local_contact,
            secure=secure or _sent_secure(request),
            state=DialogState.CONFIRMED if confirmed else DialogState.EARLY,
            is_uac=False,
        )
        log.debug("[%s] UAS dialog %s (%s)", dialog.call_id, dialog.id, dialog.state.value)
        return dialog

    def confirm(self, response: Response | None = None) -> None:
        """Early -> confirmed. For a UAC, the 2xx ``response`` recomputes the route set and the
        remote target (§13.2.2.4, §12.1.2)."""
        if response is not None and self.is_uac:
            self.route_set = list(reversed(response.record_routes))
            self.refresh_target(response)
        if self.state is not DialogState.CONFIRMED:
            log.debug("[%s] dialog %s: early -> confirmed", self.call_id, self.id)
        self.state = DialogState.CONFIRMED

    # --- in-dialog requests --------------------------------------------------------------------
    def refresh_target(self, message: Request | Response) -> None:
        """Target refresh (§12.2: re-INVITE, UPDATE and their 2xx): take the new Contact."""
        contacts = message.contacts
        if contacts and not contacts[0].is_star:
            self.remote_target = contacts[0].uri

    def next_seq(self) -> int:
        """Take the next local CSeq number (§12.2.1.1)."""
        self.local_seq = self.local_seq + 1 if self.local_seq else 1
        return self.local_seq

    def request_uri_and_routes(self) -> tuple[Uri, list[str]]:
        """§12.2.1.1: the Request-URI and Route values of an in-dialog request."""
        if not self.route_set:
            return self.remote_target, []
        first = self.route_set[0]
        if first.uri.has_param("lr"):
            # loose routing: Request-URI is the remote target, Route the whole route set
            return self.remote_target, [str(r) for r in self.route_set]
        # strict routing: the first route becomes the Request-URI (stripped of parameters not
        # allowed there) and the remote target goes last in the Route header
        uri = first.uri.without_params(*_NOT_IN_REQUEST_URI).replace(headers=())
        routes = [str(r) for r in self.route_set[1:]]
        routes.append(str(NameAddr(None, self.remote_target)))
        return uri, routes

    def next_hop(self) -> Uri:
        """Where an in-dialog request goes (§8.1.2: the first Route if any, else the target).

        In a secure dialog the hop is always reached as ``sips`` (over TLS), whatever scheme
        the peer's Contact or Record-Route used (§12.1, §26.2.2)."""
        hop = self.route_set[0].uri if self.route_set else self.remote_target
        if self.secure and hop.scheme == "sip":
            hop = hop.replace(scheme="sips").without_params("transport")
        return hop

    def create_request(
        self,
        method: str,
        *,
        cseq: int | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> Request:
        """An in-dialog request (§12.2.1.1), without Via (the core adds it).

        ``cseq`` is taken from the local sequence unless given (ACK and CANCEL reuse the INVITE's).
        Target-refresh requests (INVITE, UPDATE) and REFER/SUBSCRIBE/NOTIFY carry our Contact.
        """
        if method in ("ACK", "CANCEL") and cseq is None:
            raise LocalProtocolError(f"{method} needs the CSeq number of its INVITE", 500)
        seq = cseq if cseq is not None else self.next_seq()
        uri, routes = self.request_uri_and_routes()
        headers = Headers()
        headers.add("From", str(self.local_uri.with_tag(self.local_tag)))
        to = self.remote_uri.with_tag(self.remote_tag) if self.remote_tag else self.remote_uri
        headers.add("To", str(to))
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{seq} {method}")
        headers.add("Max-Forwards", "70")
        for route in routes:
            headers.add("Route", route)
        if self.local_contact is not None and method in (
            "INVITE",
            "UPDATE",
            "REFER",
            "SUBSCRIBE",
            "NOTIFY",
        ):
            headers.add("Contact", str(self.local_contact))
        for name, value in extra:
            headers.add(name, value)
        if body:
            headers.add("Content-Type", content_type or "application/sdp")
        return Request(method, uri, headers, body)

    def create_ack(
        self, invite_seq: int, body: bytes = b"", content_type: str | None = None
    ) -> Request:
        """ACK for a 2xx (§13.2.2.4): in-dialog, CSeq number of the INVITE, method ACK."""
        return self.create_request("ACK", cseq=invite_seq, body=body, content_type=content_type)

    def receive_request(self, request: Request) -> None:
        """§12.2.2: check and record the remote CSeq of an in-dialog request.

        Raises RemoteProtocolError(500) when the CSeq is lower than the last one (out of order).
        ACK and CANCEL reuse their INVITE's number and are not checked.
        """
        if request.method in ("ACK", "CANCEL"):
            return
        seq = request.cseq.seq
        if self.remote_seq is not None and seq <= self.remote_seq:
            # §12.2.2: "lower" is rejected; an equal number is a different request with a reused
            # CSeq (retransmissions never get here), also out of order.
            raise RemoteProtocolError("CSeq out of order in dialog", 500)
        self.remote_seq = seq


def _sent_secure(request: Request) -> bool:
    """§12.1.1/§12.1.2: a sips Request-URI over TLS (a request without Via yet: sips alone,
    since a sips URI is only ever sent over TLS)."""
    if not request.uri.is_secure:
        return False
    vias = request.vias
    return not vias or vias[0].transport.upper() == "TLS"


def _without_tag(addr: NameAddr) -> NameAddr:
    params = tuple(p for p in addr.params if p[0] != "tag")
    return NameAddr(addr.display_name, addr.uri, params)
