"""The ``sippa`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stdout)
        return 0
    func = getattr(args, "func", None)
    return int(func(args)) if func is not None else 0
