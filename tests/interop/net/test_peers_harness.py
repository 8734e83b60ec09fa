"""The Kamailio harness itself: LAB-AUTH log lines, both challenge orders, restart on the same
ports, clean stop (no worker left behind). A tiny stdlib digest client drives it over UDP."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import signal
import socket
from pathlib import Path

import pytest

from tests.peers.certs import LabCerts
from tests.peers.kamailio import Kamailio, KamailioSettings, parse_auth_line

pytestmark = pytest.mark.interop

HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def register(port: int, user: str, password: str, pick: str) -> tuple[list[str], str]:
    """REGISTER over UDP answering the challenge with algorithm ``pick``.

    Returns the algorithms offered (in order) and the final response.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        lport = s.getsockname()[1]
        call_id, tag = secrets.token_hex(8), secrets.token_hex(4)

        def send(cseq: int, auth: str | None) -> str:
            lines = [
                "REGISTER sip:example.test SIP/2.0",
                f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK{secrets.token_hex(6)};rport",
                "Max-Forwards: 70",
                f"From: <sip:{user}@example.test>;tag={tag}",
                f"To: <sip:{user}@example.test>",
                f"Call-ID: {call_id}",
                f"CSeq: {cseq} REGISTER",
                f"Contact: <sip:{user}@127.0.0.1:{lport}>",
                "Expires: 60",
            ]
            if auth:
                lines.append(f"Authorization: {auth}")
            s.send(("\r\n".join([*lines, "Content-Length: 0", "", ""])).encode())
            return s.recv(65535).decode()

        challenge = send(1, None)
        assert challenge.startswith("SIP/2.0 401"), challenge
        offers = []
        for value in re.findall(r"(?im)^WWW-Authenticate:\s*Digest\s+(.*?)\r?$", challenge):
            params = dict(re.findall(r'(\w+)="?([^",]*)"?', value))
            offers.append(params)
        algs = [o.get("algorithm", "MD5") for o in offers]
        chosen = next(o for o in offers if o.get("algorithm", "MD5") == pick)
        h = HASHES[pick]

        def hx(text: str) -> str:
            return h(text.encode()).hexdigest()

        uri, cnonce, nc = "sip:example.test", os.urandom(8).hex(), "00000001"
        ha1 = hx(f"{user}:{chosen['realm']}:{password}")
        ha2 = hx(f"REGISTER:{uri}")
        response = hx(f"{ha1}:{chosen['nonce']}:{nc}:{cnonce}:auth:{ha2}")
        auth = (
            f'Digest username="{user}", realm="{chosen["realm"]}", nonce="{chosen["nonce"]}", '
            f'uri="{uri}", algorithm={pick}, qop=auth, nc={nc}, cnonce="{cnonce}", '
            f'response="{response}"'
        )
        return algs, send(2, auth)


@pytest.mark.parametrize(
    ("mode", "offered"),
    [("sha256-md5", ["SHA-256", "MD5"]), ("md5-sha256", ["MD5", "SHA-256"])],
)
@pytest.mark.parametrize("pick", ["SHA-256", "MD5"])
def test_two_challenges_and_auth_log(kamailio_factory, mode: str, offered, pick: str) -> None:
    kam: Kamailio = kamailio_factory(auth_mode=mode)
    mark = kam.log_mark()
    algs, final = register(kam.sip_port, "bob", "bob-secret", pick)
    assert algs == offered
    assert final.startswith("SIP/2.0 200"), final
    assert re.search(rf"(?im)^X-Lab-Auth:.*alg={pick}", final)
    entry = kam.wait_auth(mark)
    assert (entry.user, entry.method, entry.alg, entry.proto) == ("bob", "REGISTER", pick, "udp")
    by = "auth-module" if pick == offered[0] else "cfg-script"
    assert entry.fields["verified-by"] == by


def test_wrong_password_is_logged(kamailio: Kamailio) -> None:
    mark = kamailio.log_mark()
    _, final = register(kamailio.sip_port, "carol", "wrong", "SHA-256")
    assert final.startswith("SIP/2.0 401")
    entry = kamailio.wait_auth(mark, ok=False)
    assert entry.user == "carol" and not entry.ok


def test_parse_auth_line() -> None:
    e = parse_auth_line(
        "12(345) NOTICE: {1 2 REGISTER x} <script>: LAB-AUTH OK user=alice method=REGISTER "
        "alg=SHA-256 verified-by=auth-module src=127.0.0.1:5000 proto=tls"
    )
    assert e is not None and e.ok and e.alg == "SHA-256" and e.proto == "tls"
    assert parse_auth_line("something else") is None


def test_restart_keeps_ports_and_stop_leaves_nothing(lab_certs: LabCerts, tmp_path: Path) -> None:
    kam = Kamailio(tmp_path / "kam", lab_certs, KamailioSettings(auth_mode="md5", workers=1))
    with kam:
        ports = (kam.sip_port, kam.tls_port, kam.evil_port, kam.ctl_port)
        first_pid = kam.pid
        workers = list(kam._workers)
        assert workers
        kam.restart()
        assert (kam.sip_port, kam.tls_port, kam.evil_port, kam.ctl_port) == ports
        assert kam.pid != first_pid
        assert register(kam.sip_port, "alice", "alice-secret", "MD5")[1].startswith("SIP/2.0 200")
        assert not any(Path(f"/proc/{p}").exists() and _in_group(p, first_pid) for p in workers)
        last = [kam.pid, *kam._workers]
    assert not any(Path(f"/proc/{p}").exists() and _in_group(p, last[0]) for p in last)
    assert "LAB-AUTH OK user=alice" in kam.log_text()


def _in_group(pid: int, pgid: int | None) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[0] != "Z" and fields[2] == str(pgid)


def test_crashed_kamailio_comes_back_on_the_same_ports(kamailio_factory) -> None:
    kam: Kamailio = kamailio_factory(auth_mode="md5", workers=2)
    ports = (kam.sip_port, kam.tls_port, kam.evil_port)
    workers, old_pid = list(kam._workers), kam.pid
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)  # a crash: the workers are orphaned
    assert kam._proc is not None and kam._proc.proc is not None
    kam._proc.proc.wait(5)
    assert not kam.alive()
    again = kamailio_factory(auth_mode="md5", workers=2)
    assert again is kam and kam.alive()
    assert (kam.sip_port, kam.tls_port, kam.evil_port) == ports
    left = [(p, Path(f"/proc/{p}/stat").read_text()) for p in workers if _in_group(p, old_pid)]
    assert not left
    assert register(kam.sip_port, "alice", "alice-secret", "MD5")[1].startswith("SIP/2.0 200")
