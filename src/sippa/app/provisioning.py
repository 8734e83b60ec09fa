"""Profile resync: Profile_Rule, Profile_Rule_B..D on start, periodically, on error, on NOTIFY.

Behaviour (Cisco MPP admin guide, "Provisioning"; see README):

- On start, when ``Resync_On_Reset`` is on, after a random delay of up to
  ``Resync_Random_Delay`` x 20 s; then every ``Resync_Periodic`` seconds (0 = never) plus the
  same random delay, so a fleet of phones does not hit the server at once.
- A failed resync is retried after ``Resync_Error_Retry_Delay`` seconds.
- A resync waits while a call is up (``is_busy()``), but at most ``Forced_Resync_Delay``
  seconds; an authenticated SIP NOTIFY with ``Event: resync`` (the phone checks the
  authentication and calls :meth:`Provisioner.on_resync_notify`) asks for one now, when
  ``Resync_From_SIP`` allows it. ``Provision_Enable = No`` turns all of it off.
- One resync fetches every non-empty rule in order, decodes and checks every profile, and only
  then applies them all in ONE store transaction (later rules win): a failed download or an
  invalid profile changes nothing.

:class:`ResyncSchedule` is the sans-IO timing logic (time and randomness are arguments);
:class:`Provisioner` is the asyncio pump around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import random
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from xml.etree.ElementTree import Element, SubElement, tostring

from sippa.app.macros import device_macros, secret_macros
from sippa.app.profile import (
    MAX_PROFILE_BYTES,
    AccessMap,
    ImportResult,
    PreparedProfile,
    ProfileError,
    apply_profile,
    check_profile,
    export_profile,
    import_profile,
    prepare_profile,
)
from sippa.app.rules import RuleError, parse_rule, rebuild_rule
from sippa.app.settings import Value
from sippa.app.store import ConfigStore, Key
from sippa.app.trust import CustomCaRule
from sippa.net.http import Fetcher, FetchError, HttpFetcher, Request
from sippa.net.tls import TrustStore

if TYPE_CHECKING:
    from sippa.app.updates import Updater, UpdateStatus

__all__ = [
    "PROFILE_RULES",
    "Clock",
    "Provisioner",
    "ProvisioningService",
    "ResyncSchedule",
    "ResyncStatus",
    "ScheduleSettings",
    "phone_provisioning",
]

log = logging.getLogger(__name__)

PROFILE_RULES = ("profile_rule", "profile_rule_b", "profile_rule_c", "profile_rule_d")
RANDOM_DELAY_UNIT = 20.0  # Resync_Random_Delay counts units of 20 s (Cisco)
BUSY_POLL = 5.0  # how often a postponed resync looks whether the calls have ended
_WATCHED = {
    "provision_enable",
    "resync_on_reset",
    "resync_random_delay",
    "resync_periodic",
    "resync_error_retry_delay",
    "forced_resync_delay",
}


class Clock(Protocol):
    """Monotonic time and sleeping (tests pass a fake one)."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class _LoopClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True, slots=True)
class ScheduleSettings:
    """The resync knobs, in seconds."""

    enabled: bool = True
    on_reset: bool = True
    random_delay: float = 40.0
    periodic: float = 3600.0
    retry: float = 3600.0
    forced_delay: float = 14400.0
    from_sip: bool = True

    @classmethod
    def from_store(cls, store: ConfigStore) -> ScheduleSettings:
        return cls(
            enabled=bool(store.get("provision_enable")),
            on_reset=bool(store.get("resync_on_reset")),
            random_delay=int(store.get("resync_random_delay")) * RANDOM_DELAY_UNIT,
            periodic=float(store.get("resync_periodic")),
            retry=float(store.get("resync_error_retry_delay")),
            forced_delay=float(store.get("forced_resync_delay")),
            from_sip=bool(store.get("resync_from_sip")),
        )


