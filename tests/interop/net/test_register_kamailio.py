"""sippa registers with a real Kamailio 5.6 over UDP, TCP and TLS, with digest MD5 and SHA-256.

What Kamailio itself says is the evidence: its ``LAB-AUTH OK ... alg=...`` log line and the
``X-Lab-Auth`` header of its 200 OK name the algorithm sippa answered with, and its
``src=ip:port`` the source port it saw.
"""

from __future__ import annotations

import asyncio
import itertools
import re

import pytest

from sippa.app.register import RegisterOptions, make_authorize, register_once
from sippa.net.dns import Resolver
from sippa.net.endpoint import Endpoint
from sippa.net.registrar import LineRegistrar
from sippa.net.tls import TrustStore, make_client_context
from sippa.sip.locate import TransportChoice
from sippa.sip.registration import RegistrationConfig
from sippa.sip.uri import Uri
from tests.peers.certs import LabCerts
from tests.peers.dnsmasq import Dnsmasq
from tests.peers.kamailio import Kamailio

pytestmark = pytest.mark.interop


def proxy_of(k: Kamailio, transport: str) -> str:
    port = k.tls_port if transport == "tls" else k.sip_port
    return f"{k.host}:{port};transport={transport}"


def options(k: Kamailio, certs: LabCerts, transport: str, **kw: object) -> RegisterOptions:
    scheme = "sips" if transport == "tls" else "sip"
    opts = RegisterOptions(
        aor=f"{scheme}:alice@example.test",
        password="alice-secret",
        proxy=proxy_of(k, transport),
        transport=transport,
        ca_files=[str(certs.ca.cert)],
        system_ca=False,
        expires=300,
        timeout=10,
    )
    for key, value in kw.items():
        setattr(opts, key, value)
    return opts


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
@pytest.mark.parametrize("auth_mode", ["sha256", "md5"])
async def test_register_over_each_transport_and_algorithm(
    kamailio_factory, lab_certs: LabCerts, transport: str, auth_mode: str
) -> None:
    k = kamailio_factory(auth_mode=auth_mode)
    mark = k.log_mark()
    result = await register_once(options(k, lab_certs, transport))
    assert result.ok, result.as_dict()
    want = "SHA-256" if auth_mode == "sha256" else "MD5"
    st = result.status
    assert st.transport == transport.upper() and st.algorithm == want
    assert st.auth_info and f"alg={want}" in st.auth_info  # Kamailio's X-Lab-Auth in the 200
    entry = k.wait_auth(mark)
    assert entry.method == "REGISTER" and entry.alg == want and entry.user == "alice"
    assert entry.proto == transport
    if transport == "tls":
        assert st.tls is not None and st.tls.verified
        assert st.tls.version in ("TLSv1.2", "TLSv1.3") and st.tls.cipher
        assert st.tls.peer_subject and "sip.example.test" in st.tls.peer_subject
        assert st.tls.server_name == "127.0.0.1"  # a proxy given as an IP: its IP SAN
    # the un-REGISTER went through as well (a second authenticated REGISTER)
    await asyncio.sleep(0.1)
    assert len([e for e in k.auth_log(mark) if e.ok]) >= 2


@pytest.mark.parametrize("auth_mode", ["sha256-md5", "md5-sha256"])
@pytest.mark.parametrize("transport", ["udp", "tls"])
async def test_sha256_is_chosen_whichever_challenge_comes_first(
    kamailio_factory, lab_certs: LabCerts, auth_mode: str, transport: str
) -> None:
    k = kamailio_factory(auth_mode=auth_mode)
    mark = k.log_mark()
    result = await register_once(options(k, lab_certs, transport))
    assert result.ok, result.as_dict()
    assert result.status.algorithm == "SHA-256"
    assert result.status.auth_info and "alg=SHA-256" in result.status.auth_info
    entry = k.wait_auth(mark)
    assert entry.alg == "SHA-256", entry.line
    # in md5-sha256 mode SHA-256 is the SECOND challenge: the config script verified it
    expected = "cfg-script" if auth_mode == "md5-sha256" else "auth-module"
    assert entry.fields.get("verified-by") == expected


async def test_server_order_follows_the_first_challenge(
    kamailio_factory, lab_certs: LabCerts
) -> None:
    k = kamailio_factory(auth_mode="md5-sha256")
    mark = k.log_mark()
    result = await register_once(options(k, lab_certs, "tcp", digest_order="server"))
    assert result.ok, result.as_dict()
    assert result.status.algorithm == "MD5"
    assert k.wait_auth(mark).alg == "MD5"


