"""RFC 3842 message summaries: the RFC's examples, the grammar's edges, the limits, and that
nothing but RemoteProtocolError escapes the parser."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sippa.errors import RemoteProtocolError
from sippa.sip.mwi import MAX_SUMMARY_BYTES, MessageCounts, MessageSummary

VECTORS = Path(__file__).parent.parent / "vectors" / "rfc3842"


def test_rfc3842_example_notify_body() -> None:
    summary = MessageSummary.parse((VECTORS / "notify-4.1.txt").read_bytes())
    assert summary.messages_waiting is True
    assert summary.account == "sip:alice@vmail.example.com"
    assert summary.voice == MessageCounts(new=2, old=8, new_urgent=0, old_urgent=2)


def test_rfc3842_summary_with_optional_message_headers() -> None:
    # the message headers after the empty line (opt-msg-headers) are not used, To/From there
    # are not mistaken for summary lines
    summary = MessageSummary.parse((VECTORS / "summary-with-headers-3.5.txt").read_bytes())
    assert summary.voice == MessageCounts(4, 8, 1, 2)
    assert set(summary.counts) == {"voice-message"}


def test_no_messages_and_classes_are_case_insensitive() -> None:
    summary = MessageSummary.parse(b"messages-waiting: NO\r\nVOICE-MESSAGE:0/3\r\n")
    assert summary.messages_waiting is False
    assert summary.account is None
    assert summary.voice == MessageCounts(0, 3)


def test_other_classes_and_unknown_lines_are_kept_or_ignored() -> None:
    body = (
        b"Messages-Waiting: yes\r\nFax-Message: 1/0\r\nX-Vendor-Thing: whatever\r\n"
        b"Hologram-Message: 9/9\r\nVoice-Message: 3/1 ( 1 / 0 )\r\n"
    )
    summary = MessageSummary.parse(body)
    assert summary.counts["fax-message"] == MessageCounts(1, 0)
    assert summary.voice == MessageCounts(3, 1, 1, 0)
    assert "hologram-message" not in summary.counts


def test_bare_lf_lines_are_read() -> None:
    assert MessageSummary.parse(b"Messages-Waiting: yes\nVoice-Message: 1/0\n").voice == (
        MessageCounts(1, 0)
    )


def test_round_trip() -> None:
    summary = MessageSummary(
        True, "sip:alice@example.test",
        {"voice-message": MessageCounts(2, 8, 0, 2), "fax-message": MessageCounts(1, 0)},
    )
    text = bytes(summary)
    assert text.startswith(b"Messages-Waiting: yes\r\nMessage-Account: sip:alice@example.test\r\n")
    assert b"Voice-Message: 2/8 (0/2)\r\n" in text
    assert MessageSummary.parse(text) == summary


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"", "without Messages-Waiting"),
        (b"Voice-Message: 1/2\r\n", "without Messages-Waiting"),
        (b"Messages-Waiting: maybe\r\n", "yes or no"),
        (b"Messages-Waiting: yes\r\nMessages-Waiting: no\r\n", "twice"),
        (b"Messages-Waiting: yes\r\nVoice-Message: 1\r\n", "new/old"),
        (b"Messages-Waiting: yes\r\nVoice-Message: -1/2\r\n", "new/old"),
        (b"Messages-Waiting: yes\r\nVoice-Message: 1/2 (3)\r\n", "new/old"),
        (b"Messages-Waiting: yes\r\nVoice-Message: 1/2\r\nVoice-Message: 1/2\r\n", "twice"),
        (b"Messages-Waiting: yes\r\nVoice-Message: 4294967296/0\r\n", "2^32-1"),
        (b"Messages-Waiting: yes\r\nVoice-Message: 12345678901/0\r\n", "new/old"),
        (b"Messages-Waiting: yes\r\nMessage-Account: not a uri\r\n", "not a URI"),
        (b"Messages-Waiting: yes\r\ngarbage line\r\n", "name: value"),
        (b"Messages-Waiting: yes\r\n\xff\xfe\r\n", "UTF-8"),
        (b"Messages-Waiting: yes\r\nX: " + b"a" * 2000 + b"\r\n", "too long"),
        (b"Messages-Waiting: yes\r\n" + b"X: 1\r\n" * 300, "lines"),
        (b"Messages-Waiting: yes\r\n" + b" " * MAX_SUMMARY_BYTES, "longer than"),
    ],
)
def test_malformed_summaries_are_protocol_errors(body: bytes, why: str) -> None:
    with pytest.raises(RemoteProtocolError, match=re.escape(why)) as info:
        MessageSummary.parse(body)
    assert info.value.status_code == 400


def test_largest_count_is_accepted() -> None:
    body = b"Messages-Waiting: yes\r\nVoice-Message: 4294967295/0\r\n"
    assert MessageSummary.parse(body).voice == MessageCounts(2**32 - 1, 0)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_only_the_protocol_error_escapes(data: bytes) -> None:
    with contextlib.suppress(RemoteProtocolError):
        MessageSummary.parse(data)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([
    "Messages-Waiting: yes", "Messages-Waiting: no", "Voice-Message: 1/2 (0/1)",
    "Fax-Message: 3/4", "Message-Account: sip:a@b", "X-Y: z", "", "junk", "Voice-Message: 9",
]), max_size=8))
def test_line_mixes_parse_or_raise(lines: list[str]) -> None:
    try:
        summary = MessageSummary.parse("\r\n".join(lines).encode())
    except RemoteProtocolError:
        return
    assert MessageSummary.parse(bytes(summary)) == summary
