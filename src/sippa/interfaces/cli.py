"""The ``sippa`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sippa import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sippa",
        description="sippa: a secure SIP phone (SIP over TLS, SDES-SRTP, HTTPS administration).",
    )
    parser.add_argument("--version", action="version", version=f"sippa {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stdout)
        return 0
    return 0