async def test_no_md5_against_md5_only_fails_with_a_clear_reason(
    kamailio_factory, lab_certs: LabCerts
) -> None:
    k = kamailio_factory(auth_mode="md5")
    mark = k.log_mark()
    result = await register_once(options(k, lab_certs, "tcp", allow_md5=False))
    assert not result.ok
    reason = result.as_dict()["reason"]
    assert reason and "MD5" in reason, reason
    assert not [e for e in k.auth_log(mark) if e.ok]


async def test_wrong_password_is_refused(kamailio_factory, lab_certs: LabCerts) -> None:
    k = kamailio_factory(auth_mode="sha256")
    result = await register_once(options(k, lab_certs, "udp", password="not-it"))
    assert not result.ok
    assert result.status.status_code == 401 and "refused" in (result.status.reason or "")


async def test_dns_naptr_srv_to_tls(kamailio, dnsmasq: Dnsmasq, lab_certs: LabCerts) -> None:
    mark = kamailio.log_mark()
    opts = options(kamailio, lab_certs, "tls", proxy=None)
    opts.transport = "auto"
    opts.dns = f"{dnsmasq.host}:{dnsmasq.port}"
    result = await register_once(opts)
    assert result.ok, result.as_dict()
    st = result.status
    assert st.transport == "TLS" and st.tls is not None
    assert st.tls.server_name == "example.test"  # the SIP domain, not sip.example.test
    assert st.target and str(kamailio.tls_port) in st.target
    assert kamailio.wait_auth(mark).alg == "SHA-256"


async def test_srv_redirection_to_another_name_is_refused(
    kamailio, dnsmasq: Dnsmasq, lab_certs: LabCerts
) -> None:
    mark = kamailio.log_mark()
    opts = options(kamailio, lab_certs, "tls", proxy=None)
    opts.transport = "auto"
    opts.aor = "sips:alice@redirect.example.test"
    opts.dns = f"{dnsmasq.host}:{dnsmasq.port}"
    result = await register_once(opts)
    assert not result.ok
    reason = result.as_dict()["reason"] or ""
    assert "does not match the SIP domain" in reason, reason
    assert str(kamailio.evil_port) in reason  # it did reach the evil listener, and refused it
    assert not [e for e in kamailio.auth_log(mark) if e.ok]


async def test_twenty_tls_registrations_use_random_source_ports(
    kamailio_factory, lab_certs: LabCerts
) -> None:
    k = kamailio_factory(auth_mode="sha256")
    mark = k.log_mark()
    local: list[int] = []
    for _ in range(20):  # sequential: Kamailio 5.6 dislikes concurrent TLS churn
        result = await register_once(options(k, lab_certs, "tls", unregister=False))
        assert result.ok, result.as_dict()
        assert result.status.local is not None
        local.append(int(result.status.local.rsplit(":", 1)[1]))
    # what Kamailio saw: src=127.0.0.1:PORT of every authenticated REGISTER
    seen = [int(e.fields["src"].rsplit(":", 1)[1]) for e in k.auth_log(mark) if e.ok]
    assert sorted(seen) == sorted(local)
    assert len(set(local)) == 20
    steps = [b - a for a, b in itertools.pairwise(local)]
    assert sum(1 for s in steps if 0 < s <= 2) <= 1, local


async def test_line_reregisters_after_kamailio_restart(
    kamailio_factory, lab_certs: LabCerts
) -> None:
    k = kamailio_factory(auth_mode="sha256", workers=2)
    ctx = make_client_context(TrustStore.from_files([lab_certs.ca.cert], system=False))
    endpoint = Endpoint(tls_client=lambda name: ctx)
    config = RegistrationConfig(
        Uri.parse("sips:alice@example.test"), expires=300, retry_base=0.5, retry_max=2
    )
    line = LineRegistrar(
        endpoint,
        config,
        make_authorize("alice", "alice-secret"),
        Resolver("127.0.0.1", 9),
        proxy=Uri.parse(f"sips:{k.host}:{k.tls_port};transport=tls"),
        transport=TransportChoice.TLS,
        name="restart",
    )
    try:
        line.start()
        await line.wait(lambda st: st.registered, 10)
        first = line.status.local
        mark = k.log_mark()
        await asyncio.to_thread(k.restart)
        # the TLS connection dropped with the server; the line registers again by itself
        await line.wait(lambda st: st.registered and st.local != first, 30)
        entry = await asyncio.to_thread(k.wait_auth, mark, 10.0)
        assert entry.method == "REGISTER" and entry.proto == "tls"
        assert line.status.local and entry.fields["src"].endswith(line.status.local.split(":")[1])
    finally:
        await line.stop()
        await endpoint.close()


