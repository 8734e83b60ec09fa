"""The ``sippa`` command line."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sippa import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sippa",
        description="sippa: a secure SIP phone (SIP over TLS, SDES-SRTP, HTTPS administration).",
    )
    parser.add_argument("--version", action="version", version=f"sippa {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_register(commands)
    _add_phone_commands(commands)
    return parser


def _add_register(commands: Any) -> None:
    p = commands.add_parser(
        "register",
        help="register one line with its registrar and report how (TLS, digest)",
        description="Register AOR once, print the outcome (transport, TLS version, cipher, "
        "group, server certificate, digest algorithm), then un-register.",
    )
    p.add_argument("aor", help="address of record, e.g. sips:alice@example.test")
    p.add_argument("--password", required=True)
    p.add_argument("--auth-id", help="authentication user name (default: the AoR's user)")
    p.add_argument("--proxy", help="registrar/proxy URI or host[:port] (default: AoR domain)")
    p.add_argument("--transport", choices=["udp", "tcp", "tls", "auto"], default="auto")
    p.add_argument("--dns", metavar="IP[:PORT]", help="DNS server (default: the system's)")
    p.add_argument("--ca", action="append", default=[], metavar="PEM", help="trusted CA file")
    p.add_argument("--no-system-ca", action="store_true", help="trust only the --ca files")
    p.add_argument("--cert", metavar="PEM", help="client certificate (chain, key unless --key)")
    p.add_argument("--key", metavar="PEM", help="private key of --cert")
    p.add_argument("--no-verify", action="store_true",
                   help="do not validate the server certificate (the line is INSECURE)")
    p.add_argument("--digest-order", choices=["strongest", "server"], default="strongest")
    p.add_argument("--no-md5", action="store_true", help="refuse MD5 digest challenges")
    p.add_argument("--expires", type=int, default=3600)
    p.add_argument("--timeout", type=float, default=20.0, help="seconds to wait (default 20)")
    p.add_argument("--keep", action="store_true", help="do not un-register afterwards")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    p.set_defaults(func=_run_register)


def _run_register(args: argparse.Namespace) -> int:
    # imported here so that the other commands do not load the network stack
    import asyncio  # noqa: PLC0415
    import json  # noqa: PLC0415

    from sippa.app.register import RegisterOptions, register_once  # noqa: PLC0415

    options = RegisterOptions(
        aor=args.aor, password=args.password, auth_id=args.auth_id, proxy=args.proxy,
        transport=args.transport, dns=args.dns, ca_files=list(args.ca),
        system_ca=not args.no_system_ca, verify=not args.no_verify,
        digest_order=args.digest_order, allow_md5=not args.no_md5, expires=args.expires,
        timeout=args.timeout, unregister=not args.keep, client_cert=args.cert,
        client_key=args.key,
    )
    result = asyncio.run(register_once(options))
    report = result.as_dict()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        tls = report["tls"] or {}
        print("registered" if result.ok else f"FAILED: {report['reason']}")
        for label, value in (
            ("transport", report["transport"]), ("registrar", report["target"]),
            ("local", report["local"]), ("expires", report["expires"]),
            ("TLS version", tls.get("version")), ("cipher", tls.get("cipher")),
            ("group", tls.get("group")), ("server certificate", tls.get("peer_subject")),
            ("checked name", tls.get("server_name")),
            ("digest algorithm", report["digest_algorithm"]),
            ("registrar says", report["server_auth_report"]),
        ):
            if value is not None:
                print(f"  {label}: {value}")
        if tls and not tls.get("verified"):
            print("  WARNING: server certificate NOT validated (insecure line)")
    return 0 if result.ok else 1


# --- the phone: serve, call, answer, hangup, hold, resume, dtmf, status, config, history -----
EXIT_FAILED = 1
EXIT_NO_DAEMON = 3


def _phone_parent() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", type=Path, help="settings database (default: user data dir)")
    common.add_argument("--socket", type=Path, help="control socket (default: beside the db)")
    common.add_argument("--json", action="store_true", help="print JSON")
    return common


def _add_phone_commands(commands: Any) -> None:
    common = _phone_parent()
    p = commands.add_parser("serve", parents=[common], help="run the phone (with the echo service)",
                            description="Run the phone from its settings database. With no "
                            "configuration it still offers a loopback echo service over TLS and "
                            "SRTP: try `sippa call echo`.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--sip-port", type=int, default=0, help="UDP/TCP SIP port (0: any)")
    p.add_argument("--tls-port", type=int, default=0, help="TLS SIP port (0: any)")
    p.add_argument("--no-echo", action="store_true", help="do not run the echo service")
    p.add_argument("--ca", action="append", default=[], type=Path, metavar="PEM")
    p.add_argument("--dns", metavar="IP[:PORT]")
    p.add_argument("-v", "--verbose", action="store_true")
    web = p.add_argument_group("web pages and REST API (HTTPS)")
    web.add_argument("--no-web", action="store_true", help="do not serve the web pages")
    web.add_argument("--web-host", help="address of the web pages (default: --host)")
    web.add_argument("--web-port", type=int, help="HTTPS port (default: Web Server Port, 8443)")
    web.add_argument("--http-port", type=int, help="also serve HTTP here, redirecting to HTTPS")
    web.add_argument("--web-cert", type=Path, help="PEM certificate (default: self-signed)")
    web.add_argument("--web-key", type=Path, help="PEM key of --web-cert")
    p.set_defaults(func=_run_serve)

    p = commands.add_parser("call", parents=[common], help="place a call",
                            description="Call URI (a sip:/sips: URI, user@host, a number on the "
                            "line's domain, or `echo`), print how it went and how secure it was.")
    p.add_argument("uri")
    p.add_argument("--line", type=int)
    p.add_argument("--play", type=Path, help="WAV file to send")
    p.add_argument("--tone", type=float, help="send a sine tone of this frequency (Hz)")
    p.add_argument("--record", type=Path, help="record what we hear to this WAV file")
    p.add_argument("--duration", type=float, help="hang up after this many seconds")
    p.add_argument("--dtmf", help="send these digits once answered")
    p.add_argument("--answer-timeout", type=float, default=60.0)
    p.set_defaults(func=_run_call)

    for name, help_text in (("answer", "answer the ringing call"),
                            ("hangup", "end a call"), ("hold", "put a call on hold"),
                            ("resume", "take a call off hold")):
        p = commands.add_parser(name, parents=[common], help=help_text)
        p.add_argument("--call", help="call id (default: the latest)")
        p.set_defaults(func=_run_simple, op=name)
    p = commands.add_parser("reject", parents=[common], help="refuse the ringing call")
    p.add_argument("--call")
    p.add_argument("--status", type=int, default=486, choices=[486, 603, 480])
    p.set_defaults(func=_run_simple, op="reject")
    p = commands.add_parser("dtmf", parents=[common], help="send DTMF digits in a call")
    p.add_argument("digits")
    p.add_argument("--call")
    p.set_defaults(func=_run_simple, op="dtmf")
    p = commands.add_parser("transfer", parents=[common], help="blind transfer (REFER)")
    p.add_argument("target")
    p.add_argument("--call")
    p.set_defaults(func=_run_simple, op="transfer")

    p = commands.add_parser("status", parents=[common], help="lines, calls and their security")
    p.add_argument("--wait", type=float, default=3.0,
                   help="without a daemon: seconds to wait for registrations")
    p.set_defaults(func=_run_status)
    p = commands.add_parser("history", parents=[common], help="recent calls")
    p.add_argument("--count", type=int, default=20)
    p.set_defaults(func=_run_simple, op="history")

    p = commands.add_parser("config", help="read or change settings")
    sub = p.add_subparsers(dest="config_command", metavar="get|set|export|import", required=True)
    g = sub.add_parser("get", parents=[common], help="show a setting (or all)")
    g.add_argument("key", nargs="?", help="setting key or Cisco name (Proxy_1_)")
    g.add_argument("--line", type=int)
    g.set_defaults(func=_run_config, op="config_get")
    s = sub.add_parser("set", parents=[common], help="change a setting (validated)")
    s.add_argument("key")
    s.add_argument("value")
    s.add_argument("--line", type=int)
    s.set_defaults(func=_run_config, op="config_set")
    e = sub.add_parser("export", parents=[common], help="all settings as a Cisco flat profile")
    e.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    e.add_argument("--secrets", action="store_true", help="include passwords (file mode 0600)")
    e.set_defaults(func=_run_profile, op="export")
    i = sub.add_parser("import", parents=[common],
                       help="apply a Cisco flat profile (all or nothing; gzip/openssl enc)")
    i.add_argument("file", type=Path)
    i.add_argument("--key", help="passphrase of an openssl enc encrypted profile")
    i.set_defaults(func=_run_profile, op="import")


def _paths(args: argparse.Namespace) -> tuple[Path, Path]:
    from sippa.app.daemon import default_control_path  # noqa: PLC0415
    from sippa.app.store import default_database_path  # noqa: PLC0415

    db = args.db or default_database_path()
    return db, args.socket or default_control_path(db)


def _daemon(args: argparse.Namespace, request: dict[str, Any], timeout: float | None = 30.0
            ) -> dict[str, Any] | None:
    """The daemon's answer, or None when no daemon listens."""
    import asyncio  # noqa: PLC0415

    from sippa.app.control import control_request  # noqa: PLC0415

    _, sock = _paths(args)
    if not sock.exists():
        return None
    try:
        return asyncio.run(control_request(sock, request, timeout))
    except (ConnectionRefusedError, FileNotFoundError):
        return None


