"""Resync schedule (sans-IO) and the Provisioner pump with a fake clock and a fake server."""

from __future__ import annotations

import asyncio
import heapq
import itertools

import pytest

from sippa.app.provisioning import Provisioner, ResyncSchedule, ScheduleSettings
from sippa.app.store import ConfigStore
from sippa.net.http import FetchError, Request

CFG = ScheduleSettings(random_delay=40, periodic=3600, retry=300, forced_delay=600)


def test_schedule_start_periodic_retry() -> None:
    s = ResyncSchedule(lambda x: x / 2)
    s.start(1000, CFG)
    assert (s.due_at, s.reason) == (1020, "start")
    assert not s.due(1019, False, CFG) and s.due(1020, False, CFG)
    s.done(1021, False, CFG)
    assert (s.due_at, s.reason, s.failures) == (1321, "retry", 1)
    s.done(1321, True, CFG)
    assert (s.due_at, s.reason, s.failures) == (1321 + 3600 + 20, "periodic", 0)


def test_schedule_without_start_resync_or_periodic() -> None:
    s = ResyncSchedule(lambda x: x)
    s.start(0, ScheduleSettings(on_reset=False, periodic=0))
    assert s.due_at is None and s.wake_at(0, CFG) is None
    s.force(5, "notify")
    assert s.due(5, False, CFG) and s.reason == "notify"
    s.start(0, ScheduleSettings(enabled=False))
    assert s.due_at is None


def test_busy_postpones_up_to_forced_delay() -> None:
    s = ResyncSchedule(lambda x: 0.0)
    s.force(100, "notify")
    assert not s.due(100, True, CFG)
    assert s.wake_at(100, CFG) == 105  # polls the calls
    assert not s.due(699, True, CFG)
    assert s.wake_at(698, CFG) == 700  # never later than the forced delay
    assert s.due(700, True, CFG)
    s.done(700, True, CFG)
    assert s.postponed_since is None
    s.force(800, "notify")
    assert not s.due(800, True, CFG) and s.due(801, False, CFG)  # calls ended


def test_reconfigure_moves_a_periodic_resync_but_not_a_retry() -> None:
    s = ResyncSchedule(lambda x: 0.0)
    s.start(0, ScheduleSettings(on_reset=False, periodic=3600))
    s.reconfigure(10, ScheduleSettings(periodic=60))
    assert s.due_at == 70
    s.done(70, False, CFG)
    s.reconfigure(80, ScheduleSettings(periodic=60))
    assert (s.due_at, s.reason) == (370, "retry")
    s.reconfigure(80, ScheduleSettings(enabled=False))
    assert s.due_at is None


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        fut = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.t + seconds, next(self._seq), fut))
        await fut

    async def advance(self, seconds: float) -> None:
        target = self.t + seconds
        await _settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            when, _, fut = heapq.heappop(self._sleepers)
            if fut.done():
                continue
            self.t = max(self.t, when)
            fut.set_result(None)
            await _settle()
        self.t = target
        await _settle()


async def _settle() -> None:
    for _ in range(30):
        await asyncio.sleep(0)


class FakeServer:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[Request] = []

    async def __call__(self, request: Request) -> bytes:
        self.requests.append(request)
        try:
            return self.files[request.url]
        except KeyError:
            raise FetchError(f"{request.url}: HTTP 404 Not Found") from None


def _profile(**values: object) -> bytes:
    body = "".join(f"<{k}>{v}</{k}>" for k, v in values.items())
    return f"<flat-profile>{body}</flat-profile>".encode()


@pytest.fixture
def setup() -> tuple[ConfigStore, FakeServer, FakeClock]:
    store = ConfigStore()
    store.update(
        {
            ("profile_rule", 0): "https://p.test/$MA.xml",
            ("resync_random_delay", 0): 3,
            ("resync_periodic", 0): 1000,
            ("resync_error_retry_delay", 0): 100,
            ("forced_resync_delay", 0): 500,
        }
    )
    return store, FakeServer(), FakeClock()


def _provisioner(
    store: ConfigStore, server: FakeServer, clock: FakeClock, **kw: object
) -> Provisioner:
    class HalfRandom:
        def uniform(self, a: float, b: float) -> float:
            return (a + b) / 2

    return Provisioner(
        store,
        macros=lambda: {"MA": "0011aabbccdd"},
        fetch=server,
        clock=clock,
        rng=HalfRandom(),  # type: ignore[arg-type]
        wall=lambda: 1.7e9 + clock.t,
        **kw,  # type: ignore[arg-type]
    )


