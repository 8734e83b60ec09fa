"""Transactions alone (RFC 3261 §17 + RFC 6026), driven by hand with a recording TU."""

from __future__ import annotations

import pytest

from sippa.sip.events import Address
from sippa.sip.message import Request, Response, make_response, parse_message
from sippa.sip.timers import TimerConfig
from sippa.sip.transaction import (
    INVITE_CLIENT,
    INVITE_SERVER,
    NON_INVITE_CLIENT,
    NON_INVITE_SERVER,
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    Transaction,
    TransactionError,
    TxEvent,
    TxState,
    build_ack_for_non2xx,
    build_cancel,
    response_key,
    server_key,
)

UDP = Address("udp", "10.0.0.2", 5060)
TCP = Address("tcp", "10.0.0.2", 5060)
CONFIG = TimerConfig()  # T1 = 0.5, T2 = 4, T4 = 5


def req(method: str = "INVITE", branch: str = "z9hG4bK776asdhds", **extra: str) -> Request:
    uri = extra.pop("uri", "sip:bob@example.com")
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}",
        "Max-Forwards: 70",
        f"To: {extra.pop('to', '<sip:bob@example.com>')}",
        f"From: {extra.pop('from_', '<sip:alice@example.com>;tag=1928301774')}",
        f"Call-ID: {extra.pop('call_id', 'a84b4c76e66710')}",
        f"CSeq: {extra.pop('cseq', '314159')} {method}",
        "Contact: <sip:alice@10.0.0.1>",
        *(f"{k.replace('_', '-')}: {v}" for k, v in extra.items()),
        "Content-Length: 0",
        "",
        "",
    ]
    message = parse_message("\r\n".join(lines).encode())
    assert isinstance(message, Request)
    return message


def resp(request: Request, status: int, tag: str | None = "b1") -> Response:
    return make_response(request, status, to_tag=tag)


class Recorder:
    """A TransactionUser that records everything."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, Request | Response]] = []
        self.up: list[Response] = []
        self.acks: list[Request] = []
        self.timeouts: list[Transaction] = []
        self.errors: list[Transaction] = []
        self.terminated: list[Transaction] = []
        self.now = 0.0

    def send_message(self, txn: Transaction, message: Request | Response, dest: Address) -> None:
        self.sent.append((self.now, message))

    def response_received(self, txn: object, response: Response, now: float) -> None:
        self.up.append(response)

    def ack_received(self, txn: object, ack: Request, now: float) -> None:
        self.acks.append(ack)

    def transaction_timeout(self, txn: Transaction, now: float) -> None:
        self.timeouts.append(txn)

    def transaction_transport_error(self, txn: Transaction, now: float) -> None:
        self.errors.append(txn)

    def transaction_terminated(self, txn: Transaction) -> None:
        self.terminated.append(txn)

    def run(self, txn: Transaction, until: float) -> None:
        """Fire the transaction's timers up to ``until``."""
        while (deadline := txn.get_timer()) is not None and deadline <= until:
            self.now = deadline
            txn.handle_timer(deadline)
        self.now = until

    def sent_times(self, kind: type | None = None) -> list[float]:
        return [t for t, m in self.sent if kind is None or isinstance(m, kind)]


# --- INVITE client (§17.1.1) -------------------------------------------------------------------


def test_timer_a_doubles_without_cap_and_timer_b_times_out() -> None:
    tu = Recorder()
    txn = InviteClientTransaction(req(), UDP, tu, CONFIG, "t")
    txn.start(0.0)
    tu.run(txn, 100.0)
    # A: T1, 2T1, 4T1... (no T2 cap for INVITE); B = 64*T1 = 32 s
    assert tu.sent_times() == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert tu.timeouts == [txn]
    assert txn.state is TxState.TERMINATED
    assert tu.terminated == [txn]
    assert txn.get_timer() is None


def test_reliable_invite_client_has_no_timer_a() -> None:
    tu = Recorder()
    txn = InviteClientTransaction(req(), TCP, tu, CONFIG, "t")
    txn.start(0.0)
    assert txn.get_timer() == 32.0  # only Timer B
    tu.run(txn, 100.0)
    assert tu.sent_times() == [0.0]
    assert tu.timeouts == [txn]