def _in_process(args: argparse.Namespace, request: dict[str, Any], *, wait: float = 0.0
                ) -> dict[str, Any]:
    """Run the phone here for one request (no daemon is running)."""
    import asyncio  # noqa: PLC0415

    from sippa.app.control import Controller  # noqa: PLC0415
    from sippa.app.daemon import PhoneRuntime, RuntimeOptions  # noqa: PLC0415

    async def run() -> dict[str, Any]:
        db, _ = _paths(args)
        async with PhoneRuntime(RuntimeOptions(db=db)) as runtime:
            assert runtime.phone is not None and runtime.store is not None
            if wait:
                for number, line in runtime.phone.lines.items():
                    if line.registrar is not None:
                        await runtime.phone.wait_registered(number, wait)
            return await Controller(runtime.phone, runtime.store).handle(request)

    return asyncio.run(run())


def _emit(args: argparse.Namespace, answer: dict[str, Any],
          show: Callable[[dict[str, Any]], None]) -> int:
    import json  # noqa: PLC0415

    if args.json:
        print(json.dumps(answer, indent=2))
    elif not answer.get("ok"):
        print(f"error: {answer.get('error')}", file=sys.stderr)
    else:
        show(answer)
    return 0 if answer.get("ok") else EXIT_FAILED


