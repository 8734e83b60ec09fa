"""RFC 4235 dialog-info parsing, version ordering and the BLF lamp."""

from __future__ import annotations

import pytest

from sippa.errors import RemoteProtocolError
from sippa.sip.dialog_info import (
    MAX_DIALOGS,
    Applied,
    DialogEntry,
    DialogInfoState,
    Lamp,
    lamp_of,
    parse_dialog_info,
)

# RFC 4235 §4.2 (sample notification body)
RFC_SAMPLE = b"""<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"
          version="0" state="full" entity="sip:alice@example.com">
  <dialog id="as7d900as8" call-id="a84b4c76e66710"
          local-tag="1928301774" direction="initiator">
    <state event="rejected" code="486">terminated</state> <!-- optional -->
    <duration>274</duration>
    <local>
      <identity display="Alice">sip:alice@example.com</identity>
      <target uri="sip:alice@pc33.example.com">
        <param pname="+sip.rendering" pval="yes"/>
      </target>
    </local>
    <remote>
      <identity display="Bob">sip:bob@example.org</identity>
      <target uri="sip:bobster@phone21.example.org"/>
    </remote>
  </dialog>
</dialog-info>
"""

# RFC 4235 §5 (examples: the notifier's view of a call being set up and answered)
RFC_EARLY = b"""<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"
    version="1" state="full" entity="sip:bob@example.com">
  <dialog id="as7d900as8" call-id="a84b4c76e66710" local-tag="1928301774"
      direction="recipient">
    <state>early</state>
  </dialog>
</dialog-info>
"""

RFC_CONFIRMED_PARTIAL = b"""<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"
    version="2" state="partial" entity="sip:bob@example.com">
  <dialog id="as7d900as8" call-id="a84b4c76e66710" local-tag="1928301774"
      remote-tag="456887766" direction="recipient">
    <state>confirmed</state>
  </dialog>
</dialog-info>
"""

RFC_TERMINATED_PARTIAL = b"""<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"
    version="3" state="partial" entity="sip:bob@example.com">
  <dialog id="as7d900as8" call-id="a84b4c76e66710" local-tag="1928301774"
      remote-tag="456887766" direction="recipient">
    <state event="remote-bye">terminated</state>
  </dialog>
</dialog-info>
"""

EMPTY_FULL = (
    b'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="%d" state="full" '
    b'entity="sip:bob@example.com"/>'
)


def test_rfc_sample_parses_every_field() -> None:
    info = parse_dialog_info(RFC_SAMPLE)
    assert (info.version, info.full, info.entity) == (0, True, "sip:alice@example.com")
    (d,) = info.dialogs
    assert d == DialogEntry(
        id="as7d900as8", state="terminated", call_id="a84b4c76e66710",
        local_tag="1928301774", remote_tag=None, direction="initiator", event="rejected",
        code=486, local_identity="sip:alice@example.com", local_display="Alice",
        remote_identity="sip:bob@example.org", remote_display="Bob", duration=274,
    )


def test_call_rings_then_is_answered_then_ends() -> None:
    state = DialogInfoState()
    assert state.lamp is Lamp.UNKNOWN
    assert state.apply(parse_dialog_info(EMPTY_FULL % 0)) is Applied.APPLIED
    assert state.lamp is Lamp.IDLE
    assert state.apply(parse_dialog_info(RFC_EARLY)) is Applied.APPLIED
    assert state.lamp is Lamp.RINGING
    assert state.apply(parse_dialog_info(RFC_CONFIRMED_PARTIAL)) is Applied.APPLIED
    assert state.lamp is Lamp.BUSY
    assert state.apply(parse_dialog_info(RFC_TERMINATED_PARTIAL)) is Applied.APPLIED
    assert state.lamp is Lamp.IDLE
    assert state.version == 3


def test_older_and_equal_versions_are_ignored() -> None:
    state = DialogInfoState()
    state.apply(parse_dialog_info(RFC_CONFIRMED_PARTIAL.replace(b"partial", b"full")))
    assert state.lamp is Lamp.BUSY
    assert state.apply(parse_dialog_info(RFC_EARLY)) is Applied.STALE  # version 1 < 2
    assert state.apply(parse_dialog_info(EMPTY_FULL % 2)) is Applied.STALE  # equal
    assert state.lamp is Lamp.BUSY


