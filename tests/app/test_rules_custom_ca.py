"""Custom CA Rule: bundle checks, pinned http, atomic install, removal."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sippa.app.trust import RULE_BUNDLE_NAME, CaBundleError, CustomCaRule, check_ca_bundle
from sippa.net.http import FetchError, Request
from tests.peers.certs import LabCerts, make_lab_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> LabCerts:
    return make_lab_certs(tmp_path_factory.mktemp("pki"))


def test_check_ca_bundle(certs: LabCerts) -> None:
    ca, other = certs.ca.cert.read_bytes(), certs.wrong_ca.cert.read_bytes()
    assert len(check_ca_bundle(ca + other)) == 2
    with pytest.raises(CaBundleError, match="not a CA"):
        check_ca_bundle(ca + certs.server.cert.read_bytes())
    with pytest.raises(CaBundleError, match="not certificates"):
        check_ca_bundle(ca + certs.ca.key.read_bytes())
    with pytest.raises(CaBundleError, match="no PEM"):
        check_ca_bundle(b"hello")
    with pytest.raises(CaBundleError, match="not a valid"):
        check_ca_bundle(ca + b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(CaBundleError, match="larger"):
        check_ca_bundle(ca * 300)


class Server:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    async def __call__(self, request: Request) -> bytes:
        try:
            return self.files[request.url]
        except KeyError:
            raise FetchError(f"{request.url}: HTTP 404 Not Found") from None


async def test_rule_forms(tmp_path: Path, certs: LabCerts) -> None:
    ca, other = certs.ca.cert.read_bytes(), certs.wrong_ca.cert.read_bytes()
    server = Server()
    server.files["https://p.test/0011/ca.pem"] = ca
    server.files["http://p.test/ca.pem"] = other
    server.files["http://p.test/leaf.pem"] = certs.server.cert.read_bytes()
    changes: list[int] = []
    rule = CustomCaRule(
        tmp_path / "ca",
        fetch=server,
        macros=lambda: {"MA": "0011"},
        on_change=lambda: changes.append(1),
    )
    bundle = tmp_path / "ca" / RULE_BUNDLE_NAME

    assert (await rule.apply("https://p.test/$MA/ca.pem")).state == "ok"
    assert bundle.read_bytes() == ca and changes == [1]
    assert [a.subject for a in rule.anchors()] == ["CN=sippa Test CA,O=sippa test lab"]
    assert (await rule.apply("https://p.test/$MA/ca.pem")).state == "unchanged"
    assert changes == [1]

    # plain http: only with the right pin; failures leave the installed bundle alone
    st = await rule.apply("http://p.test/ca.pem")
    assert st.state == "failed" and "--sha256" in st.error
    st = await rule.apply(f"[--sha256 {'00' * 32}] http://p.test/ca.pem")
    assert st.state == "failed" and "pinned" in st.error
    st = await rule.apply(
        f"[--sha256 {hashlib.sha256(certs.server.cert.read_bytes()).hexdigest()}]"
        " http://p.test/leaf.pem"
    )
    assert st.state == "failed" and "not a CA" in st.error
    assert (await rule.apply("https://p.test/missing.pem")).state == "failed"
    assert bundle.read_bytes() == ca
    st = await rule.apply(f"[--sha256 {hashlib.sha256(other).hexdigest()}] http://p.test/ca.pem")
    assert st.state == "ok" and bundle.read_bytes() == other

    # a local file, with or without file://
    local = tmp_path / "local.pem"
    local.write_bytes(ca + other)
    assert (await rule.apply(str(local))).count == 2
    assert (await rule.apply(f"file://{local}")).state == "unchanged"
    assert (await rule.apply(str(tmp_path / "nope.pem"))).state == "failed"

    assert (await rule.apply("")).state == "removed"
    assert not bundle.exists() and rule.anchors() == ()
    assert not [p for p in (tmp_path / "ca").iterdir() if p.name.startswith(".")]