def test_provisional_stops_timers_a_and_b() -> None:
    tu = Recorder()
    request = req()
    txn = InviteClientTransaction(request, UDP, tu, CONFIG, "t")
    txn.start(0.0)
    txn.receive_response(resp(request, 100, None), 0.2)
    assert txn.state is TxState.PROCEEDING
    assert txn.provisional_seen
    assert txn.get_timer() is None
    tu.run(txn, 100.0)
    assert tu.sent_times() == [0.0]
    assert tu.timeouts == []


def test_non2xx_is_acked_by_the_transaction_and_timer_d() -> None:
    tu = Recorder()
    request = req(Route="<sip:proxy.example.com;lr>")
    txn = InviteClientTransaction(request, UDP, tu, CONFIG, "t")
    txn.start(0.0)
    busy = resp(request, 486)
    txn.receive_response(busy, 0.1)
    assert txn.state is TxState.COMPLETED
    assert [r.status_code for r in tu.up] == [486]
    ack = tu.sent[-1][1]
    assert isinstance(ack, Request) and ack.method == "ACK"
    # §17.1.1.3: same Request-URI, branch, Call-ID, From, CSeq number; To of the response
    assert ack.uri == request.uri
    assert ack.top_via.branch == request.top_via.branch
    assert len(ack.vias) == 1
    assert ack.cseq.seq == 314159 and ack.cseq.method == "ACK"
    assert ack.to.tag == "b1"
    assert ack.from_.tag == "1928301774"
    assert ack.headers.get_all("Route") == ["<sip:proxy.example.com;lr>"]
    # a retransmitted final is ACKed again and absorbed
    txn.receive_response(busy, 0.6)
    assert [m.method for _, m in tu.sent if isinstance(m, Request)].count("ACK") == 2
    assert len(tu.up) == 1
    # Timer A stopped; Timer D (32 s on UDP) terminates
    assert txn.get_timer() == pytest.approx(32.1)
    tu.run(txn, 40.0)
    assert txn.state is TxState.TERMINATED
    assert tu.timeouts == []


def test_timer_d_is_zero_on_reliable_transport() -> None:
    tu = Recorder()
    request = req()
    txn = InviteClientTransaction(request, TCP, tu, CONFIG, "t")
    txn.start(0.0)
    txn.receive_response(resp(request, 603), 0.1)
    assert txn.state is TxState.TERMINATED


def test_2xx_goes_to_accepted_and_timer_m() -> None:
    tu = Recorder()
    request = req()
    txn = InviteClientTransaction(request, UDP, tu, CONFIG, "t")
    txn.start(0.0)
    ok = resp(request, 200)
    txn.receive_response(ok, 0.1)
    assert txn.state is TxState.ACCEPTED
    # RFC 6026: 2xx retransmissions go up to the TU (which ACKs them); the txn sends no ACK
    txn.receive_response(ok, 0.6)
    txn.receive_response(resp(request, 200, "fork2"), 0.7)
    assert [r.to.tag for r in tu.up] == ["b1", "b1", "fork2"]
    assert tu.sent_times() == [0.0]
    assert txn.get_timer() == pytest.approx(32.1)  # Timer M = 64*T1
    tu.run(txn, 33.0)
    assert txn.state is TxState.TERMINATED


# --- non-INVITE client (§17.1.2) ---------------------------------------------------------------


def test_timer_e_caps_at_t2_and_timer_f() -> None:
    tu = Recorder()
    txn = NonInviteClientTransaction(req("OPTIONS"), UDP, tu, CONFIG, "t")
    txn.start(0.0)
    tu.run(txn, 100.0)
    assert tu.sent_times() == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert tu.timeouts == [txn]
    assert txn.terminated


def test_timer_e_is_t2_once_proceeding() -> None:
    tu = Recorder()
    request = req("REGISTER")
    txn = NonInviteClientTransaction(request, UDP, tu, CONFIG, "t")
    txn.start(0.0)
    txn.receive_response(resp(request, 100, None), 0.2)
    assert txn.state is TxState.PROCEEDING
    tu.run(txn, 9.0)
    assert tu.sent_times() == [0.0, 0.5, 4.5, 8.5]


