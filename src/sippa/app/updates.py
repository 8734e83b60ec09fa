"""Upgrade Rule: signed automatic updates, installed beside the running environment.

``Upgrade_Rule`` (rule syntax of :mod:`sippa.app.rules`) names a release MANIFEST::

    {"manifest": {"name": "sippa", "version": "0.2.0", "wheel": "sippa-0.2.0-py3-none-any.whl",
                  "sha256": "<hex of the wheel>", "notes": "...", "released": "2026-11-27",
                  "advisories": [{"id": "SIPPA-2026-01", "severity": "high", "summary": "..."}]},
     "signature": "<base64 Ed25519 signature of canonical_bytes(manifest)>"}

- The signature is checked against the public key(s) configured in the phone (a constructor
  argument: the deployment's key file), over :func:`canonical_bytes` (sorted keys, no spaces,
  ASCII). An unsigned, badly signed or malformed manifest is refused, whatever the transport.
- ``wheel`` may be relative to the manifest URL. The download is refused beyond
  :data:`MAX_WHEEL_BYTES`, reports progress and must match ``sha256`` (constant-time compare).
- Only a version NEWER than the running one and not below ``Downgrade_Rev_Limit`` is installed
  (a replayed old manifest cannot roll the phone back); a version that failed its health check
  is remembered and not tried again.
- Install: a FRESH virtual environment ``root/envs/<version>-<n>`` (``python -m venv
  --without-pip``), the running environment's site-packages added after its own through a
  ``.pth`` file (the dependencies, offline), then ``pip install --no-index --no-deps`` of the
  verified wheel (pip of the running environment, ``--python`` the new one): no network beyond
  the two URLs.
- Switch: the symlink ``root/current`` is replaced atomically (``os.replace`` of a new
  symlink); ``restart(env)`` then ``health_check(env)`` (lines re-register; in tests a command
  that must exit 0). A failed check switches back to the previous environment and restarts it.
- Release notes and security advisories of the last manifest are kept for the web page and
  logged (advisories at WARNING).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import logging
import os
import random
import re
import sys
import sysconfig
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from packaging.version import InvalidVersion, Version

from sippa.app.files import atomic_write
from sippa.app.provisioning import Clock
from sippa.app.rules import RuleError, parse_rule
from sippa.app.store import ConfigStore
from sippa.net.http import Fetcher, FetchError, Request

__all__ = [
    "MAX_MANIFEST_BYTES",
    "MAX_WHEEL_BYTES",
    "Advisory",
    "Environments",
    "Manifest",
    "UpdateError",
    "UpdateStatus",
    "Updater",
    "canonical_bytes",
    "command_health_check",
    "install_wheel",
    "lines_health_check",
    "load_public_key",
    "load_public_keys",
    "reexec_restart",
    "sign_manifest",
    "verify_manifest",
]

log = logging.getLogger(__name__)

MAX_MANIFEST_BYTES = 64 * 1024
MAX_WHEEL_BYTES = 64 * 1024 * 1024
MAX_NOTES = 32 * 1024
INSTALL_TIMEOUT = 300.0
_WHEEL_NAME = re.compile(r"[A-Za-z0-9_.]+-[A-Za-z0-9_.!+]+(-[0-9][^-]*)?-[^-]+-[^-]+-[^-]+\.whl")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class UpdateError(Exception):
    """An update that was refused or failed (the message says why)."""


# -- the manifest ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Advisory:
    """A security advisory carried by a release."""

    id: str
    severity: str
    summary: str
    url: str = ""


@dataclass(frozen=True, slots=True)
class Manifest:
    """A verified release manifest."""

    name: str
    version: str
    wheel_url: str
    sha256: bytes
    notes: str = ""
    released: str = ""
    advisories: tuple[Advisory, ...] = ()


def canonical_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The signed bytes: JSON with sorted keys, no whitespace, ASCII only."""
    return json.dumps(
        manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode()


def sign_manifest(manifest: Mapping[str, Any], key: Ed25519PrivateKey) -> bytes:
    """The manifest file a release publishes (for release tooling and tests)."""
    signature = base64.b64encode(key.sign(canonical_bytes(manifest))).decode()
    return json.dumps({"manifest": manifest, "signature": signature}, indent=1).encode()


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM, or 32 raw bytes as base64 or hex text."""
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(text)
        if not isinstance(key, Ed25519PublicKey):
            raise UpdateError("the update key is not an Ed25519 public key")
        return key
    raw: bytes | None = None
    with contextlib.suppress(ValueError):
        raw = bytes.fromhex(text.decode())
    if raw is None:
        with contextlib.suppress(binascii.Error, ValueError):
            raw = base64.b64decode(text, validate=True)
    if raw is None or len(raw) != 32:
        raise UpdateError("the update key is neither PEM nor 32 bytes in hex or base64")
    return Ed25519PublicKey.from_public_bytes(raw)


def load_public_keys(path: Path) -> list[Ed25519PublicKey]:
    """Every Ed25519 key of a key file: PEM blocks, or one hex/base64 key per line."""
    data = path.read_bytes()
    if b"-----BEGIN" in data:
        blocks = re.findall(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", data, re.S)
        return [load_public_key(b) for b in blocks]
    lines = [line.strip() for line in data.splitlines()]
    return [load_public_key(line) for line in lines if line and not line.startswith(b"#")]


def _text(obj: Mapping[str, Any], name: str, *, limit: int = 1024, required: bool = True) -> str:
    value = obj.get(name, None if required else "")
    if not isinstance(value, str) or (required and not value):
        raise UpdateError(f"manifest: {name!r} must be a non-empty string")
    if len(value) > limit:
        raise UpdateError(f"manifest: {name!r} is longer than {limit} characters")
    return value


def verify_manifest(
    data: bytes, keys: Sequence[Ed25519PublicKey], *, base_url: str = ""
) -> Manifest:
    """Check the signature, then the fields; raise :class:`UpdateError`."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise UpdateError(f"the manifest is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        outer = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise UpdateError(f"the manifest is not JSON: {exc}") from None
    if not isinstance(outer, dict) or not isinstance(outer.get("manifest"), dict):
        raise UpdateError("the manifest has no 'manifest' object")
    signature_text = outer.get("signature")
    if not isinstance(signature_text, str):
        raise UpdateError("the manifest is not signed")
    try:
        signature = base64.b64decode(signature_text, validate=True)
    except (binascii.Error, ValueError):
        raise UpdateError("the manifest's signature is not base64") from None
    body: dict[str, Any] = outer["manifest"]
    try:
        signed = canonical_bytes(body)
    except ValueError as exc:
        raise UpdateError(f"the manifest cannot be canonicalised: {exc}") from None
    for key in keys:
        try:
            key.verify(signature, signed)
            break
        except InvalidSignature:
            continue
    else:
        raise UpdateError("the manifest's signature does not verify with the update key")
    # signed: now check the fields
    version = _text(body, "version", limit=64)
    try:
        Version(version)
    except InvalidVersion:
        raise UpdateError(f"manifest: {version!r} is not a version") from None
    digest = _text(body, "sha256", limit=64).lower()
    if not _HEX64.fullmatch(digest):
        raise UpdateError("manifest: 'sha256' must be 64 hex digits")
    wheel = urljoin(base_url, _text(body, "wheel", limit=2048))
    if urlsplit(wheel).scheme not in ("http", "https"):
        raise UpdateError("manifest: the wheel URL must be http or https")
    if not _WHEEL_NAME.fullmatch(wheel.rsplit("/", 1)[-1]):
        raise UpdateError("manifest: the wheel URL must end in a wheel file name")
    raw_advisories = body.get("advisories", [])
    if not isinstance(raw_advisories, list) or len(raw_advisories) > 100:
        raise UpdateError("manifest: 'advisories' must be a list")
    advisories = []
    for item in raw_advisories:
        if not isinstance(item, dict):
            raise UpdateError("manifest: an advisory must be an object")
        advisories.append(
            Advisory(
                id=_text(item, "id", limit=64),
                severity=_text(item, "severity", limit=32),
                summary=_text(item, "summary", limit=2048),
                url=_text(item, "url", limit=2048, required=False),
            )
        )
    return Manifest(
        name=_text(body, "name", limit=100),
        version=version,
        wheel_url=wheel,
        sha256=bytes.fromhex(digest),
        notes=_text(body, "notes", limit=MAX_NOTES, required=False),
        released=_text(body, "released", limit=64, required=False),
        advisories=tuple(advisories),
    )


# -- environments ----------------------------------------------------------------------------


class Environments:
    """``root/envs/*`` virtual environments; ``root/current`` and ``root/previous`` symlinks."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.envs = root / "envs"

    def _link(self, name: str) -> Path | None:
        link = self.root / name
        return link.resolve() if link.is_symlink() and link.resolve().is_dir() else None

    def current(self) -> Path | None:
        return self._link("current")

    def previous(self) -> Path | None:
        return self._link("previous")

    def new_env_path(self, version: str) -> Path:
        self.envs.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9.+_-]", "_", version)
        for n in range(1, 10000):
            path = self.envs / f"{safe}-{n}"
            if not path.exists():
                return path
        raise UpdateError("too many environments")

    def _point(self, name: str, target: Path | None) -> None:
        link = self.root / name
        if target is None:
            link.unlink(missing_ok=True)
            return
        tmp = self.root / f".{name}.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.path.relpath(target, self.root))
        os.replace(tmp, link)  # atomic: the link is old or new, never missing

    def switch(self, target: Path) -> Path | None:
        """Point ``current`` at ``target``; the old one becomes ``previous``. Returns it."""
        old = self.current()
        if old is not None and old != target:
            self._point("previous", old)
        self._point("current", target)
        return old

    def switch_back(self, old: Path | None) -> None:
        """Undo :meth:`switch` (``old`` None: there was no ``current``)."""
        self._point("current", old)


def _site_packages(env: Path) -> Path:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return env / "lib" / version / "site-packages"


def dependency_paths() -> list[str]:
    """The running environment's site-packages directories (the dependencies to share)."""
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    extra = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    return [p for p in dict.fromkeys([*ours, *extra]) if p and Path(p).is_dir()]


async def _run(argv: Sequence[str], timeout: float) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -1, f"{argv[0]} timed out after {timeout:.0f} s"
    except asyncio.CancelledError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode if proc.returncode is not None else -1, out.decode(errors="replace")


async def install_wheel(
    env: Path, wheel: Path, *, dependencies: Sequence[str] | None = None
) -> None:
    """Make a fresh venv at ``env`` sharing ``dependencies`` and install ``wheel`` offline."""
    code, out = await _run([sys.executable, "-m", "venv", "--without-pip", str(env)], 120)
    if code:
        raise UpdateError(f"cannot create the environment: {out.strip()[-500:]}")
    site = _site_packages(env)
    deps = dependency_paths() if dependencies is None else list(dependencies)
    # after the env's own site-packages: the new release wins over the running one's copy
    (site / "zz_sippa_dependencies.pth").write_text("".join(f"{p}\n" for p in deps))
    code, out = await _run(
        [
            sys.executable, "-m", "pip", "--python", str(env / "bin" / "python"), "install",
            "--no-index", "--no-deps", "--no-cache-dir", "--quiet", str(wheel),
        ],
        INSTALL_TIMEOUT,
    )  # fmt: skip
    if code:
        raise UpdateError(f"pip could not install {wheel.name}: {out.strip()[-800:]}")


def command_health_check(
    argv: Sequence[str], *, timeout: float = 60.0
) -> Callable[[Path], Awaitable[bool]]:
    """A health check running ``argv`` (``{env}`` is replaced by the environment); exit 0 = ok."""

    async def check(env: Path) -> bool:
        code, out = await _run([a.replace("{env}", str(env)) for a in argv], timeout)
        if code:
            log.warning("health check failed (exit %s): %s", code, out.strip()[-500:])
        return code == 0

    return check


def lines_health_check(
    lines: Callable[[], Sequence[Mapping[str, Any]]],
    *,
    timeout: float = 90.0,
    poll: float = 1.0,
) -> Callable[[Path], Awaitable[bool]]:
    """Healthy when every line that registers is registered again within ``timeout``.

    ``lines()`` gives the phone's line dicts (``registers``, ``registered``), as
    :meth:`sippa.app.phone.Phone.status` shows them.
    """

    async def check(env: Path) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            waiting = [
                ln.get("line") for ln in lines() if ln.get("registers") and not ln.get("registered")
            ]
            if not waiting:
                return True
            if loop.time() >= deadline:
                log.warning("health check: lines %s did not register in %.0f s", waiting, timeout)
                return False
            await asyncio.sleep(poll)

    return check


def reexec_restart(args: Sequence[str] | None = None) -> Callable[[Path], Awaitable[None]]:
    """Restart by replacing this process with ``<env>/bin/python -m sippa <args>``.

    ``args`` defaults to this process's arguments. The new process calls
    :meth:`Updater.resume` to run the health check (and roll back if needed).
    """

    async def restart(env: Path) -> None:
        python = env / "bin" / "python"
        argv = [str(python), "-m", "sippa", *(sys.argv[1:] if args is None else args)]
        log.warning("restarting into %s", env)
        logging.shutdown()
        os.execv(python, argv)  # noqa: S606 - our own interpreter, fixed arguments

    return restart


# -- the updater -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UpdateStatus:
    """What the web page shows about updates."""

    state: str = "idle"
    """idle, checking, up-to-date, available, downloading, installing, installed, rolled-back,
    refused, failed."""
    current_version: str = ""
    available: Manifest | None = None
    """The last verified manifest (its notes and advisories)."""
    last_check: float | None = None
    error: str = ""
    progress: tuple[int, int | None] | None = None
    """(bytes, total) while downloading."""
    history: tuple[str, ...] = ()


async def _no_restart(env: Path) -> None:
    log.info("switched to %s (restart not configured)", env)


async def _healthy(env: Path) -> bool:
    return True


@dataclass
class _State:
    bad: list[str] = field(default_factory=list)
    installed: list[str] = field(default_factory=list)
    pending: dict[str, str | None] | None = None
    """Switched to but not yet found healthy: version, env, previous (survives a re-exec)."""


class Updater:
    """Checks ``Upgrade_Rule`` on a schedule and installs verified newer releases."""

    def __init__(
        self,
        store: ConfigStore,
        *,
        root: Path,
        public_keys: Sequence[Ed25519PublicKey],
        current_version: str,
        fetch: Fetcher,
        package: str = "sippa",
        health_check: Callable[[Path], Awaitable[bool]] = _healthy,
        restart: Callable[[Path], Awaitable[None]] | None = None,
        installer: Callable[[Path, Path], Awaitable[None]] = install_wheel,
        macros: Callable[[], Mapping[str, str]] = dict,
        check_interval: float = 86400.0,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if not public_keys:
            raise ValueError("an updater needs at least one public key")
        self.store = store
        self.envs = Environments(root)
        self.root = root
        self._keys = list(public_keys)
        self._fetch = fetch
        self.package = package
        self._health = health_check
        self._restart = restart or _no_restart
        self._install = installer
        self._macros = macros
        self.check_interval = check_interval
        self._clock = clock
        self._rng = rng or random.SystemRandom()
        self._wall = wall
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.status = UpdateStatus(current_version=current_version)
        self._state = self._load_state()

    # -- persistent state ----------------------------------------------------------------

    @property
    def _state_path(self) -> Path:
        return self.root / "updates.json"

    def _load_state(self) -> _State:
        try:
            raw = json.loads(self._state_path.read_text())
            pending = raw.get("pending")
            return _State(
                bad=[str(v) for v in raw["bad"]],
                installed=[str(v) for v in raw["installed"]],
                pending=(
                    {str(k): None if v is None else str(v) for k, v in pending.items()}
                    if isinstance(pending, dict)
                    else None
                ),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return _State()

    def _save_state(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        state = {
            "bad": self._state.bad,
            "installed": self._state.installed,
            "pending": self._state.pending,
        }
        atomic_write(self._state_path, json.dumps(state).encode())

    def _set(self, **changes: Any) -> None:
        self.status = replace(self.status, **changes)

    def _note(self, event: str) -> None:
        self._set(history=(*self.status.history, event)[-20:])
        log.info("update: %s", event)

    # -- checking ------------------------------------------------------------------------

    async def check(self) -> Manifest | None:
        """Fetch and verify the manifest; return it when it should be installed."""
        rule_text = str(self.store.get("upgrade_rule"))
        rule = parse_rule(rule_text, self._macros())
        if rule is None:
            self._set(state="idle", error="", last_check=self._wall())
            return None
        self._set(state="checking", error="")
        data = await self._fetch(
            Request(rule.url, rule.username, rule.password, max_bytes=MAX_MANIFEST_BYTES)
        )
        if rule.sha256 is not None and hashlib.sha256(data).digest() != rule.sha256:
            raise UpdateError("the manifest does not match the rule's --sha256")
        manifest = verify_manifest(data, self._keys, base_url=rule.url)
        if manifest.name != self.package:
            raise UpdateError(f"the manifest is for {manifest.name!r}, not {self.package!r}")
        self._set(available=manifest, last_check=self._wall())
        self._announce(manifest)
        return manifest if self._wanted(manifest) else None

    def _announce(self, m: Manifest) -> None:
        log.info("release %s %s: %s", m.name, m.version, m.notes.splitlines()[0] if m.notes else "")
        for a in m.advisories:
            log.warning(
                "security advisory %s (%s) for %s %s: %s",
                a.id,
                a.severity,
                m.name,
                m.version,
                a.summary,
            )

    def _wanted(self, m: Manifest) -> bool:
        new, current = Version(m.version), Version(self.status.current_version)
        if new <= current:
            self._set(state="up-to-date")
            return False
        limit = str(self.store.get("downgrade_rev_limit")).strip()
        if limit:
            try:
                if new < Version(limit):
                    self._set(
                        state="refused", error=f"{m.version} is below Downgrade_Rev_Limit {limit}"
                    )
                    return False
            except InvalidVersion:
                log.warning("Downgrade_Rev_Limit %r is not a version: ignored", limit)
        if m.version in self._state.bad:
            self._set(state="refused", error=f"{m.version} failed its health check before")
            return False
        self._set(state="available")
        return True

    # -- installing ----------------------------------------------------------------------

    async def check_only(self) -> UpdateStatus:
        """Fetch and verify the manifest and say what is available, installing nothing (the
        admin's "Check for updates"). Never raises."""
        return await self._check_then(install=False)

    async def update(self, *, expect: str | None = None) -> UpdateStatus:
        """Check and, when a verified newer release is there, install it. Never raises.

        With ``expect`` (the version an admin was shown), a manifest that names another
        version by now is not installed: the admin is shown the new one instead.
        """
        return await self._check_then(install=True, expect=expect)

    async def _check_then(self, *, install: bool, expect: str | None = None) -> UpdateStatus:
        async with self._lock:
            try:
                manifest = await self.check()
                if manifest is not None and expect is not None and manifest.version != expect:
                    self._set(error=f"the release changed: {manifest.version} is available "
                                    f"now, not {expect}; nothing was installed")
                elif manifest is not None and install:
                    await self._install_release(manifest)
            except (UpdateError, RuleError, FetchError) as exc:
                state = "failed" if isinstance(exc, FetchError) else "refused"
                self._set(state=state, error=str(exc), progress=None)
                log.warning("update %s: %s", state, exc)
            except Exception as exc:
                log.exception("update failed unexpectedly")
                self._set(state="failed", error=f"internal error: {type(exc).__name__}")
            return self.status

    def _progress(self, done: int, total: int | None) -> None:
        self._set(progress=(done, total))

    async def _install_release(self, m: Manifest) -> None:
        self._set(state="downloading", progress=(0, None))
        data = await self._fetch(
            Request(m.wheel_url, max_bytes=MAX_WHEEL_BYTES, progress=self._progress)
        )
        if not hmac.compare_digest(hashlib.sha256(data).digest(), m.sha256):
            raise UpdateError(f"the wheel of {m.version} does not match the signed SHA-256")
        self._set(state="installing")
        env = self.envs.new_env_path(m.version)
        downloads = self.root / "downloads"
        downloads.mkdir(parents=True, exist_ok=True)
        wheel = downloads / m.wheel_url.rsplit("/", 1)[-1]
        wheel.write_bytes(data)
        try:
            await self._install(env, wheel)
        finally:
            wheel.unlink(missing_ok=True)
        old = self.envs.switch(env)
        self._state.pending = {
            "version": m.version,
            "env": str(env),
            "previous": None if old is None else str(old),
            "fallback": sys.prefix,  # what runs now, when there was no current yet
        }
        self._save_state()  # before the restart: a re-exec'd phone finishes the job
        self._note(f"switched to {m.version} ({env.name})")
        await self._restart(env)
        await self._finish(m.version, env, old, Path(sys.prefix))

    async def _finish(self, version: str, env: Path, old: Path | None, fallback: Path) -> None:
        """Health check of a switched-to release; roll back when it fails."""
        healthy = await self._health(env)
        self._state.pending = None
        if healthy:
            self._state.installed.append(version)
            self._save_state()
            self._set(state="installed", current_version=version, error="", progress=None)
            self._note(f"{version} is healthy")
            return
        # the new release is not healthy: back to where we were
        self.envs.switch_back(old)
        self._state.bad.append(version)
        self._save_state()
        await self._restart(old if old is not None else fallback)
        self._set(state="rolled-back", error=f"{version} failed its health check", progress=None)
        self._note(f"{version} failed its health check: rolled back")

    async def resume(self) -> UpdateStatus:
        """At start: finish an update whose restart replaced the process (health check now).

        A phone that restarts by re-executing itself from ``root/current`` calls this once it
        is up; a release that is not healthy is rolled back (and ``restart`` runs the old one).
        """
        pending = self._state.pending
        if not pending or not pending.get("env") or not pending.get("version"):
            return self.status
        env = Path(str(pending["env"]))
        previous = pending.get("previous")
        if self.envs.current() != env.resolve():
            self._state.pending = None  # someone switched by hand: nothing to confirm
            self._save_state()
            return self.status
        async with self._lock:
            await self._finish(
                str(pending["version"]),
                env,
                None if previous is None else Path(previous),
                Path(pending.get("fallback") or sys.prefix),
            )
        return self.status

    # -- schedule ------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="updates")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _sleep(self, seconds: float) -> None:
        if self._clock is not None:
            await self._clock.sleep(seconds)
        else:
            await asyncio.sleep(seconds)

    async def _run(self) -> None:
        while True:
            # a random tenth of the interval spreads a fleet's checks
            await self._sleep(self.check_interval * (1 + self._rng.uniform(0, 0.1)))
            if bool(self.store.get("upgrade_enable")):
                await self.update()