def _show_security(sec: dict[str, Any], indent: str = "  ") -> None:
    if sec.get("padlock"):
        print(f"{indent}secure: yes (padlock)")
    else:
        print(f"{indent}secure: NO")
        for reason in sec.get("reasons", []):
            print(f"{indent}  - {reason}")
    for label, key in (("transport", "transport"), ("TLS version", "tls_version"),
                       ("cipher", "cipher"), ("group", "group"),
                       ("peer certificate", "peer_subject"), ("SRTP", "srtp_suite")):
        if sec.get(key):
            print(f"{indent}{label}: {sec[key]}")


def _show_restriction(r: dict[str, Any] | None) -> None:
    """Restrict Source IP: where requests are accepted from, and what was refused."""
    if not r:
        return
    if r["active"]:
        allowed = ", ".join(r["allowed"]) or "no proxy address yet"
        text = f"restrict source IP: on (from {allowed})"
    elif r["setting"]:
        text = "restrict source IP: on, but no proxy: direct calls accepted"
    else:
        text = "restrict source IP: off"
    if r["refused"]:
        text += (f"; {r['refused']} refused, last {r['last_refused_method']} "
                 f"from {r['last_refused_source']}")
    print(f"  {text}")


def _show_call(call: dict[str, Any]) -> None:
    print(f"call {call['id']} (line {call['line']}, {call['direction']}) {call['remote']}: "
          f"{call['state']}")
    if call.get("codec"):
        print(f"  codec: {call['codec']}  packets sent/received: {call['packets_sent']}/"
              f"{call['packets_received']}")
    if call.get("dtmf_received"):
        print(f"  DTMF received: {call['dtmf_received']}")
    timer = call.get("session_timer")
    if timer:
        who = "this phone" if timer["refresher"] == "us" else "the other party"
        print(f"  session timer: {timer['interval']} s, refreshed by {who} "
              f"({timer['refreshes']} refreshes, expires in {timer['expires_in']} s)")
    if call.get("rel100"):
        print("  provisional responses: reliable (100rel, PRACKed)")
    _show_security(call["security"])
    if call.get("end_reason"):
        print(f"  ended: {call['end_reason']}")


