"""Signed release manifests, environments and the updater (fake server, fake installer)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sippa.app.store import ConfigStore
from sippa.app.updates import (
    Environments,
    UpdateError,
    Updater,
    canonical_bytes,
    load_public_key,
    sign_manifest,
    verify_manifest,
)
from sippa.net.http import FetchError, Request

KEY = Ed25519PrivateKey.generate()
PUB = KEY.public_key()
WHEEL = b"PK\x03\x04 pretend wheel"


def _manifest(version: str = "0.2.0", wheel: bytes = WHEEL, **extra: object) -> dict[str, object]:
    return {
        "name": "sippa",
        "version": version,
        "wheel": f"sippa-{version}-py3-none-any.whl",
        "sha256": hashlib.sha256(wheel).hexdigest(),
        "notes": "Better things.\nMore lines.",
        "advisories": [{"id": "SIPPA-2026-01", "severity": "high", "summary": "fixes a hole"}],
        **extra,
    }


def test_sign_and_verify() -> None:
    data = sign_manifest(_manifest(), KEY)
    m = verify_manifest(data, [PUB], base_url="https://up.test/rel/manifest.json")
    assert m.version == "0.2.0" and m.sha256 == hashlib.sha256(WHEEL).digest()
    assert m.wheel_url == "https://up.test/rel/sippa-0.2.0-py3-none-any.whl"
    assert m.advisories[0].id == "SIPPA-2026-01" and m.notes.startswith("Better")
    # key order and whitespace of the file do not matter, the canonical bytes do
    outer = json.loads(data)
    reordered = json.dumps(
        {
            "signature": outer["signature"],
            "manifest": dict(reversed(list(outer["manifest"].items()))),
        }
    )
    assert verify_manifest(reordered.encode(), [PUB], base_url="https://u.test/").version == "0.2.0"
    assert canonical_bytes({"b": 1, "a": "é"}) == b'{"a":"\\u00e9","b":1}'


@pytest.mark.parametrize(
    "tamper",
    ["version", "sha256", "unsigned", "other-key", "garbage-signature", "not-json", "no-manifest"],
)
def test_tampered_manifests_are_refused(tamper: str) -> None:
    outer = json.loads(sign_manifest(_manifest(), KEY))
    if tamper == "version":
        outer["manifest"]["version"] = "9.0.0"
    elif tamper == "sha256":
        outer["manifest"]["sha256"] = "00" * 32
    elif tamper == "unsigned":
        del outer["signature"]
    elif tamper == "other-key":
        outer = json.loads(sign_manifest(_manifest(), Ed25519PrivateKey.generate()))
    elif tamper == "garbage-signature":
        outer["signature"] = "!!"
    elif tamper == "no-manifest":
        outer = {"signature": outer["signature"]}
    data = b"{nope" if tamper == "not-json" else json.dumps(outer).encode()
    with pytest.raises(UpdateError):
        verify_manifest(data, [PUB])


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"version": "not a version"}, "not a version"),
        ({"sha256": "xyz"}, "64 hex"),
        ({"wheel": "ftp://x/sippa-1-py3-none-any.whl"}, "http or https"),
        ({"wheel": "https://x/evil.sh"}, "wheel file name"),
        ({"advisories": [{"id": "x"}]}, "severity"),
    ],
)
def test_signed_but_malformed_manifests(change: dict[str, object], match: str) -> None:
    with pytest.raises(UpdateError, match=match):
        verify_manifest(
            sign_manifest({**_manifest(), **change}, KEY), [PUB], base_url="https://u.test/"
        )


def test_load_public_key_formats() -> None:
    raw = PUB.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pem = PUB.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for text in (pem, raw.hex().encode(), base64.b64encode(raw)):
        assert (
            load_public_key(text).public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            == raw
        )
    with pytest.raises(UpdateError):
        load_public_key(b"short")


def test_environments_switch_atomically(tmp_path: Path) -> None:
    envs = Environments(tmp_path)
    a, b = envs.new_env_path("1.0"), None
    a.mkdir()
    assert envs.switch(a) is None and envs.current() == a
    b = envs.new_env_path("1.0")
    assert b.name == "1.0-2"
    b.mkdir()
    assert envs.switch(b) == a and envs.current() == b and envs.previous() == a
    envs.switch_back(a)
    assert envs.current() == a
    assert (tmp_path / "current").is_symlink()
    assert not list(tmp_path.glob(".current*"))


class Server:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.progress_seen = False

    async def __call__(self, request: Request) -> bytes:
        if request.progress is not None:
            request.progress(1, 2)
            self.progress_seen = True
        if request.url not in self.files:
            raise FetchError(f"{request.url}: HTTP 404 Not Found")
        return self.files[request.url]


def _updater(tmp_path: Path, server: Server, healthy: list[bool], **kw: object):  # type: ignore[no-untyped-def]
    store = ConfigStore()
    store.update({("upgrade_rule", 0): "https://up.test/$PN/manifest.json"})
    events: list[str] = []

    async def installer(env: Path, wheel: Path) -> None:
        assert hashlib.sha256(wheel.read_bytes()).hexdigest() == hashlib.sha256(WHEEL).hexdigest()
        env.mkdir(parents=True)
        events.append(f"install {env.name}")

    async def restart(env: Path) -> None:
        events.append(f"restart {env.name}")

    async def health(env: Path) -> bool:
        events.append(f"health {env.name}")
        return healthy.pop(0)

    up = Updater(
        store,
        root=tmp_path / "rel",
        public_keys=[PUB],
        current_version="0.1.0",
        fetch=server,
        installer=installer,
        restart=restart,
        health_check=health,
        macros=lambda: {"PN": "sippa"},
        **kw,
    )  # type: ignore[arg-type]
    return up, store, events


async def test_install_then_up_to_date(tmp_path: Path) -> None:
    server = Server()
    server.files["https://up.test/sippa/manifest.json"] = sign_manifest(_manifest(), KEY)
    server.files["https://up.test/sippa/sippa-0.2.0-py3-none-any.whl"] = WHEEL
    up, _, events = _updater(tmp_path, server, [True])
    status = await up.update()
    assert status.state == "installed" and status.current_version == "0.2.0"
    assert events == ["install 0.2.0-1", "restart 0.2.0-1", "health 0.2.0-1"]
    assert up.envs.current() == tmp_path / "rel" / "envs" / "0.2.0-1"
    assert server.progress_seen and status.available is not None
    assert status.available.advisories[0].severity == "high"
    assert (await up.update()).state == "up-to-date"


async def test_unhealthy_release_rolls_back_and_is_not_retried(tmp_path: Path) -> None:
    server = Server()
    server.files["https://up.test/sippa/manifest.json"] = sign_manifest(_manifest(), KEY)
    server.files["https://up.test/sippa/sippa-0.2.0-py3-none-any.whl"] = WHEEL
    up, _, events = _updater(tmp_path, server, [False])
    running = up.envs.new_env_path("0.1.0")
    running.mkdir()
    up.envs.switch(running)
    status = await up.update()
    assert status.state == "rolled-back" and status.current_version == "0.1.0"
    assert up.envs.current() == running
    assert events[-1] == "restart 0.1.0-1"
    status = await up.update()
    assert status.state == "refused" and "health check before" in status.error
    assert len([e for e in events if e.startswith("install")]) == 1


@pytest.mark.parametrize("case", ["bad-wheel", "old", "limit", "wrong-package", "no-wheel"])
async def test_refusals_install_nothing(tmp_path: Path, case: str) -> None:
    server = Server()
    version = {"old": "0.1.0", "limit": "0.3.0"}.get(case, "0.2.0")
    extra = {"name": "other"} if case == "wrong-package" else {}
    server.files["https://up.test/sippa/manifest.json"] = sign_manifest(
        _manifest(version, **extra), KEY
    )
    if case != "no-wheel":
        server.files[f"https://up.test/sippa/sippa-{version}-py3-none-any.whl"] = (
            WHEEL + b"tampered" if case == "bad-wheel" else WHEEL
        )
    up, store, events = _updater(tmp_path, server, [True])
    if case == "limit":
        store.update({("downgrade_rev_limit", 0): "0.5"})
    status = await up.update()
    why = {
        "bad-wheel": "does not match the signed SHA-256",
        "limit": "Downgrade_Rev_Limit",
        "wrong-package": "not 'sippa'",
        "no-wheel": "404",
        "old": "",
    }[case]
    assert why in status.error
    expected = {
        "bad-wheel": "refused",
        "old": "up-to-date",
        "limit": "refused",
        "wrong-package": "refused",
        "no-wheel": "failed",
    }[case]
    assert status.state == expected, status
    assert events == [] and up.envs.current() is None and status.current_version == "0.1.0"


async def test_empty_rule_does_nothing(tmp_path: Path) -> None:
    up, store, events = _updater(tmp_path, Server(), [])
    store.update({("upgrade_rule", 0): ""})
    assert (await up.update()).state == "idle" and events == []


class Replaced(BaseException):
    """What os.execv looks like from inside: the process is gone."""


@pytest.mark.parametrize("healthy", [True, False])
async def test_resume_after_reexec(tmp_path: Path, healthy: bool) -> None:
    server = Server()
    server.files["https://up.test/sippa/manifest.json"] = sign_manifest(_manifest(), KEY)
    server.files["https://up.test/sippa/sippa-0.2.0-py3-none-any.whl"] = WHEEL
    up, _, events = _updater(tmp_path, server, [])
    running = up.envs.new_env_path("0.1.0")
    running.mkdir()
    up.envs.switch(running)

    async def reexec(env: Path) -> None:
        raise Replaced

    up._restart = reexec
    with pytest.raises(Replaced):
        await up.update()
    assert up.envs.current() == tmp_path / "rel" / "envs" / "0.2.0-1"

    # the new process: same root, running the new version, finishes the update
    again, _, events = _updater(tmp_path, server, [healthy])
    again.status = again.status.__class__(current_version="0.2.0")
    status = await again.resume()
    if healthy:
        assert status.state == "installed" and again.envs.current().name == "0.2.0-1"
        assert events == ["health 0.2.0-1"]
    else:
        assert status.state == "rolled-back" and again.envs.current() == running
        assert events == ["health 0.2.0-1", "restart 0.1.0-1"]
    assert (await again.resume()).state == status.state  # nothing pending any more
    assert len(events) <= 2


def test_load_public_keys(tmp_path: Path) -> None:
    from sippa.app.updates import load_public_keys

    other = Ed25519PrivateKey.generate().public_key()
    pems = b"".join(
        k.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        for k in (PUB, other)
    )
    (tmp_path / "keys.pem").write_bytes(b"comment\n" + pems)
    assert len(load_public_keys(tmp_path / "keys.pem")) == 2
    raw = PUB.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    (tmp_path / "keys.txt").write_bytes(b"# release key 2026\n" + raw.hex().encode() + b"\n")
    assert len(load_public_keys(tmp_path / "keys.txt")) == 1


async def test_first_update_rolls_back_to_the_running_environment(tmp_path: Path) -> None:
    import sys

    server = Server()
    server.files["https://up.test/sippa/manifest.json"] = sign_manifest(_manifest(), KEY)
    server.files["https://up.test/sippa/sippa-0.2.0-py3-none-any.whl"] = WHEEL
    up, _, events = _updater(tmp_path, server, [False])
    assert (await up.update()).state == "rolled-back"
    assert up.envs.current() is None  # no current link: the running environment stays
    assert events[-1] == f"restart {Path(sys.prefix).name}"


async def test_lines_health_check() -> None:
    from sippa.app.updates import lines_health_check

    lines = [{"line": 1, "registers": True, "registered": False}, {"line": 2, "registers": False}]
    check = lines_health_check(lambda: lines, timeout=0.05, poll=0.01)
    assert not await check(Path("/env"))
    lines[0]["registered"] = True
    assert await check(Path("/env"))


def test_reexec_restart_replaces_the_process() -> None:
    import subprocess
    import sys

    code = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from sippa.app.updates import reexec_restart\n"
        "asyncio.run(reexec_restart(['--version'])(Path(sys.prefix)))\n"
        "print('still the old process')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.startswith("sippa ") and "still the old process" not in out.stdout