class ResyncSchedule:
    """When the next resync is due (sans-IO). ``rand(x)`` returns a number in [0, x]."""

    def __init__(self, rand: Callable[[float], float]) -> None:
        self._rand = rand
        self.due_at: float | None = None
        self.reason = "none"
        self.postponed_since: float | None = None
        self.failures = 0
        self.running = False
        self._again: str | None = None  # a force() while a resync runs: one more after it

    def start(self, now: float, cfg: ScheduleSettings) -> None:
        if cfg.enabled and cfg.on_reset:
            self._set(now + self._rand(cfg.random_delay), "start")
        else:
            self._periodic(now, cfg)

    def _set(self, due: float | None, reason: str) -> None:
        self.due_at, self.reason = due, reason
        self.postponed_since = None

    def _periodic(self, now: float, cfg: ScheduleSettings) -> None:
        if cfg.enabled and cfg.periodic > 0:
            self._set(now + cfg.periodic + self._rand(cfg.random_delay), "periodic")
        else:
            self._set(None, "none")

    def force(self, now: float, reason: str) -> None:
        """Resync as soon as possible (a NOTIFY, a button)."""
        if self.running:
            self._again = reason  # the running one may have fetched before the change
        elif self.due_at is None or self.due_at > now:
            self._set(now, reason)

    def begin(self) -> None:
        """A resync starts (call :meth:`done` when it ends)."""
        self.running = True

    def reconfigure(self, now: float, cfg: ScheduleSettings) -> None:
        """The knobs changed: a waiting periodic resync is rescheduled with the new ones."""
        if not cfg.enabled:
            self._set(None, "none")
        elif self.reason in ("periodic", "none"):
            self._periodic(now, cfg)

    def due(self, now: float, busy: bool, cfg: ScheduleSettings) -> bool:
        """Whether to resync now; a busy phone postpones it up to ``forced_delay``."""
        if not cfg.enabled or self.due_at is None or now < self.due_at:
            return False
        if busy:
            if self.postponed_since is None:
                self.postponed_since = now
                log.info("resync postponed while a call is up")
            if now - self.postponed_since < cfg.forced_delay:
                return False
            log.info("resync forced after %.0f s of calls", now - self.postponed_since)
        return True

    def wake_at(self, now: float, cfg: ScheduleSettings) -> float | None:
        """When to look again (None: only when told)."""
        if not cfg.enabled or self.due_at is None:
            return None
        if self.postponed_since is not None and now >= self.due_at:
            return min(now + BUSY_POLL, self.postponed_since + cfg.forced_delay)
        return self.due_at

    def done(self, now: float, ok: bool, cfg: ScheduleSettings) -> None:
        self.running = False
        if self._again is not None:
            reason, self._again = self._again, None
            self.failures = 0 if ok else self.failures + 1
            self._set(now, reason)
            return
        if ok:
            self.failures = 0
            self._periodic(now, cfg)
        else:
            self.failures += 1
            if cfg.enabled and cfg.retry > 0:
                self._set(now + cfg.retry, "retry")
            else:
                self._periodic(now, cfg)


@dataclass(frozen=True, slots=True)
class ResyncStatus:
    """What the Provisioning page shows."""

    state: str = "never"
    """never, running, ok, failed."""
    last_attempt: float | None = None
    """Wall-clock time (epoch seconds) of the last resync."""
    last_success: float | None = None
    error: str = ""
    changed: int = 0
    """How many settings the last successful resync changed."""
    warnings: tuple[str, ...] = ()
    next_in: float | None = None
    """Seconds until the next scheduled resync (None: none scheduled)."""
    reason: str = ""
    """Why the next/last resync happens (start, periodic, retry, notify, manual)."""