def _run_serve(args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415
    import logging  # noqa: PLC0415

    from sippa.app.daemon import PhoneRuntime, RuntimeOptions, serve  # noqa: PLC0415

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    db, sock = _paths(args)
    options = RuntimeOptions(db=db, host=args.host, sip_port=args.sip_port,
                             tls_port=args.tls_port, echo=not args.no_echo,
                             ca_files=tuple(args.ca), dns=args.dns)
    web_tasks: list[asyncio.Task[None]] = []

    def ready(runtime: PhoneRuntime, path: Path) -> None:
        phone = runtime.phone
        assert phone is not None
        print(f"sippa is running (settings: {db}, control: {path})", flush=True)
        for transport, (host, port) in phone.local.items():
            print(f"  SIP over {transport.upper()} on {host}:{port}", flush=True)
        if runtime.echo is not None:
            print(f"  echo service: {runtime.echo.uri} (TLS + SRTP)", flush=True)
            print("  try: sippa call echo --duration 5", flush=True)
        if not args.no_web:
            from sippa.interfaces.web import run_phone_web  # noqa: PLC0415

            assert runtime.store is not None
            web_tasks.append(asyncio.get_running_loop().create_task(run_phone_web(
                phone, runtime.store, data_dir=db.parent, host=args.web_host or args.host,
                port=args.web_port, http_port=args.http_port, certfile=args.web_cert,
                keyfile=args.web_key, ca_files=tuple(args.ca),
                provisioning=runtime.provisioning,
            )))

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(options, sock, ready=ready))
    return 0


def _run_call(args: argparse.Namespace) -> int:
    request: dict[str, Any] = {
        "op": "call", "target": args.uri, "line": args.line, "dtmf": args.dtmf,
        "duration": args.duration, "answer_timeout": args.answer_timeout,
        "play": str(args.play.resolve()) if args.play else None,
        "record": str(args.record.resolve()) if args.record else None, "tone": args.tone,
    }
    timeout = None
    answer = _daemon(args, request, timeout)
    if answer is None:
        answer = _in_process(args, request, wait=5.0)

    def show(a: dict[str, Any]) -> None:
        _show_call(a["call"])

    code = _emit(args, answer, show)
    if code == 0 and not answer.get("answered"):
        return EXIT_FAILED
    return code


def _run_simple(args: argparse.Namespace) -> int:
    request: dict[str, Any] = {"op": args.op}
    for name in ("call", "status", "digits", "target", "count"):
        if getattr(args, name, None) is not None:
            request[name] = getattr(args, name)
    if args.op == "history":
        answer = _daemon(args, request) or _in_process(args, request)
    else:
        daemon_answer = _daemon(args, request)
        if daemon_answer is None:
            print("error: no sippa daemon is running (start one with `sippa serve`)",
                  file=sys.stderr)
            return EXIT_NO_DAEMON
        answer = daemon_answer

    def show(a: dict[str, Any]) -> None:
        if "call" in a:
            _show_call(a["call"])
        elif "history" in a:
            for h in a["history"]:
                lock = "secure" if h["padlock"] else "not secure"
                print(f"{h['direction']:8} line {h['line']} {h['remote']} "
                      f"{h['duration']:.0f}s {lock} - {h['end_reason']}")
        elif "method" in a:
            print(f"sent ({a['method']})")

    return _emit(args, answer, show)


