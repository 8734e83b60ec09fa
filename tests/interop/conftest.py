"""Interop fixtures shared by every interop package: the test PKI, Kamailio, dnsmasq, openssl.

One Kamailio and one dnsmasq serve the whole session (tests/peers/fixtures.py).
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
