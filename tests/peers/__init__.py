"""Real third-party peers (Kamailio, baresip, dnsmasq, openssl) started on loopback by the tests."""
