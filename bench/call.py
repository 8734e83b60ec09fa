"""The phone against baresip, measured in one run on loopback: call setup, call CPU, idle memory.

1. **Call setup** (INVITE to 200 OK, TLS to Kamailio): sippa's line (registered over TLS)
   calls ``bob`` (baresip, registered over UDP, auto answer) through Kamailio, against a
   second baresip (``carol``, registered over TLS) calling the same ``bob`` the same way.
   sippa: from ``Phone.dial()`` to the call being active (the 2xx arrived, ACK sent, media
   started); baresip: from the ``dial`` command to its ``CALL_ESTABLISHED`` event (both over
   baresip's control socket, so baresip's number includes a little of that too). Median of
   ``--calls`` calls each, interleaved. Kamailio challenges with MD5 only because baresip 1.0
   cannot answer a 401 that carries a SHA-256 challenge.
2. **CPU of one SRTP call** lasting ``--seconds`` (default 60): sippa calling ``bob`` directly
   over TLS with SRTP (PCMU, 20 ms), its process CPU time during the call, against carol's
   (baresip's) CPU time for the same call to ``bob``, read from /proc.
3. **Idle resident memory**: ``sippa serve`` (echo service included) and a baresip, each
   after settling for two seconds; VmRSS from /proc.

Targets from the issue: setup at most 1.2 x baresip, CPU at most 2 x baresip, idle RSS at most
60 MB. Usage: ``.venv/bin/python bench/call.py [--seconds 60] [--calls 10]``. Needs the Debian
packages kamailio, kamailio-tls-modules and baresip-core (``./scripts/test`` installs them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.peers.baresip import Baresip  # noqa: E402
from tests.peers.certs import make_lab_certs  # noqa: E402
from tests.peers.kamailio import Kamailio, KamailioSettings  # noqa: E402
from tests.peers.process import LOOPBACK, free_port, free_port_block  # noqa: E402

from sippa.app.call import CallState  # noqa: E402
from sippa.app.phone import Phone, PhoneOptions  # noqa: E402
from sippa.app.store import ConfigStore  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


class Account(Baresip):
    """baresip with a given account line (and, for TLS, the lab CA as its trust anchor)."""

    def __init__(self, workdir: Path, account: str, cafile: Path | None = None, **kw: Any
                 ) -> None:
        rtp = free_port_block(20)
        super().__init__(workdir, sip_port=free_port(also_udp=True), ctrl_port=free_port(),
                         rtp_min=rtp, rtp_max=rtp + 19, siptrace=False, **kw)
        self.account = account
        self.cafile = cafile

    def write_config(self) -> None:
        super().write_config()
        (self.workdir / "accounts").write_text(self.account + "\n")
        if self.cafile is not None:
            config = (self.workdir / "config").read_text()
            (self.workdir / "config").write_text(config + f"sip_cafile\t\t{self.cafile}\n")


class Ctrl:
    """One persistent ctrl_tcp connection: commands and the events baresip reports on it."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((LOOPBACK, port), timeout=10)
        self.buf = b""

    def send(self, command: str, params: str = "") -> None:
        body = json.dumps({"command": command, "params": params, "token": "b"}).encode()
        self.sock.sendall(f"{len(body)}:".encode() + body + b",")

    def wait_event(self, kind: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while b":" in self.buf:
                size_text, _, rest = self.buf.partition(b":")
                size = int(size_text)
                if len(rest) < size + 1:
                    break
                message, self.buf = json.loads(rest[:size]), rest[size + 1:]
                if message.get("event") and message.get("type") == kind:
                    return dict(message)
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        raise TimeoutError(f"no {kind} from baresip")

    def close(self) -> None:
        self.sock.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    m = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1)) / 1024 if m else float("nan")


def sippa_phone(kam: Kamailio, ca: Path, *, registrar: bool = True) -> Phone:
    store = ConfigStore(":memory:", lines=1)
    settings: dict[tuple[str, int], Any] = {
        ("line_enable", 1): True, ("user_id", 1): "alice", ("password", 1): "alice-secret",
        ("sip_transport", 1): "TLS", ("secure_call_option", 1): "Mandatory",
        ("preferred_codec", 1): "G711u", ("use_pref_codec_only", 1): True,
        ("second_preferred_codec", 1): "Unspecified", ("third_preferred_codec", 1): "Unspecified",
    }
    if registrar:
        settings.update({
            ("proxy", 1): "example.test", ("use_outbound_proxy", 1): True,
            ("outbound_proxy", 1): f"{LOOPBACK}:{kam.tls_port}",
        })
    store.update(settings)
    return Phone(store, PhoneOptions(system_ca=False, ca_files=[ca], tls_port=None,
                                     history=False))