def _cli(*args: str) -> tuple[int, str]:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "sippa", "register", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return out.returncode, out.stdout + out.stderr


def test_cli_register_prints_tls_and_digest_details(
    kamailio, dnsmasq: Dnsmasq, lab_certs: LabCerts
) -> None:
    import json

    code, out = _cli(
        "sips:alice@example.test",
        "--password",
        "alice-secret",
        "--dns",
        f"{dnsmasq.host}:{dnsmasq.port}",
        "--ca",
        str(lab_certs.ca.cert),
        "--no-system-ca",
        "--json",
    )
    assert code == 0, out
    report = json.loads(out)
    assert report["registered"] and report["transport"] == "TLS"
    assert report["digest_algorithm"] == "SHA-256"
    tls = report["tls"]
    assert tls["version"] in ("TLSv1.2", "TLSv1.3") and tls["cipher"] and tls["verified"]
    assert "sip.example.test" in tls["peer_subject"] and tls["server_name"] == "example.test"
    # human-readable form, and a clear failure with a non-zero exit code
    code, out = _cli(
        "sips:alice@example.test",
        "--password",
        "wrong",
        "--dns",
        f"{dnsmasq.host}:{dnsmasq.port}",
        "--ca",
        str(lab_certs.ca.cert),
        "--no-system-ca",
    )
    assert code == 1 and out.startswith("FAILED:") and "401" in out, out


def test_cli_no_verify_is_reported_insecure(kamailio, lab_certs: LabCerts) -> None:
    code, out = _cli(
        "sips:alice@example.test",
        "--password",
        "alice-secret",
        "--proxy",
        proxy_of(kamailio, "tls"),
        "--transport",
        "tls",
        "--no-verify",
    )
    assert code == 0, out
    assert "TLS version: TLSv1." in out and "digest algorithm: SHA-256" in out
    assert "NOT validated" in out


async def test_client_certificate_option_and_bad_file(
    kamailio_factory, lab_certs: LabCerts
) -> None:
    k = kamailio_factory(auth_mode="sha256")
    opts = options(
        k, lab_certs, "tls",
        client_cert=str(lab_certs.client.cert), client_key=str(lab_certs.client.key),
    )
    result = await register_once(opts)
    assert result.ok, result.as_dict()
    opts.client_cert = str(lab_certs.ca.cert)  # not a key pair: refused before any traffic
    opts.client_key = str(lab_certs.client.key)
    result = await register_once(opts)
    assert not result.ok and result.error and result.error.startswith("configuration:")


def _bindings(k: Kamailio) -> str:
    import subprocess

    out = subprocess.run(
        ["kamcmd", "-s", k.ctl_addr, "ul.dump"], capture_output=True, text=True, timeout=10,
        check=True,
    )
    return out.stdout


async def test_binding_is_stored_and_removed_by_unregister(
    kamailio_factory, lab_certs: LabCerts
) -> None:
    k = kamailio_factory(auth_mode="sha256")
    base = {"aor": "sips:bob@example.test", "password": "bob-secret", "expires": 120}
    kept = await register_once(options(k, lab_certs, "tls", unregister=False, **base))
    assert kept.ok, kept.as_dict()
    contact = f"sips:bob@{kept.status.local}"  # no transport=tls (RFC 3261 §26.2.2)
    dump = _bindings(k)
    assert re.search(rf"Address: {re.escape(contact)}$", dump, re.MULTILINE), dump
    block = dump.split(f"Address: {contact}")[1]
    expires = re.search(r"Expires: (\d+)", block.split("Address:")[0])
    assert expires and 100 <= int(expires.group(1)) <= 120
    # a second line registers and un-registers: its binding is gone afterwards
    gone = await register_once(options(k, lab_certs, "tls", **base))
    assert gone.ok
    contact2 = f"sips:bob@{gone.status.local}"
    dump = _bindings(k)
    assert f"Address: {contact2}" not in dump and f"Address: {contact}" in dump