def test_partial_needs_a_full_state_first_and_no_gap() -> None:
    state = DialogInfoState()
    assert state.apply(parse_dialog_info(RFC_CONFIRMED_PARTIAL)) is Applied.NEED_FULL
    assert state.lamp is Lamp.UNKNOWN
    state.apply(parse_dialog_info(EMPTY_FULL % 0))
    assert state.apply(parse_dialog_info(RFC_CONFIRMED_PARTIAL)) is Applied.NEED_FULL  # 0 -> 2
    assert state.lamp is Lamp.IDLE
    state.reset()
    assert state.lamp is Lamp.UNKNOWN and state.version is None


def _d(state: str, direction: str | None = None, ident: str = "x") -> DialogEntry:
    return DialogEntry(ident, state, direction=direction)


@pytest.mark.parametrize(
    ("dialogs", "lamp"),
    [
        ((), Lamp.IDLE),
        ((_d("terminated", "recipient"),), Lamp.IDLE),
        ((_d("early", "recipient"),), Lamp.RINGING),
        ((_d("proceeding", "recipient"),), Lamp.RINGING),
        ((_d("early"),), Lamp.RINGING),
        ((_d("early", "initiator"),), Lamp.BUSY),
        ((_d("trying", "initiator"),), Lamp.BUSY),
        ((_d("confirmed", "recipient"),), Lamp.BUSY),
        ((_d("confirmed"),), Lamp.BUSY),
        ((_d("confirmed", "initiator", "a"), _d("early", "recipient", "b")), Lamp.RINGING),
    ],
)
def test_lamp(dialogs: tuple[DialogEntry, ...], lamp: Lamp) -> None:
    assert lamp_of(dialogs) is lamp


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"<dialog-info", "not well-formed"),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x/>', "refused"),
        (b"<presence xmlns='urn:ietf:params:xml:ns:pidf'/>", "not a dialog-info"),
        (EMPTY_FULL.replace(b'version="%d" ', b""), "without version"),
        (EMPTY_FULL.replace(b"%d", b"-1"), "not a number"),
        (EMPTY_FULL.replace(b"%d", b"99999999999"), "not a number"),
        (EMPTY_FULL.replace(b"full", b"half") % 0, "full or partial"),
        (EMPTY_FULL.replace(b'entity="sip:bob@example.com"', b"") % 0, "without entity"),
        (RFC_EARLY.replace(b"early", b"ringing"), "unknown dialog state"),
        (RFC_EARLY.replace(b"recipient", b"sideways"), "bad direction"),
        (RFC_EARLY.replace(b'id="as7d900as8" ', b""), "without id"),
        (RFC_EARLY.replace(b"<state>early</state>", b""), "without state"),
        (RFC_SAMPLE.replace(b'code="486"', b'code="abc"'), "not a number"),
        (b" " * (64 * 1024 + 1), "longer than"),
    ],
)
def test_malformed_bodies_are_refused(body: bytes, words: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_dialog_info(body)
    assert words in info.value.reason
    assert info.value.status_code == 400


def test_too_many_dialogs_are_refused() -> None:
    dialog = b'<dialog id="%d"><state>confirmed</state></dialog>'
    body = (
        b'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" '
        b'entity="sip:bob@example.com">'
        + b"".join(dialog % i for i in range(MAX_DIALOGS + 1))
        + b"</dialog-info>"
    )
    with pytest.raises(RemoteProtocolError, match="more than"):
        parse_dialog_info(body)


def test_extension_elements_are_ignored() -> None:
    body = RFC_EARLY.replace(
        b"<state>early</state>",
        b'<state>early</state><x:foo xmlns:x="urn:example">bar</x:foo>',
    )
    (d,) = parse_dialog_info(body).dialogs
    assert d.state == "early"


def test_cleared_state_is_idle_and_takes_a_partial_update() -> None:
    state = DialogInfoState()
    state.clear()
    assert state.lamp is Lamp.IDLE
    # after a NOTIFY without a body, the next document is taken whatever its version
    assert state.apply(parse_dialog_info(RFC_CONFIRMED_PARTIAL)) is Applied.APPLIED
    assert state.lamp is Lamp.BUSY