@dataclass
class _Outcome:
    ok: bool
    error: str = ""
    changed: dict[Key, Value] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class Provisioner:
    """Resyncs the phone's settings from its profile rules (see the module docstring).

    ``macros()`` gives the current macro values (:func:`sippa.app.macros.device_macros`),
    ``fetch`` downloads (:class:`sippa.net.http.HttpFetcher`), ``is_busy()`` says whether a call
    is up, ``after_resync`` runs after every successful resync (e.g. the Custom CA Rule).
    """

    def __init__(
        self,
        store: ConfigStore,
        *,
        macros: Callable[[], Mapping[str, str]],
        fetch: Fetcher,
        access: AccessMap | None = None,
        is_busy: Callable[[], bool] = lambda: False,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        wall: Callable[[], float] = time.time,
        after_resync: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self._macros = macros
        self._fetch = fetch
        self._access = access
        self._is_busy = is_busy
        self._clock: Clock = clock or _LoopClock()
        rand = rng or random.SystemRandom()
        self.schedule = ResyncSchedule(lambda x: rand.uniform(0, x) if x > 0 else 0.0)
        self._wall = wall
        self._after = after_resync
        self._status = ResyncStatus()
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- status --------------------------------------------------------------------------

    @property
    def status(self) -> ResyncStatus:
        due = self.schedule.due_at
        next_in = None if due is None else max(0.0, due - self._clock.now())
        return replace(self._status, next_in=next_in, reason=self.schedule.reason)

    # -- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the schedule (the start resync comes after its random delay)."""
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self.schedule.start(self._clock.now(), ScheduleSettings.from_store(self.store))
        self._unsubscribe = self.store.subscribe(self._on_change)
        self._task = asyncio.create_task(self._run(), name="provisioning")

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _on_change(self, changes: dict[Key, Value]) -> None:
        if not any(k in _WATCHED for k, _ in changes) or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._reconfigure)

    def _reconfigure(self) -> None:
        self.schedule.reconfigure(self._clock.now(), ScheduleSettings.from_store(self.store))
        self._wake.set()

    # -- triggers ----------------------------------------------------------------------------

    def trigger(self, reason: str = "manual") -> None:
        """Ask for a resync as soon as no call is up (at most ``Forced_Resync_Delay`` later)."""
        self.schedule.force(self._clock.now(), reason)
        self._wake.set()

    async def on_resync_notify(self) -> bool:
        """An AUTHENTICATED NOTIFY with ``Event: resync`` arrived; False if it is not allowed."""
        cfg = ScheduleSettings.from_store(self.store)
        if not (cfg.enabled and cfg.from_sip):
            log.warning(
                "NOTIFY resync ignored: %s is off",
                "Resync_From_SIP" if cfg.enabled else "Provision_Enable",
            )
            return False
        log.info("resync asked for by SIP NOTIFY")
        self.trigger("notify")
        return True

    # -- the pump ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            cfg = ScheduleSettings.from_store(self.store)
            now = self._clock.now()
            if self.schedule.due(now, self._is_busy(), cfg):
                outcome = await self._resync_once()
                self.schedule.done(
                    self._clock.now(), outcome.ok, ScheduleSettings.from_store(self.store)
                )
                continue
            wake = self.schedule.wake_at(now, cfg)
            self._wake.clear()
            waiter = asyncio.create_task(self._wake.wait())
            waits: set[asyncio.Task[object]] = {waiter}
            if wake is not None:
                waits.add(asyncio.create_task(self._clock.sleep(max(0.0, wake - now))))
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in waits:
                    t.cancel()

    async def resync(self) -> ResyncStatus:
        """Resync now (the web page's button), whatever the schedule; returns the status."""
        outcome = await self._resync_once()
        self.schedule.done(self._clock.now(), outcome.ok, ScheduleSettings.from_store(self.store))
        self._wake.set()
        return self.status

    async def _resync_once(self) -> _Outcome:
        async with self._lock:
            self.schedule.begin()
            started = self._wall()
            self._status = replace(self._status, state="running", last_attempt=started)
            try:
                outcome = await self._fetch_and_apply()
            except Exception as exc:  # a bug must not stop the schedule
                log.exception("resync failed unexpectedly")
                outcome = _Outcome(False, f"internal error: {type(exc).__name__}")
            if outcome.ok:
                self._status = ResyncStatus(
                    state="ok",
                    last_attempt=started,
                    last_success=started,
                    changed=len(outcome.changed),
                    warnings=tuple(outcome.warnings),
                )
                log.info("resync done: %d settings changed", len(outcome.changed))
            else:
                self._status = replace(
                    self._status,
                    state="failed",
                    error=outcome.error,
                    warnings=tuple(outcome.warnings),
                )
                log.warning("resync failed: %s", outcome.error)
            return outcome

    def _assign(self, assignments: tuple[tuple[str, str], ...], name: str) -> None:
        """A rule's ``( Name = "value" ; )!``: checked and saved together, like a profile."""
        root = Element("flat-profile")
        for element, value in assignments:
            SubElement(root, element).text = value
        prepared = prepare_profile(tostring(root), self.store, source=f"{name} assignments")
        result = apply_profile(prepared, self.store, self._access)
        for warning in result.warnings:
            log.warning("%s", warning)

    async def _fetch_and_apply(self) -> _Outcome:
        cfg = ScheduleSettings.from_store(self.store)
        if not cfg.enabled:
            return _Outcome(True, warnings=["Provision_Enable is off"])
        merged = PreparedProfile()
        fetched = 0
        for key in PROFILE_RULES:
            name = {"profile_rule": "Profile_Rule"}.get(key, f"Profile_Rule_{key[-1].upper()}")
            try:
                secrets = secret_macros(self.store)
                rule = parse_rule(
                    str(self.store.get(key)), self._macros(), secrets=secrets, assignments=True
                )
                if rule is None:
                    continue
                if rule.assignments:
                    # Cisco: "performed before the profile is retrieved", so the URL sees them
                    self._assign(rule.assignments, name)
                    fetched += 1
                    if not rule.url:
                        continue
                    rule = rebuild_rule(rule, self._macros(), secrets=secret_macros(self.store))
                data = await self._fetch(
                    Request(rule.url, rule.username, rule.password, max_bytes=MAX_PROFILE_BYTES)
                )
                if rule.sha256 is not None and hashlib.sha256(data).digest() != rule.sha256:
                    raise ProfileError("the profile does not match its --sha256")
                prepared = prepare_profile(data, self.store, key=rule.key, source=name)
                check_profile(prepared, self.store)  # name the rule whose profile is bad
                if not rule.https and rule.key is None and rule.sha256 is None:
                    # allowed (as on the Cisco phones) but said: nothing protects it on the way
                    prepared.warnings.append(
                        f"{name}: fetched over plain http without --key or --sha256: anyone "
                        "on the path could have changed it"
                    )
                merged.merge(prepared)
                fetched += 1
            except (RuleError, FetchError, ProfileError) as exc:
                return _Outcome(False, f"{name}: {exc}", warnings=merged.warnings)
        if not fetched:
            return _Outcome(True, warnings=["no profile rule is set"])
        try:
            result = apply_profile(merged, self.store, self._access)
        except ProfileError as exc:
            return _Outcome(False, str(exc), warnings=merged.warnings)
        warnings = list(result.warnings)
        if self._after is not None:
            try:
                await self._after()
            except Exception as exc:
                log.warning("after resync: %s", exc)
                warnings.append(str(exc))
        return _Outcome(True, changed=result.changed, warnings=warnings)