def test_non_invite_final_absorbs_retransmissions_and_timer_k() -> None:
    tu = Recorder()
    request = req("OPTIONS")
    txn = NonInviteClientTransaction(request, UDP, tu, CONFIG, "t")
    txn.start(0.0)
    ok = resp(request, 200)
    txn.receive_response(ok, 0.1)
    txn.receive_response(ok, 0.2)
    assert len(tu.up) == 1
    assert txn.get_timer() == pytest.approx(5.1)  # Timer K = T4
    tu.run(txn, 10.0)
    assert txn.terminated and tu.sent_times() == [0.0]
    # reliable: K = 0
    tu2 = Recorder()
    txn2 = NonInviteClientTransaction(request, TCP, tu2, CONFIG, "t2")
    txn2.start(0.0)
    assert txn2.get_timer() == 32.0  # no Timer E, only F
    txn2.receive_response(ok, 0.1)
    assert txn2.terminated


def test_client_transport_error_terminates() -> None:
    tu = Recorder()
    txn = NonInviteClientTransaction(req("OPTIONS"), UDP, tu, CONFIG, "t")
    txn.start(0.0)
    txn.transport_error(0.1)
    assert tu.errors == [txn] and txn.terminated


# --- INVITE server (§17.2.1 + RFC 6026) --------------------------------------------------------


def test_invite_server_sends_100_and_resends_last_provisional() -> None:
    tu = Recorder()
    request = req()
    txn = InviteServerTransaction(request, UDP, tu, CONFIG, "s")
    txn.start(0.0)
    assert [m.status_code for _, m in tu.sent if isinstance(m, Response)] == [100]
    txn.receive_request(request, 0.5)
    txn.respond(resp(request, 180), 1.0)
    txn.receive_request(request, 1.5)
    codes = [m.status_code for _, m in tu.sent if isinstance(m, Response)]
    assert codes == [100, 100, 180, 180]
    assert txn.state is TxState.PROCEEDING
    assert txn.get_timer() is None


def test_timer_g_caps_at_t2_and_timer_h_times_out() -> None:
    tu = Recorder()
    request = req()
    txn = InviteServerTransaction(request, UDP, tu, CONFIG, "s")
    txn.start(0.0)
    txn.respond(resp(request, 486), 0.0)
    tu.run(txn, 100.0)
    times = [t for t, m in tu.sent if isinstance(m, Response) and m.status_code == 486]
    assert times == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert tu.timeouts == [txn] and txn.terminated


def test_ack_confirms_stops_g_and_timer_i_absorbs() -> None:
    tu = Recorder()
    request = req()
    txn = InviteServerTransaction(request, UDP, tu, CONFIG, "s")
    txn.start(0.0)
    txn.respond(resp(request, 486), 0.0)
    txn.receive_request(request, 0.2)  # INVITE retransmission: final re-sent
    ack = req("ACK", to="<sip:bob@example.com>;tag=b1", cseq="314159")
    assert server_key(ack) == txn.key
    txn.receive_request(ack, 0.3)
    assert txn.state is TxState.CONFIRMED
    sent = len(tu.sent)
    txn.receive_request(ack, 0.4)  # ACK retransmission absorbed
    txn.receive_request(request, 0.4)  # so is a late INVITE
    assert len(tu.sent) == sent
    assert txn.get_timer() == pytest.approx(5.3)  # Timer I = T4
    tu.run(txn, 10.0)
    assert txn.terminated and tu.timeouts == []
    assert tu.acks == []  # a non-2xx ACK never reaches the TU


def test_timers_g_and_i_on_reliable_transport() -> None:
    tu = Recorder()
    request = req()
    txn = InviteServerTransaction(request, TCP, tu, CONFIG, "s")
    txn.start(0.0)
    txn.respond(resp(request, 486), 0.0)
    assert txn.get_timer() == 32.0  # no G, only H
    txn.receive_request(req("ACK", to="<sip:bob@example.com>;tag=b1"), 0.1)
    assert txn.terminated  # Timer I = 0


