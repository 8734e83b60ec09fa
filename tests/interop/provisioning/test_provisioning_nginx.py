"""Provisioning against a real HTTPS server (nginx): profiles, CA bundles, signed releases."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sippa.app.macros import device_macros
from sippa.app.provisioning import Provisioner
from sippa.app.store import ConfigStore
from sippa.app.trust import CustomCaRule
from sippa.app.updates import Updater, command_health_check, sign_manifest
from sippa.net.http import FetchError, HttpFetcher, Request
from sippa.net.tls import TrustStore
from tests.peers.certs import LabCerts
from tests.peers.nginx import PASSWORD, USER, Nginx
from tests.peers.process import require_binary

pytestmark = pytest.mark.interop

MAC = "00:11:22:aa:bb:cc"


def _trust(certs: LabCerts) -> TrustStore:
    return TrustStore.from_files([certs.ca.cert], system=False)


def _profile(**values: str) -> bytes:
    body = "".join(f"  <{k}>{v}</{k}>\n" for k, v in values.items())
    return f'<?xml version="1.0"?>\n<flat-profile>\n{body}</flat-profile>\n'.encode()


def _openssl_enc(data: bytes, key: str, tmp: Path) -> bytes:
    openssl = require_binary("openssl", "openssl")
    (tmp / "clear").write_bytes(data)
    subprocess.run(
        [openssl, "enc", "-aes-256-cbc", "-md", "md5", "-salt", "-k", key,
         "-in", str(tmp / "clear"), "-out", str(tmp / "enc")],
        check=True,
    )  # fmt: skip
    return (tmp / "enc").read_bytes()


async def test_https_fetch_is_verified(nginx: Nginx, lab_certs: LabCerts) -> None:
    url = nginx.put("hello.xml", b"<flat-profile/>")
    assert await HttpFetcher(lambda: _trust(lab_certs))(Request(url)) == b"<flat-profile/>"
    # without the lab CA the server is not trusted
    with pytest.raises(FetchError, match="TLS refused"):
        await HttpFetcher(TrustStore)(Request(url))
    with pytest.raises(FetchError, match="HTTP 404"):
        await HttpFetcher(lambda: _trust(lab_certs))(Request(nginx.url("nope.xml")))
    with pytest.raises(FetchError, match="more than 4"):
        await HttpFetcher(lambda: _trust(lab_certs))(Request(url, max_bytes=4))


async def test_resync_from_all_four_rules(
    nginx: Nginx, lab_certs: LabCerts, tmp_path: Path
) -> None:
    store = ConfigStore(tmp_path / "phone.db")
    macros = device_macros(store, mac=MAC, serial="SN1", software_version="0.1.0")
    nginx.put("001122aabbcc.xml", _profile(GPP_A="plain", Resync_Periodic="7200"))
    nginx.put("gz/SN1.xml.gz", gzip.compress(_profile(GPP_B="gzip")))
    nginx.put("enc/001122AABBCC.xml", _openssl_enc(_profile(GPP_C="encrypted"), "k3y", tmp_path))
    nginx.put("private/sippa.xml", _profile(GPP_D="private", Proxy_1_="pbx.example.test"))
    store.update(
        {
            ("profile_rule", 0): nginx.url("$MA.xml"),
            ("profile_rule_b", 0): nginx.url("gz/$SN.xml.gz"),
            ("profile_rule_c", 0): f"[--key k3y] {nginx.url('enc/$MAU.xml')}",
            (
                "profile_rule_d",
                0,
            ): f"[--uid {USER} --pwd {PASSWORD}] {nginx.url('private/$PN.xml')}",
        }
    )
    p = Provisioner(store, macros=lambda: macros, fetch=HttpFetcher(lambda: _trust(lab_certs)))
    status = await p.resync()
    assert status.state == "ok", status.error
    assert [store.get(f"gpp_{c}") for c in "abcd"] == ["plain", "gzip", "encrypted", "private"]
    assert store.get("resync_periodic") == 7200 and store.get("proxy", 1) == "pbx.example.test"

    # a wrong password, a wrong key, an untrusted server: each fails and changes nothing
    before = store.snapshot()
    nginx.put("001122aabbcc.xml", _profile(GPP_A="changed"))
    for rule, value, match in [
        ("profile_rule_d", f"[--uid {USER} --pwd wrong] {nginx.url('private/$PN.xml')}", "401"),
        ("profile_rule_c", f"[--key nope] {nginx.url('enc/$MAU.xml')}", "wrong --key"),
    ]:
        saved = store.get(rule)
        store.update({(rule, 0): value})
        before = {**before, (rule, 0): value}
        status = await p.resync()
        assert status.state == "failed" and match in status.error
        assert store.snapshot() == before
        store.update({(rule, 0): saved})
        before = {**before, (rule, 0): saved}
    untrusted = Provisioner(store, macros=lambda: macros, fetch=HttpFetcher(TrustStore))
    assert (await untrusted.resync()).state == "failed"
    assert store.get("gpp_a") == "plain"


async def test_conditional_rule_with_assignments_and_a_secret_key(
    nginx: Nginx, lab_certs: LabCerts, tmp_path: Path
) -> None:
    """Cisco rule syntax end to end: the first resync takes the first alternative (its
    condition holds), assigns GPP_B before fetching (the URL uses it), and decrypts with the
    secret $SA; the profile it gets sets GPP_A, so the next resync takes the other one."""
    store = ConfigStore(tmp_path / "phone.db")
    nginx.put("enc/001122aabbcc.xml", _openssl_enc(_profile(GPP_A="stage1"), "s3cr3t", tmp_path))
    nginx.put("done.xml", _profile(GPP_C="stage2"))
    store.update(
        {
            ("gpp_sa", 0): "s3cr3t",
            ("profile_rule", 0): (
                f'( "$A" eq "" and $SWVER ge 0.1.0 )? ( b = "$MA" ; User_ID_1_ = "u$SN" ; )! '
                f"[--key $SA] {nginx.url('enc/$B.xml')} | {nginx.url('done.xml')}"
            ),
        }
    )
    p = Provisioner(
        store,
        macros=lambda: device_macros(store, mac=MAC, serial="SN1", software_version="0.1.0"),
        fetch=HttpFetcher(lambda: _trust(lab_certs)),
    )
    status = await p.resync()
    assert status.state == "ok", status.error
    assert store.get("gpp_b") == "001122aabbcc" and store.get("user_id", 1) == "uSN1"
    assert store.get("gpp_a") == "stage1" and store.get("gpp_c") == ""
    status = await p.resync()
    assert status.state == "ok", status.error
    assert store.get("gpp_c") == "stage2"
    # a bad assignment fails the resync with the rule's name and changes nothing
    store.update({("profile_rule", 0): f'( Proxy_1_ = "not a host!" ; )! {nginx.url("done.xml")}'})
    before = store.snapshot()
    status = await p.resync()
    assert status.state == "failed"
    assert "Profile_Rule" in status.error and "Proxy_1_" in status.error
    assert store.snapshot() == before


async def test_custom_ca_rule(nginx: Nginx, lab_certs: LabCerts, tmp_path: Path) -> None:
    bundle = lab_certs.wrong_ca.cert.read_bytes()
    nginx.put("ca/bundle.pem", bundle)
    reloads: list[int] = []
    rule = CustomCaRule(
        tmp_path / "ca",
        fetch=HttpFetcher(lambda: _trust(lab_certs)),
        on_change=lambda: reloads.append(1),
    )
    assert (await rule.apply(nginx.url("ca/bundle.pem"))).state == "ok"
    assert [a.subject for a in rule.anchors()] == ["CN=Unrelated Wrong Test CA,O=sippa test lab"]
    digest = hashlib.sha256(bundle).hexdigest()
    assert (await rule.apply(nginx.url("ca/bundle.pem", https=False))).state == "failed"
    pinned = f"[--sha256 {digest}] {nginx.url('ca/bundle.pem', https=False)}"
    assert (await rule.apply(pinned)).state == "unchanged"
    nginx.put("ca/bundle.pem", lab_certs.ca.cert.read_bytes())  # swapped on the server
    st = await rule.apply(pinned)
    assert st.state == "failed" and "pinned" in st.error
    assert rule.path.read_bytes() == bundle and reloads == [1]


# -- signed releases --------------------------------------------------------------------------


def _wheel(name: str, version: str, code: str) -> tuple[str, bytes]:
    """A real (pure-Python) wheel of a one-module package."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": code.encode(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: sippa-tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            z.writestr(path, data)
    return f"{name}-{version}-py3-none-any.whl", buf.getvalue()


PROBE = "sippa_probe"
# the health check imports the release AND a dependency shared from the running environment
HEALTHY = "import cryptography\nVERSION = {v!r}\ndef check():\n    return 0\n"
BROKEN = "VERSION = {v!r}\ndef check():\n    return 3\n"


def _release(
    nginx: Nginx, key: Ed25519PrivateKey, version: str, code: str, *, tamper: str = ""
) -> str:
    name, wheel = _wheel(PROBE, version, code.format(v=version))
    manifest = {
        "name": PROBE,
        "version": version,
        "wheel": name,
        "sha256": hashlib.sha256(wheel).hexdigest(),
        "notes": f"sippa probe {version}",
        "advisories": [{"id": f"PROBE-{version}", "severity": "low", "summary": "test"}],
    }
    signed = sign_manifest(manifest, key)
    if tamper == "wheel":
        wheel = _wheel(PROBE, version, "import os\n" + code.format(v=version))[1]  # swapped
    if tamper == "manifest":
        outer = json.loads(signed)
        outer["manifest"]["notes"] = "nothing to see"
        signed = json.dumps(outer).encode()
    nginx.put(f"rel/{version}/{name}", wheel)
    return nginx.put(f"rel/{version}/manifest.json", signed)


async def test_signed_updates(nginx: Nginx, lab_certs: LabCerts, tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    store = ConfigStore()
    root = tmp_path / "releases"
    health = command_health_check(
        ["{env}/bin/python", "-c", f"import sys, {PROBE}; sys.exit({PROBE}.check())"]
    )
    restarts: list[str] = []

    async def restart(env: Path) -> None:
        restarts.append(env.name)

    up = Updater(
        store,
        root=root,
        public_keys=[key.public_key()],
        current_version="1.0.0",
        fetch=HttpFetcher(lambda: _trust(lab_certs)),
        package=PROBE,
        health_check=health,
        restart=restart,
    )

    store.update({("upgrade_rule", 0): _release(nginx, key, "2.0.0", HEALTHY)})
    status = await up.update()
    assert status.state == "installed", status
    good = root / "envs" / "2.0.0-1"
    assert up.envs.current() == good and restarts == ["2.0.0-1"]
    out = subprocess.run([str(root / "current" / "bin" / "python"), "-c",
                          f"import {PROBE}; print({PROBE}.VERSION)"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert out.stdout.strip() == "2.0.0"
    assert status.available is not None and status.available.notes == "sippa probe 2.0.0"

    # a broken release is installed, fails its health check and is rolled back
    store.update({("upgrade_rule", 0): _release(nginx, key, "3.0.0", BROKEN)})
    status = await up.update()
    assert status.state == "rolled-back" and status.current_version == "2.0.0"
    assert up.envs.current() == good and restarts == ["2.0.0-1", "3.0.0-1", "2.0.0-1"]

    # tampered wheel or manifest, a foreign key, a release below the limit: refused, nothing run
    for version, tamper in [("4.0.0", "wheel"), ("4.0.1", "manifest")]:
        store.update({("upgrade_rule", 0): _release(nginx, key, version, HEALTHY, tamper=tamper)})
        status = await up.update()
        assert status.state == "refused", (version, status)
    other = Ed25519PrivateKey.generate()
    store.update({("upgrade_rule", 0): _release(nginx, other, "4.0.2", HEALTHY)})
    assert "does not verify" in (await up.update()).error
    store.update(
        {
            ("upgrade_rule", 0): _release(nginx, key, "4.1.0", HEALTHY),
            ("downgrade_rev_limit", 0): "5.0",
        }
    )
    assert "Downgrade_Rev_Limit" in (await up.update()).error
    assert not (root / "envs" / "4.0.0-1").exists() and not (root / "envs" / "4.1.0-1").exists()
    assert up.envs.current() == good and len(restarts) == 3
    shutil.rmtree(root / "envs" / "3.0.0-1")


class Replaced(BaseException):
    """os.execv seen from inside: the process is gone."""


async def test_update_survives_a_reexec(nginx: Nginx, lab_certs: LabCerts, tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    store = ConfigStore()
    root = tmp_path / "releases"
    health = command_health_check(
        ["{env}/bin/python", "-c", f"import sys, {PROBE}; sys.exit({PROBE}.check())"]
    )

    async def reexec(env: Path) -> None:
        raise Replaced

    def updater(version: str) -> Updater:
        return Updater(store, root=root, public_keys=[key.public_key()], current_version=version,
                       fetch=HttpFetcher(lambda: _trust(lab_certs)), package=PROBE,
                       health_check=health, restart=reexec)  # fmt: skip

    store.update({("upgrade_rule", 0): _release(nginx, key, "5.0.0", HEALTHY)})
    with pytest.raises(Replaced):
        await updater("1.0.0").update()
    # the "new process" runs 5.0.0 and finishes the update with the real health check
    status = await updater("5.0.0").resume()
    assert status.state == "installed" and status.current_version == "5.0.0"
    assert (root / "current").resolve() == root / "envs" / "5.0.0-1"