# -- everything together, for the daemon and the web page ------------------------------------


def _default_mac() -> str:
    node = uuid.getnode()
    return ":".join(f"{(node >> s) & 0xFF:02x}" for s in range(40, -8, -8))


class ProvisioningService:
    """The phone's provisioning: profile resync, the Custom CA Rule and (optionally) updates.

    ``trust()`` gives the phone's current anchors (system + custom, for https);
    ``on_trust_change()`` is called after the Custom CA Rule installed or removed its bundle
    (reload the anchors there). ``updater`` is an :class:`sippa.app.updates.Updater` or None
    (no update key configured). The daemon calls :meth:`start`/:meth:`stop` and passes
    authenticated ``NOTIFY Event: resync`` to :meth:`on_resync_notify`; the web page shows
    :meth:`status` and may call :meth:`resync_now`, :meth:`check_updates`,
    :meth:`install_update`, :meth:`export`.
    """

    def __init__(
        self,
        store: ConfigStore,
        *,
        data_dir: Path,
        trust: Callable[[], TrustStore],
        is_busy: Callable[[], bool] = lambda: False,
        mac: str | None = None,
        serial: str = "",
        ip: Callable[[], str] = lambda: "",
        software_version: str = "",
        on_trust_change: Callable[[], None] | None = None,
        updater: Updater | None = None,
        fetch: Fetcher | None = None,
    ) -> None:
        self.store = store
        self.mac = mac or _default_mac()
        self.serial = serial or self.mac.replace(":", "").upper()
        self._ip = ip
        self._version = software_version
        self.fetch = fetch or HttpFetcher(trust, user_agent=f"sippa/{software_version}")
        self.access = AccessMap(data_dir / "access.json")
        self.custom_ca = CustomCaRule(
            data_dir / "ca", fetch=self.fetch, macros=self.macros, on_change=on_trust_change
        )
        self.provisioner = Provisioner(
            store,
            macros=self.macros,
            fetch=self.fetch,
            access=self.access,
            is_busy=is_busy,
            after_resync=self._after_resync,
        )
        self.updater = updater
        self._resume: asyncio.Task[UpdateStatus] | None = None

    def macros(self) -> dict[str, str]:
        return device_macros(
            self.store,
            mac=self.mac,
            serial=self.serial,
            software_version=self._version,
            ip=self._ip(),
        )

    async def _after_resync(self) -> None:
        status = await self.custom_ca.apply_from_store(self.store)
        if status.state == "failed":
            raise RuntimeError(f"Custom_CA_Rule: {status.error}")

    async def start(self) -> None:
        await self.provisioner.start()
        if self.updater is not None:
            # an update whose restart replaced the process: health check, maybe roll back
            self._resume = asyncio.create_task(self.updater.resume(), name="update-resume")
            await self.updater.start()

    async def stop(self) -> None:
        await self.provisioner.stop()
        if self._resume is not None:
            self._resume.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resume
        if self.updater is not None:
            await self.updater.stop()

    async def on_resync_notify(self) -> bool:
        """An authenticated ``NOTIFY`` with ``Event: resync``: False when not allowed."""
        return await self.provisioner.on_resync_notify()

    async def resync_now(self) -> ResyncStatus:
        return await self.provisioner.resync()

    async def check_updates(self) -> dict[str, Any]:
        """Look for a newer signed release (installs nothing)."""
        if self.updater is not None:
            await self.updater.check_only()
        return self.status()["updates"]  # type: ignore[no-any-return]

    async def install_update(self, expect: str | None = None) -> dict[str, Any]:
        """Check, and install a newer signed release when there is one (only version
        ``expect`` when given: the one the admin saw)."""
        if self.updater is not None:
            await self.updater.update(expect=expect)
        return self.status()["updates"]  # type: ignore[no-any-return]

    def export(self, *, include_secrets: bool = False) -> bytes:
        return export_profile(self.store, include_secrets=include_secrets, access=self.access)

    def import_profile(self, data: bytes, *, key: str | None = None) -> ImportResult:
        """A profile uploaded by the admin (same checks as a resync; all or nothing)."""
        return import_profile(data, self.store, key=key, access=self.access, source="upload")

    def status(self) -> dict[str, Any]:
        """JSON-ready status for the Provisioning page and the API."""
        r = self.provisioner.status
        ca = self.custom_ca.status
        out: dict[str, Any] = {
            "resync": {
                "state": r.state,
                "last_attempt": _iso(r.last_attempt),
                "last_success": _iso(r.last_success),
                "error": r.error,
                "changed": r.changed,
                "warnings": list(r.warnings),
                "next_in": r.next_in,
                "reason": r.reason,
            },
            "custom_ca": {
                "state": ca.state,
                "error": ca.error,
                "anchors": [
                    {"subject": a.subject, "sha256": a.sha256, "not_after": a.not_after.isoformat()}
                    for a in self.custom_ca.anchors()
                ],
            },
            "updates": None,
        }
        if self.updater is not None:
            u = self.updater.status
            m = u.available
            out["updates"] = {
                "state": u.state,
                "current_version": u.current_version,
                "last_check": _iso(u.last_check),
                "error": u.error,
                "progress": list(u.progress) if u.progress else None,
                "history": list(u.history),
                "available": None
                if m is None
                else {
                    "version": m.version,
                    "released": m.released,
                    "notes": m.notes,
                    "advisories": [
                        {"id": a.id, "severity": a.severity, "summary": a.summary, "url": a.url}
                        for a in m.advisories
                    ],
                },
            }
        return out