async def test_start_resync_after_random_delay_then_periodic(setup) -> None:  # type: ignore[no-untyped-def]
    store, server, clock = setup
    server.files["https://p.test/0011aabbccdd.xml"] = _profile(GPP_A="one")
    p = _provisioner(store, server, clock)
    await p.start()
    try:
        await clock.advance(29)
        assert server.requests == []
        await clock.advance(1)  # 3 x 20 s / 2
        assert store.get("gpp_a") == "one"
        st = p.status
        assert st.state == "ok" and st.changed == 1 and st.last_success == 1.7e9 + 30
        assert st.reason == "periodic" and st.next_in == pytest.approx(1030)
        server.files["https://p.test/0011aabbccdd.xml"] = _profile(GPP_A="two")
        await clock.advance(1029)
        assert store.get("gpp_a") == "one"
        await clock.advance(1)
        assert store.get("gpp_a") == "two" and len(server.requests) == 2
    finally:
        await p.stop()


async def test_failure_changes_nothing_and_retries(setup) -> None:  # type: ignore[no-untyped-def]
    store, server, clock = setup
    store.update({("profile_rule_b", 0): "[--uid u --pwd secret] https://p.test/b.xml"})
    server.files["https://p.test/0011aabbccdd.xml"] = _profile(GPP_A="from-a")
    server.files["https://p.test/b.xml"] = _profile(Resync_Periodic="not a number")
    p = _provisioner(store, server, clock)
    await p.start()
    try:
        await clock.advance(30)
        st = p.status
        assert st.state == "failed" and "Profile_Rule_B" in st.error
        assert "Resync_Periodic" in st.error and "whole number" in st.error
        assert store.get("gpp_a") == ""  # rule A's good profile is not applied either
        assert server.requests[-1].username == "u" and server.requests[-1].password == "secret"
        assert st.reason == "retry" and st.next_in == pytest.approx(100)
        del server.files["https://p.test/b.xml"]
        await clock.advance(100)
        assert p.status.state == "failed" and "404" in p.status.error
        assert store.get("gpp_a") == ""
        server.files["https://p.test/b.xml"] = _profile(GPP_B="from-b", GPP_A="b-wins")
        await clock.advance(100)
        assert p.status.state == "ok"
        assert (store.get("gpp_a"), store.get("gpp_b")) == ("b-wins", "from-b")
    finally:
        await p.stop()


async def test_notify_waits_for_calls_at_most_forced_delay(setup) -> None:  # type: ignore[no-untyped-def]
    store, server, clock = setup
    store.update({("resync_on_reset", 0): False, ("resync_periodic", 0): 0})
    server.files["https://p.test/0011aabbccdd.xml"] = _profile(GPP_C="x")
    busy = [True]
    p = _provisioner(store, server, clock, is_busy=lambda: busy[0])
    await p.start()
    try:
        await clock.advance(10_000)
        assert server.requests == []  # no start resync, no periodic one
        assert await p.on_resync_notify()
        await clock.advance(499)
        assert server.requests == []
        await clock.advance(1)
        assert store.get("gpp_c") == "x"
        # the next one runs as soon as the call ends
        assert await p.on_resync_notify()
        await clock.advance(12)
        assert len(server.requests) == 1
        busy[0] = False
        await clock.advance(5)
        assert len(server.requests) == 2
        store.update({("resync_from_sip", 0): False})
        assert not await p.on_resync_notify()
        await clock.advance(1000)
        assert len(server.requests) == 2
    finally:
        await p.stop()


async def test_settings_changes_reschedule_and_disable(setup) -> None:  # type: ignore[no-untyped-def]
    store, server, clock = setup
    store.update({("resync_on_reset", 0): False})
    server.files["https://p.test/0011aabbccdd.xml"] = _profile(GPP_D="y")
    p = _provisioner(store, server, clock)
    await p.start()
    try:
        store.update({("resync_periodic", 0): 50})
        await clock.advance(79)  # 50 + 30 random
        assert server.requests == []
        await clock.advance(1)
        assert len(server.requests) == 1
        store.update({("provision_enable", 0): False})
        await clock.advance(10_000)
        assert len(server.requests) == 1
        status = await p.resync()  # the button does nothing when provisioning is off
        assert status.state == "ok" and status.warnings == ("Provision_Enable is off",)
    finally:
        await p.stop()


