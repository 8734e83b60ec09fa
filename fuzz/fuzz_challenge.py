"""Fuzz the Digest challenge and credentials parsers (atheris; run by hand).

    pip install atheris
    python fuzz/fuzz_challenge.py -max_len=4096 [corpus_dir]

Without atheris, ``python fuzz/fuzz_challenge.py FILE...`` replays saved inputs (crash files).
The invariant (as in h11's fuzzing): every input parses, or raises RemoteProtocolError, and what
parses formats back to the same challenge. Anything else escaping is a bug.
"""

from __future__ import annotations

import contextlib
import dataclasses

from _harness import run  # fuzz/_harness.py, beside this script

from sippa.errors import RemoteProtocolError
from sippa.sip.auth_grammar import parse_challenges, parse_credentials
from sippa.sip.digest import format_challenge, parse_authorization, parse_digest_challenges


def test_one_input(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    for parse in (parse_challenges, parse_credentials, parse_authorization):
        with contextlib.suppress(RemoteProtocolError):
            parse(text)
    try:
        challenges = parse_digest_challenges(text.split("\n"))
    except RemoteProtocolError:
        return
    for challenge in challenges:
        again = parse_digest_challenges([format_challenge(challenge)], challenge.header)
        if again != [dataclasses.replace(challenge, index=0)]:
            raise AssertionError(f"round trip changed {challenge!r} into {again!r}")


def main() -> None:
    run(test_one_input)


if __name__ == "__main__":
    main()