def _iso(t: float | None) -> str | None:
    return None if t is None else dt.datetime.fromtimestamp(t, dt.UTC).isoformat()


UPDATE_KEYS_NAME = "update-keys.pem"
"""Beside the database: the Ed25519 public key(s) releases must be signed with (no file: no
automatic updates)."""


def phone_provisioning(
    store: ConfigStore,
    *,
    data_dir: Path,
    is_busy: Callable[[], bool],
    ca_files: Sequence[Path] = (),
    software_version: str = "",
    ip: Callable[[], str] = lambda: "",
    restart: Callable[[Path], Awaitable[None]] | None = None,
    health_check: Callable[[Path], Awaitable[bool]] | None = None,
    on_trust_change: Callable[[], None] | None = None,
) -> ProvisioningService:
    """The daemon's provisioning: anchors = system + ``ca_files`` + ``data_dir/ca/*.pem``.

    ``on_trust_change()`` runs after the Custom CA Rule changed the bundle in ``data_dir/ca``
    (the phone re-reads its anchors).

    Automatic updates are on only when ``data_dir/update-keys.pem`` holds the release key(s);
    releases go to ``data_dir/releases`` (``current`` symlink). Without ``restart`` a switched
    release runs from the next start of the service.
    """
    from sippa.app.updates import (  # noqa: PLC0415 - updates imports this module
        Updater,
        command_health_check,
        load_public_keys,
    )

    def trust() -> TrustStore:
        custom = sorted((data_dir / "ca").glob("*.pem")) if (data_dir / "ca").is_dir() else []
        return TrustStore.from_files([*ca_files, *custom], system=True)

    def minimum_version() -> ssl.TLSVersion:  # TLS_Client_Min_Version
        if store.get("tls_client_min_version") == "TLS 1.3":
            return ssl.TLSVersion.TLSv1_3
        return ssl.TLSVersion.TLSv1_2

    fetch = HttpFetcher(
        trust, user_agent=f"sippa/{software_version}", minimum_version=minimum_version
    )
    updater = None
    keys_file = data_dir / UPDATE_KEYS_NAME
    if keys_file.is_file():
        keys = load_public_keys(keys_file)
        if keys:
            updater = Updater(
                store,
                root=data_dir / "releases",
                public_keys=keys,
                current_version=software_version or "0",
                fetch=fetch,
                health_check=health_check
                or command_health_check(["{env}/bin/python", "-c", "import sippa.app.phone"]),
                restart=restart,
            )
    return ProvisioningService(
        store,
        data_dir=data_dir,
        trust=trust,
        is_busy=is_busy,
        ip=ip,
        software_version=software_version,
        updater=updater,
        fetch=fetch,
        on_trust_change=on_trust_change,
    )