async def test_manual_resync_and_after_hook(setup) -> None:  # type: ignore[no-untyped-def]
    store, server, clock = setup
    server.files["https://p.test/0011aabbccdd.xml"] = _profile(GPP_E="z")
    calls: list[str] = []

    async def after() -> None:
        calls.append("ca")
        raise RuntimeError("CA rule failed")

    p = _provisioner(store, server, clock, after_resync=after)
    status = await p.resync()
    assert status.state == "ok" and calls == ["ca"] and "CA rule failed" in status.warnings
    assert store.get("gpp_e") == "z"


async def test_service_resync_applies_profile_then_custom_ca(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from sippa.app.provisioning import ProvisioningService
    from sippa.app.settings import Access
    from sippa.net.tls import TrustStore
    from tests.peers.certs import make_lab_certs

    certs = make_lab_certs(tmp_path / "pki")
    server = FakeServer()
    store = ConfigStore(tmp_path / "phone.db")
    store.update({("profile_rule", 0): "https://p.test/$MAU.xml"})
    server.files["https://p.test/AABBCCDDEEFF.xml"] = (
        b"<flat-profile><Custom_CA_Rule>https://p.test/ca.pem</Custom_CA_Rule>"
        b'<Proxy_1_ ua="rw">pbx.test</Proxy_1_></flat-profile>'
    )
    server.files["https://p.test/ca.pem"] = certs.ca.cert.read_bytes()
    reloads: list[int] = []
    svc = ProvisioningService(
        store,
        data_dir=tmp_path,
        trust=TrustStore,
        mac="aa:bb:cc:dd:ee:ff",
        fetch=server,
        on_trust_change=lambda: reloads.append(1),
        software_version="0.1.0",
    )
    status = await svc.resync_now()
    assert status.state == "ok", status.error
    assert store.get("proxy", 1) == "pbx.test" and svc.access.get("proxy", 1) is Access.RW
    assert (tmp_path / "ca" / "custom-ca-rule.pem").read_bytes() == certs.ca.cert.read_bytes()
    assert reloads == [1]
    report = svc.status()
    json.dumps(report)
    assert report["custom_ca"]["anchors"][0]["subject"].startswith("CN=sippa Test CA")
    assert report["resync"]["state"] == "ok" and report["updates"] is None
    assert b'<Proxy_1_ ua="rw">pbx.test</Proxy_1_>' in svc.export()
    # a bad CA bundle: the profile still applies, the resync reports the CA failure
    server.files["https://p.test/ca.pem"] = certs.server.cert.read_bytes()
    status = await svc.resync_now()
    assert status.state == "ok" and any("not a CA" in w for w in status.warnings)
    assert (tmp_path / "ca" / "custom-ca-rule.pem").read_bytes() == certs.ca.cert.read_bytes()


def test_phone_provisioning_updates_only_with_a_key_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from sippa.app.provisioning import UPDATE_KEYS_NAME, phone_provisioning

    store = ConfigStore()
    svc = phone_provisioning(store, data_dir=tmp_path, is_busy=lambda: False)
    assert svc.updater is None
    pub = Ed25519PrivateKey.generate().public_key()
    (tmp_path / UPDATE_KEYS_NAME).write_bytes(
        pub.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    svc = phone_provisioning(
        store, data_dir=tmp_path, is_busy=lambda: False, software_version="0.1.0"
    )
    assert svc.updater is not None and svc.updater.status.current_version == "0.1.0"
    assert svc.status()["updates"]["state"] == "idle"


def test_notify_during_a_resync_asks_for_another_one() -> None:
    s = ResyncSchedule(lambda x: 0.0)
    s.start(0, ScheduleSettings(on_reset=True, random_delay=0))
    s.begin()
    s.force(1, "notify")
    s.done(2, True, CFG)
    assert (s.due_at, s.reason) == (2, "notify")
    s.begin()
    s.done(3, True, CFG)
    assert s.reason == "periodic"


async def test_plain_http_profile_is_flagged(setup) -> None:  # type: ignore[no-untyped-def]
    store, server, clock = setup
    store.update({("profile_rule", 0): "http://p.test/x.xml", ("profile_rule_b", 0): ""})
    server.files["http://p.test/x.xml"] = _profile(GPP_F="f")
    status = await _provisioner(store, server, clock).resync()
    assert status.state == "ok" and store.get("gpp_f") == "f"
    assert any("plain http" in w for w in status.warnings)
    server.files["https://p.test/0011aabbccdd.xml"] = _profile(GPP_F="g")
    store.update({("profile_rule", 0): "https://p.test/$MA.xml"})
    status = await _provisioner(store, server, clock).resync()
    assert not any("plain http" in w for w in status.warnings)
