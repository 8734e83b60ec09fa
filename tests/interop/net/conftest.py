"""Interop fixtures for the network runtime: the test PKI, Kamailio, dnsmasq, openssl s_server.

The fixtures live in tests/peers/fixtures.py so that other interop packages can import them too.
"""

from tests.peers.fixtures import (  # noqa: F401
    dnsmasq,
    dnsmasq_factory,
    kamailio,
    kamailio_factory,
    lab_certs,
    openssl_server,
    pytest_runtest_makereport,
)
