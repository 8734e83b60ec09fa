"""Reusable session fixtures for interop tests: the test PKI, Kamailio, dnsmasq, openssl s_server.

Import them in a conftest (names must stay visible to pytest)::

    from tests.peers.fixtures import (  # noqa: F401
        dnsmasq, kamailio, kamailio_factory, lab_certs, openssl_server,
        pytest_runtest_makereport,
    )

- ``lab_certs`` -> :class:`~tests.peers.certs.LabCerts` (CA, server, evil, bad variants);
- ``kamailio`` -> the running :class:`~tests.peers.kamailio.Kamailio` (AUTH_MODE sha256-md5), one
  per session, restarted on the same ports if a test stopped it or it crashed;
- ``kamailio_factory(auth_mode=..., tls_groups=..., ...)`` -> another running Kamailio, one per
  distinct settings, cached for the session;
- ``dnsmasq`` -> a running :class:`~tests.peers.dnsmasq.Dnsmasq` whose SRV records point at
  ``kamailio``; ``dnsmasq_factory(kamailio)`` for another Kamailio;
- ``openssl_server(profile)`` -> a running ``openssl s_server`` (profiles in
  :data:`tests.peers.openssl.PROFILES`), cached per profile;
- ``pytest_runtest_makereport``: on failure, attaches the log tail of every peer the test used.

Keep TLS tests against Kamailio sequential (it crashes under concurrent TLS churn).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.peers.certs import LabCerts, make_lab_certs
from tests.peers.dnsmasq import Dnsmasq
from tests.peers.kamailio import Kamailio, KamailioSettings
from tests.peers.openssl import OpensslServer

LOG_TAIL = 6000


class KamailioFactory:
    """Starts Kamailio instances on demand, one per distinct settings; stops them all."""

    def __init__(self, certs: LabCerts, base: Path) -> None:
        self.certs = certs
        self.base = base
        self.peers: dict[tuple[object, ...], Kamailio] = {}

    def __call__(self, **settings: Any) -> Kamailio:
        s = KamailioSettings(**settings)
        peer = self.peers.get(s.key())
        if peer is None:
            workdir = self.base / f"kamailio-{len(self.peers)}-{s.auth_mode}"
            peer = Kamailio(workdir, self.certs, s).start()
            self.peers[s.key()] = peer
        return peer.ensure_running()

    def stop_all(self) -> None:
        for peer in self.peers.values():
            peer.stop()


class DnsmasqFactory:
    """A dnsmasq per Kamailio (its SRV records follow that Kamailio's ports)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.peers: dict[tuple[int, int, int], Dnsmasq] = {}

    def __call__(self, kamailio: Kamailio) -> Dnsmasq:
        key = (kamailio.sip_port, kamailio.tls_port, kamailio.evil_port)
        peer = self.peers.get(key)
        if peer is None:
            peer = Dnsmasq(self.base / f"dnsmasq-{len(self.peers)}", *key).start()
            self.peers[key] = peer
        return peer.ensure_running()

    def stop_all(self) -> None:
        for peer in self.peers.values():
            peer.stop()


class OpensslFactory:
    """``openssl s_server`` per profile, cached."""

    def __init__(self, certs: LabCerts, base: Path) -> None:
        self.certs = certs
        self.base = base
        self.peers: dict[str, OpensslServer] = {}

    def __call__(self, profile: str) -> OpensslServer:
        peer = self.peers.get(profile)
        if peer is None:
            peer = OpensslServer.from_profile(self.base, self.certs, profile).start()
            self.peers[profile] = peer
        return peer

    def stop_all(self) -> None:
        for peer in self.peers.values():
            peer.stop()


@pytest.fixture(scope="session")
def lab_certs(tmp_path_factory: pytest.TempPathFactory) -> LabCerts:
    """The test PKI (generated once per session)."""
    return make_lab_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="session")
def kamailio_factory(
    lab_certs: LabCerts, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KamailioFactory]:
    factory = KamailioFactory(lab_certs, tmp_path_factory.mktemp("kamailio"))
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def kamailio(kamailio_factory: KamailioFactory) -> Kamailio:
    """The default Kamailio: two challenges, SHA-256 first then MD5 (RFC 8760 order).

    One instance per session (same ports throughout); function-scoped only so that each test
    gets it running again if an earlier test stopped it or it crashed.
    """
    return kamailio_factory(auth_mode="sha256-md5")


@pytest.fixture(scope="session")
def dnsmasq_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsmasqFactory]:
    factory = DnsmasqFactory(tmp_path_factory.mktemp("dnsmasq"))
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def dnsmasq(dnsmasq_factory: DnsmasqFactory, kamailio: Kamailio) -> Dnsmasq:
    """dnsmasq with the lab zone, SRV records pointing at the default ``kamailio``."""
    return dnsmasq_factory(kamailio)


@pytest.fixture(scope="session")
def openssl_server(
    lab_certs: LabCerts, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], OpensslServer]]:
    factory = OpensslFactory(lab_certs, tmp_path_factory.mktemp("openssl"))
    try:
        yield factory
    finally:
        factory.stop_all()


def _peers_of(value: object) -> list[Any]:
    if isinstance(value, Kamailio | Dnsmasq | OpensslServer):
        return [value]
    if isinstance(value, KamailioFactory | DnsmasqFactory | OpensslFactory):
        return list(value.peers.values())
    return []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """On a failed test, add the log tail of every peer it used to the report."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    funcargs = getattr(item, "funcargs", {})
    seen: set[int] = set()
    for value in funcargs.values():
        for peer in _peers_of(value):
            if id(peer) in seen:
                continue
            seen.add(id(peer))
            report.sections.append((f"log of {peer.describe()}", peer.log_text()[-LOG_TAIL:]))