def test_early_ack_is_ignored() -> None:
    tu = Recorder()
    request = req()
    txn = InviteServerTransaction(request, UDP, tu, CONFIG, "s")
    txn.start(0.0)
    txn.receive_request(req("ACK"), 0.1)
    assert txn.state is TxState.PROCEEDING and tu.acks == [] and len(tu.sent) == 1


def test_invite_server_2xx_accepted_and_timer_l() -> None:
    tu = Recorder()
    request = req()
    txn = InviteServerTransaction(request, UDP, tu, CONFIG, "s")
    txn.start(0.0)
    ok = resp(request, 200)
    txn.respond(ok, 0.0)
    assert txn.state is TxState.ACCEPTED
    before = len(tu.sent)
    txn.receive_request(request, 0.3)  # RFC 6026 §7.1: absorbed, not answered
    assert len(tu.sent) == before
    txn.respond(ok, 0.5)  # the TU's own 2xx retransmission goes through
    assert len(tu.sent) == before + 1
    ack = req("ACK", to="<sip:bob@example.com>;tag=b1")
    txn.receive_request(ack, 0.6)  # an ACK that matches (RFC 2543 peer): to the TU
    assert tu.acks == [ack]
    assert txn.get_timer() == 32.0  # Timer L
    tu.run(txn, 33.0)
    assert txn.terminated and tu.timeouts == []


# --- non-INVITE server (§17.2.2) ---------------------------------------------------------------


def test_non_invite_server_absorbs_then_resends_and_timer_j() -> None:
    tu = Recorder()
    request = req("OPTIONS")
    txn = NonInviteServerTransaction(request, UDP, tu, CONFIG, "s")
    txn.start(0.0)
    txn.receive_request(request, 0.1)  # Trying: absorbed
    assert tu.sent == []
    txn.respond(resp(request, 100, None), 0.2)
    txn.receive_request(request, 0.3)  # Proceeding: last provisional re-sent
    txn.respond(resp(request, 200), 0.4)
    txn.receive_request(request, 0.5)  # Completed: final re-sent
    codes = [m.status_code for _, m in tu.sent if isinstance(m, Response)]
    assert codes == [100, 100, 200, 200]
    assert txn.get_timer() == pytest.approx(32.4)  # Timer J = 64*T1
    tu.run(txn, 40.0)
    assert txn.terminated


def test_timer_j_is_zero_on_reliable_transport() -> None:
    tu = Recorder()
    request = req("BYE")
    txn = NonInviteServerTransaction(request, TCP, tu, CONFIG, "s")
    txn.respond(resp(request, 200), 0.0)
    assert txn.terminated


# --- the tables ---------------------------------------------------------------------------------


def test_illegal_transition_names_state_and_event() -> None:
    tu = Recorder()
    request = req()
    txn = InviteServerTransaction(request, UDP, tu, CONFIG, "s")
    txn.start(0.0)
    txn.respond(resp(request, 486), 0.0)
    with pytest.raises(TransactionError) as info:
        txn.respond(resp(request, 180), 0.1)
    assert "Completed" in str(info.value) and "1xx from TU" in str(info.value)
    assert info.value.state is TxState.COMPLETED
    assert info.value.event is TxEvent.SEND_1XX


PEER_EVENTS = {
    "client": (TxEvent.RECV_1XX, TxEvent.RECV_2XX, TxEvent.RECV_FINAL, TxEvent.TRANSPORT_ERROR),
    "server": (TxEvent.RECV_REQUEST, TxEvent.TRANSPORT_ERROR),
}


@pytest.mark.parametrize(
    ("table", "side"),
    [
        (INVITE_CLIENT, "client"),
        (NON_INVITE_CLIENT, "client"),
        (INVITE_SERVER, "server"),
        (NON_INVITE_SERVER, "server"),
    ],
)
def test_peer_input_never_hits_a_missing_transition(table: dict, side: str) -> None:  # type: ignore[type-arg]
    """Whatever the peer sends in any live state has a transition: peers cannot raise."""
    states = {s for s, _ in table} - {TxState.TERMINATED}
    for state in states:
        for event in PEER_EVENTS[side]:
            assert (state, event) in table, (state, event)
    if table is INVITE_SERVER:
        for state in states:
            assert (state, TxEvent.RECV_ACK) in table