def _run_status(args: argparse.Namespace) -> int:
    request = {"op": "status"}
    answer = _daemon(args, request) or _in_process(args, request, wait=args.wait)

    def show(a: dict[str, Any]) -> None:
        from sippa.app.blf import blf_text  # noqa: PLC0415
        from sippa.app.mwi import voicemail_text  # noqa: PLC0415

        for line in a["lines"]:
            if not line["enabled"]:
                continue
            state = "registered" if line["registered"] else line["state"]
            print(f"line {line['line']}: {line['aor']} {state}"
                  + (f" ({line['reason']})" if line.get("reason") else ""))
            if line.get("calls_refused"):
                print(f"  {line['calls_refused']}")
            if line.get("registered_via") == "alternate":
                print(f"  through the alternate proxy {line.get('alternate_proxy')}"
                      f" ({line.get('registered_via_reason') or 'proxy failed'})")
            voicemail = voicemail_text(line.get("mwi"))
            if voicemail:
                print(f"  {voicemail}")
            for key in line.get("blf") or ():
                print(f"  key {key['key']} {blf_text(key)} [{key['uri']}]")
            tls = line.get("tls")
            if tls:
                checked = "validated" if tls["verified"] else "NOT validated"
                print(f"  {line['transport']} {tls['version']} {tls['cipher']} {tls['group']} "
                      f"{tls['peer_subject']} ({checked})")
            _show_restriction(line.get("source_restriction"))
        if not any(line["enabled"] for line in a["lines"]):
            print("no line is enabled (sippa config set line_enable yes --line 1 ...)")
        for call in a["calls"]:
            _show_call(call)
        if not a["calls"]:
            print("no calls")

    return _emit(args, answer, show)


def _run_config(args: argparse.Namespace) -> int:
    request: dict[str, Any] = {"op": args.op, "key": args.key, "line": args.line}
    if args.op == "config_set":
        request["value"] = args.value
    answer = _daemon(args, request)
    if answer is None:
        import asyncio  # noqa: PLC0415

        from sippa.app.control import Controller  # noqa: PLC0415
        from sippa.app.store import ConfigStore  # noqa: PLC0415

        db, _ = _paths(args)
        store = ConfigStore(db)
        try:
            answer = asyncio.run(Controller(None, store).handle(request))
        finally:
            store.close()

    def show(a: dict[str, Any]) -> None:
        if "settings" in a:
            for name, value in a["settings"].items():
                print(f"{name} = {value}")
        else:
            print(f"{a['cisco']} = {a['value']}")

    return _emit(args, answer, show)


def _run_profile(args: argparse.Namespace) -> int:
    """``sippa config export|import``: the settings database as a Cisco flat profile."""
    import os  # noqa: PLC0415

    from sippa.app.profile import AccessMap, ProfileError, export_profile, import_profile  # noqa: PLC0415
    from sippa.app.store import ConfigStore  # noqa: PLC0415

    db, sock = _paths(args)
    if args.op == "import" and sock.exists():
        print("a sippa daemon is running: import through its web page, or stop it first",
              file=sys.stderr)
        return 1
    store = ConfigStore(db)
    access = AccessMap(db.parent / "access.json")
    try:
        if args.op == "export":
            data = export_profile(store, include_secrets=args.secrets, access=access)
            if args.output is None:
                sys.stdout.write(data.decode())
            else:
                fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            return 0
        try:
            result = import_profile(args.file.read_bytes(), store, key=args.key, access=access,
                                    source=args.file.name)
        except (ProfileError, OSError) as exc:
            print(f"not imported: {exc}", file=sys.stderr)
            return 1
        # warnings (unknown elements...) are logged by sippa.app.profile
        print(f"{len(result.changed)} settings changed")
        return 0
    finally:
        store.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stdout)
        return 0
    func = getattr(args, "func", None)
    return int(func(args)) if func is not None else 0