async def sippa_setups(phone: Phone, target: str, calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call = await phone.dial(target)
        await phone.wait_call(call.id, lambda c: c.state is CallState.ACTIVE or c.is_over, 10)
        times.append(time.perf_counter() - start)
        if call.state is not CallState.ACTIVE:
            raise RuntimeError(f"sippa call failed: {call.end_reason}")
        await phone.hangup(call.id)
        await phone.wait_call(call.id, lambda c: c.is_over, 5)
        await asyncio.sleep(0.2)
    return times


def baresip_setup(ctrl: Ctrl, target: str) -> float:
    start = time.perf_counter()
    ctrl.send("dial", target)
    ctrl.wait_event("CALL_ESTABLISHED", 10)
    took = time.perf_counter() - start
    ctrl.send("hangup")
    ctrl.wait_event("CALL_CLOSED", 5)
    time.sleep(0.2)
    return took


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the CPU call")
    parser.add_argument("--calls", type=int, default=10, help="call setups per side")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sippa-bench-call-"))
    certs = make_lab_certs(work / "certs")
    kam = Kamailio(work / "kamailio", certs, KamailioSettings(auth_mode="md5")).start()
    bob = Account(
        work / "bob",
        "<sip:bob@example.test>;auth_pass=bob-secret;"
        f'outbound="sip:{LOOPBACK}:{kam.sip_port};transport=udp";regint=300;'
        "answermode=auto;mediaenc=srtp-mand;audio_codecs=PCMU",
        user="bob", codecs="PCMU",
    )
    carol = Account(
        work / "carol",
        "<sip:carol@example.test;transport=tls>;auth_pass=carol-secret;"
        f'outbound="sip:{LOOPBACK}:{kam.tls_port};transport=tls";regint=300;'
        "answermode=auto;mediaenc=srtp-mand;audio_codecs=PCMU",
        cafile=certs.ca.cert, user="carol", codecs="PCMU",
    )
    phone: Phone | None = None
    serve: subprocess.Popen[bytes] | None = None
    try:
        bob.start()
        carol.start()
        time.sleep(1.5)  # both register (regint) before the first call
        phone = sippa_phone(kam, certs.ca.cert)
        await phone.start()
        if not await phone.wait_registered(1, 10):
            raise RuntimeError(f"sippa did not register: {phone.status()['lines'][0]}")
        ctrl = Ctrl(carol.ctrl_port)

        # 1. call setup through Kamailio, interleaved
        ours: list[float] = []
        theirs: list[float] = []
        await sippa_setups(phone, "bob", 1)  # warm-up
        baresip_setup(ctrl, "sip:bob@example.test")
        for _ in range(args.calls):
            ours += await sippa_setups(phone, "bob", 1)
            theirs.append(await asyncio.to_thread(baresip_setup, ctrl, "sip:bob@example.test"))
        s_med, b_med = statistics.median(ours), statistics.median(theirs)
        print(f"call setup via Kamailio/TLS (median of {args.calls}): sippa {s_med * 1000:.1f} ms,"
              f" baresip {b_med * 1000:.1f} ms, ratio {s_med / b_med:.2f} (target <= 1.2)")

        # 2. CPU of one SRTP call of --seconds (each side calls bob through Kamailio)
        before = time.process_time()
        call = await phone.dial("bob")
        await phone.wait_call(call.id, lambda c: c.state is CallState.ACTIVE, 10)
        t0 = time.process_time()
        await asyncio.sleep(args.seconds)
        ours_cpu = time.process_time() - t0
        suite = call.security().srtp_suite
        await phone.hangup(call.id)
        await phone.wait_call(call.id, lambda c: c.is_over, 5)
        del before
        i0 = cpu_seconds(carol.process.pid)  # type: ignore[union-attr]
        await asyncio.sleep(5.0)
        idle_rate = (cpu_seconds(carol.process.pid) - i0) / 5.0  # type: ignore[union-attr]
        ctrl.send("dial", "sip:bob@example.test")
        ctrl.wait_event("CALL_ESTABLISHED", 10)
        c0 = cpu_seconds(carol.process.pid)  # type: ignore[union-attr]
        await asyncio.sleep(args.seconds)
        theirs_cpu = cpu_seconds(carol.process.pid) - c0  # type: ignore[union-attr]
        ctrl.send("hangup")
        ctrl.wait_event("CALL_CLOSED", 5)
        ratio = ours_cpu / theirs_cpu if theirs_cpu > 0 else float("inf")
        print(f"CPU of one {args.seconds:g} s SRTP call ({suite}, PCMU): sippa "
              f"{ours_cpu:.2f} s, baresip {theirs_cpu:.2f} s, ratio {ratio:.2f} (target <= 2)")
        print(f"  baresip idle: {idle_rate:.2f} CPU-s/s; its call CPU includes the harness's "
              "audio player (ALSA 'null' device, which does not pace), so read the ratio with "
              "care")
        ctrl.close()
        await phone.stop()
        phone = None

        # 3. idle resident memory: `sippa serve` against an idle baresip
        env = dict(os.environ, XDG_DATA_HOME=str(work / "xdg"))
        serve_help = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "sippa"), "serve", "--help"],
            capture_output=True, text=True, check=False,
        ).stdout
        serve = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "sippa"), "serve", "--db", str(work / "serve.db"),
             *(["--no-web"] if "--no-web" in serve_help else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )
        sock = work / "sippa.sock"
        deadline = time.monotonic() + 20
        while not sock.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.0)
        ours_rss = rss_mb(serve.pid)
        theirs_rss = rss_mb(bob.process.pid)  # type: ignore[union-attr]
        print(f"idle RSS: sippa serve --no-web {ours_rss:.1f} MB (target <= 60), baresip "
              f"{theirs_rss:.1f} MB, ratio {ours_rss / theirs_rss:.1f}")
    finally:
        if serve is not None:
            serve.terminate()
            try:
                serve.wait(10)
            except subprocess.TimeoutExpired:
                serve.kill()
        if phone is not None:
            await phone.stop()
        carol.stop()
        bob.stop()
        kam.stop()


if __name__ == "__main__":
    asyncio.run(main())