# --- matching (§17.1.3, §17.2.3) ---------------------------------------------------------------


def test_server_matching_rfc3261() -> None:
    invite = req()
    assert server_key(req()) == server_key(invite)  # a retransmission
    assert server_key(req("ACK")) == server_key(invite)  # ACK matches the INVITE
    cancel = req("CANCEL")
    assert server_key(cancel) != server_key(invite)  # CANCEL is its own transaction
    assert server_key(cancel, "INVITE") == server_key(invite)  # ... targeting the INVITE
    assert server_key(req(branch="z9hG4bKother")) != server_key(invite)


def test_server_matching_rfc2543_fallback() -> None:
    old = req(branch="1234")  # no magic cookie
    assert server_key(req(branch="1234")) == server_key(old)
    assert server_key(req("ACK", branch="1234", to="<sip:bob@example.com>;tag=x")) == server_key(
        old
    )
    assert server_key(req(branch="1234", from_="<sip:alice@example.com>;tag=zz")) != server_key(old)
    assert server_key(req(branch="1234", cseq="2")) != server_key(old)
    assert server_key(req(branch="1234", uri="sip:carol@example.com")) != server_key(old)
    assert server_key(req(branch="1234", call_id="other")) != server_key(old)


def test_response_key_uses_branch_and_cseq_method() -> None:
    invite = req()
    tu = Recorder()
    txn = InviteClientTransaction(invite, UDP, tu, CONFIG, "t")
    assert response_key(resp(invite, 180)) == txn.key
    assert response_key(resp(req("CANCEL"), 200)) != txn.key


def test_cancel_copies_the_invite_per_9_1() -> None:
    invite = req(Route="<sip:p1.example.com;lr>")
    cancel = build_cancel(invite)
    assert cancel.method == "CANCEL"
    assert cancel.uri == invite.uri
    assert cancel.top_via == invite.top_via and len(cancel.vias) == 1
    assert cancel.cseq.seq == invite.cseq.seq and cancel.cseq.method == "CANCEL"
    assert cancel.to.tag is None
    assert cancel.from_ == invite.from_
    assert cancel.call_id == invite.call_id
    assert cancel.headers.get_all("Route") == ["<sip:p1.example.com;lr>"]
    assert cancel.body == b""
    reparsed = parse_message(bytes(cancel))
    assert isinstance(reparsed, Request) and reparsed.method == "CANCEL"


def test_ack_for_non2xx_round_trips() -> None:
    invite = req()
    ack = build_ack_for_non2xx(invite, resp(invite, 404))
    reparsed = parse_message(bytes(ack))
    assert isinstance(reparsed, Request)
    assert reparsed.method == "ACK" and reparsed.to.tag == "b1"


def test_timer_table_follows_t1_t2_t4() -> None:
    """RFC 3261 Table 4 from the base timers; retransmit/absorb timers vanish when reliable."""
    config = TimerConfig(t1=0.1, t2=1.0, t4=2.0)
    assert config.b() == config.f() == config.h() == pytest.approx(6.4)
    assert config.l() == config.m() == pytest.approx(6.4)  # RFC 6026
    assert (config.a(False), config.e(False), config.g(False)) == (0.1, 0.1, 0.1)
    assert (config.a(True), config.e(True), config.g(True)) == (None, None, None)
    assert (config.d(False), config.i(False), config.j(False), config.k(False)) == (
        32.0,
        2.0,
        pytest.approx(6.4),
        2.0,
    )
    assert (config.d(True), config.i(True), config.j(True), config.k(True)) == (0, 0, 0, 0)
    assert config.backoff(0.8, cap=True) == 1.0 and config.backoff(0.8, cap=False) == 1.6


def test_custom_t1_scales_an_invite_client() -> None:
    tu = Recorder()
    txn = InviteClientTransaction(req(), UDP, tu, TimerConfig(t1=0.1), "t")
    txn.start(0.0)
    tu.run(txn, 10.0)
    assert tu.sent_times() == pytest.approx([0.0, 0.1, 0.3, 0.7, 1.5, 3.1, 6.3])
    assert tu.timeouts == [txn] and tu.now == 10.0
