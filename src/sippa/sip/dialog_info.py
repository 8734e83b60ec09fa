"""The dialog event package (RFC 4235) for a busy lamp field, sans-IO.

:func:`parse_dialog_info` reads an ``application/dialog-info+xml`` body (RFC 4235 §4) into a
:class:`DialogInfo`; :class:`DialogInfoState` keeps the dialogs of one watched resource across
full and partial notifications (§4.1.2: version ordering) and derives its :class:`Lamp`::

    state = DialogInfoState()
    outcome = state.apply(parse_dialog_info(body))   # APPLIED, STALE or NEED_FULL
    state.lamp                                       # idle, ringing, busy or unknown

Parsing is defused (``defusedxml``: no DTD, no entities, no external references) and bounded
(body size, number of dialogs, text lengths); anything malformed is a
:class:`~sippa.errors.RemoteProtocolError` (400) saying what.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from sippa.errors import RemoteProtocolError

__all__ = [
    "CONTENT_TYPE",
    "DIALOG_STATES",
    "EVENT_PACKAGE",
    "MAX_DIALOGS",
    "MAX_DIALOG_INFO_BYTES",
    "Applied",
    "DialogEntry",
    "DialogInfo",
    "DialogInfoState",
    "Lamp",
    "lamp_of",
    "parse_dialog_info",
]

EVENT_PACKAGE = "dialog"
"""RFC 4235 §3.1: the event package name (``Event: dialog``)."""
CONTENT_TYPE = "application/dialog-info+xml"
"""RFC 4235 §3.5 / §4: the body format of its NOTIFYs."""
NAMESPACE = "urn:ietf:params:xml:ns:dialog-info"

# RFC 4235 §3.7.1 / §4.1.6.1: the states of the dialog FSM.
DIALOG_STATES = ("trying", "proceeding", "early", "confirmed", "terminated")
_DIRECTIONS = ("initiator", "recipient")

# Limits. A watched phone has a handful of dialogs; a document is a few KiB. 64 KiB and 64
# dialogs bound what one NOTIFY can cost; longer attribute or element texts are refused.
MAX_DIALOG_INFO_BYTES = 64 * 1024
MAX_DIALOGS = 64
MAX_TEXT = 1024
MAX_VERSION = 2**32 - 1  # RFC 4235 §4.1.2: versions are 32-bit counters in practice

_NS = "{" + NAMESPACE + "}"


class Lamp(enum.Enum):
    """What a BLF key shows for the watched resource."""

    UNKNOWN = "unknown"
    """No full state yet, or the subscription failed or ended."""
    IDLE = "idle"
    """No dialog (or only terminated ones)."""
    RINGING = "ringing"
    """A call is ringing there (an early dialog where it is the recipient)."""
    BUSY = "busy"
    """On a call (a confirmed dialog) or placing one (an early outgoing dialog)."""


class Applied(enum.Enum):
    """The outcome of :meth:`DialogInfoState.apply`."""

    APPLIED = "applied"
    STALE = "stale"
    """Version not newer than the one held: ignored (§4.1.2)."""
    NEED_FULL = "need-full"
    """A partial document without the full state before it (or after a version gap):
    ignored; the subscriber should refresh to get a full state (§4.1.2)."""


@dataclass(frozen=True, slots=True)
class DialogEntry:
    """One ``<dialog>`` element (RFC 4235 §4.1.6)."""

    id: str
    state: str
    """One of :data:`DIALOG_STATES`."""
    call_id: str | None = None
    local_tag: str | None = None
    remote_tag: str | None = None
    direction: str | None = None
    """``initiator`` or ``recipient`` (seen from the watched resource), if given."""
    event: str | None = None
    """The ``event`` attribute of ``<state>`` (``cancelled``, ``rejected``, ``replaced``...)."""
    code: int | None = None
    """The ``code`` attribute of ``<state>`` (a SIP status), if given."""
    local_identity: str | None = None
    local_display: str | None = None
    remote_identity: str | None = None
    remote_display: str | None = None
    duration: int | None = None


@dataclass(frozen=True, slots=True)
class DialogInfo:
    """One ``<dialog-info>`` document (RFC 4235 §4.1)."""

    version: int
    full: bool
    """``state="full"``: the complete state; else partial (changes only)."""
    entity: str
    """The watched resource (a URI)."""
    dialogs: tuple[DialogEntry, ...] = ()


def _local(tag: str) -> str:
    """``{ns}name`` -> ``name`` for the dialog-info namespace; other namespaces stay as they
    are (RFC 4235 §4: extension elements from other namespaces are ignored)."""
    return tag[len(_NS):] if tag.startswith(_NS) else ("" if tag.startswith("{") else tag)


def _attr(element: Element, name: str, where: str, *, required: bool = False) -> str | None:
    value = element.get(name)
    if value is None:
        if required:
            raise RemoteProtocolError(f"dialog-info: {where} without {name}", 400)
        return None
    if len(value) > MAX_TEXT:
        raise RemoteProtocolError(f"dialog-info: {where} {name} is too long", 400)
    return value


def _text(element: Element | None, where: str) -> str | None:
    if element is None:
        return None
    text = (element.text or "").strip()
    if len(text) > MAX_TEXT:
        raise RemoteProtocolError(f"dialog-info: {where} is too long", 400)
    return text or None


def _number(text: str | None, where: str, maximum: int = MAX_VERSION) -> int | None:
    if text is None:
        return None
    text = text.strip()
    if not text.isdigit() or len(text) > 10 or int(text) > maximum:
        raise RemoteProtocolError(f"dialog-info: {where} is not a number: {text[:20]!r}", 400)
    return int(text)


def _child(element: Element, name: str) -> Element | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _participant(element: Element | None, where: str) -> tuple[str | None, str | None]:
    """The identity URI and its display name of ``<local>``/``<remote>`` (§4.1.6.3)."""
    if element is None:
        return None, None
    identity = _child(element, "identity")
    if identity is None:
        return None, None
    return _text(identity, f"{where} identity"), _attr(identity, "display", f"{where} identity")


def _dialog(element: Element) -> DialogEntry:
    # RFC 4235 §4.1.6: id is mandatory; call-id, local-tag, remote-tag, direction optional
    dialog_id = _attr(element, "id", "dialog", required=True)
    assert dialog_id is not None
    if not dialog_id:
        raise RemoteProtocolError("dialog-info: dialog with an empty id", 400)
    direction = _attr(element, "direction", "dialog")
    if direction is not None and direction not in _DIRECTIONS:
        raise RemoteProtocolError(f"dialog-info: bad direction {direction[:20]!r}", 400)
    state_el = _child(element, "state")
    state = _text(state_el, "dialog state")
    if state_el is None or state is None:
        raise RemoteProtocolError(f"dialog-info: dialog {dialog_id[:40]!r} without state", 400)
    if state not in DIALOG_STATES:
        raise RemoteProtocolError(f"dialog-info: unknown dialog state {state[:20]!r}", 400)
    code = _number(_attr(state_el, "code", "state"), "state code", 699)
    local_id, local_display = _participant(_child(element, "local"), "local")
    remote_id, remote_display = _participant(_child(element, "remote"), "remote")
    return DialogEntry(
        id=dialog_id,
        state=state,
        call_id=_attr(element, "call-id", "dialog"),
        local_tag=_attr(element, "local-tag", "dialog"),
        remote_tag=_attr(element, "remote-tag", "dialog"),
        direction=direction,
        event=_attr(state_el, "event", "state"),
        code=code,
        local_identity=local_id,
        local_display=local_display,
        remote_identity=remote_id,
        remote_display=remote_display,
        duration=_number(_text(_child(element, "duration"), "duration"), "duration"),
    )


# RFC 4235 §4.1
def parse_dialog_info(data: bytes) -> DialogInfo:
    """Read an ``application/dialog-info+xml`` body; raises :class:`RemoteProtocolError`
    (400) when it is malformed, too large, or not a dialog-info document."""
    if len(data) > MAX_DIALOG_INFO_BYTES:
        raise RemoteProtocolError(
            f"dialog-info longer than {MAX_DIALOG_INFO_BYTES} bytes", 400
        )
    try:
        root = SafeET.fromstring(
            data, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as exc:
        raise RemoteProtocolError(f"dialog-info refused: {type(exc).__name__}", 400) from None
    except SafeET.ParseError as exc:
        raise RemoteProtocolError(f"dialog-info is not well-formed XML: {exc}", 400) from None
    if root.tag != _NS + "dialog-info":
        raise RemoteProtocolError(f"not a dialog-info document: <{root.tag[:60]}>", 400)
    version = _number(_attr(root, "version", "dialog-info", required=True), "version")
    state = _attr(root, "state", "dialog-info", required=True)
    if state not in ("full", "partial"):
        raise RemoteProtocolError(f"dialog-info: state must be full or partial, not {state!r}",
                                  400)
    entity = _attr(root, "entity", "dialog-info", required=True)
    assert version is not None and entity is not None
    dialogs = [child for child in root if _local(child.tag) == "dialog"]
    if len(dialogs) > MAX_DIALOGS:
        raise RemoteProtocolError(f"dialog-info has more than {MAX_DIALOGS} dialogs", 400)
    return DialogInfo(version, state == "full", entity, tuple(_dialog(d) for d in dialogs))


def lamp_of(dialogs: tuple[DialogEntry, ...] | list[DialogEntry]) -> Lamp:
    """The lamp for a set of dialogs: ringing when one rings at the resource (an early dialog
    it receives: what a call pickup key is for), else busy when one is confirmed or an
    outgoing one is being set up, else idle."""
    ringing = busy = False
    for d in dialogs:
        if d.state == "terminated":
            continue
        if d.state == "confirmed":
            busy = True
        elif d.direction == "initiator":
            busy = True  # trying / proceeding / early outgoing: the phone is in use
        else:
            ringing = True  # early (or trying/proceeding) incoming, or direction unsaid
    if ringing:
        return Lamp.RINGING
    return Lamp.BUSY if busy else Lamp.IDLE


@dataclass(slots=True)
class DialogInfoState:
    """The dialogs of one watched resource in one subscription (RFC 4235 §4.1.2)."""

    version: int | None = None
    """Version of the last document applied; None before the first full state."""
    entity: str | None = None
    dialogs: dict[str, DialogEntry] | None = None
    """Current dialogs by id (terminated ones dropped); None before the first full state."""

    def reset(self) -> None:
        """Forget everything (a new subscription: its versions start again, §4.1.2)."""
        self.version = None
        self.entity = None
        self.dialogs = None

    def clear(self) -> None:
        """The notifier knows no dialogs (a NOTIFY without a body, RFC 6665 §4.1.3: no
        state; Kamailio's presence_dialoginfo sends that for a resource never published):
        idle, and the next document is taken whatever its version."""
        self.version = None
        self.dialogs = {}

    def apply(self, info: DialogInfo) -> Applied:
        # RFC 4235 §4.1.2: "If the version number is less than or equal to the local
        # version, the document is discarded"; a partial one must follow the local version
        # directly (else a full state is needed); a full one replaces everything.
        if self.version is not None and info.version <= self.version:
            return Applied.STALE
        if info.full:
            self.dialogs = {}
        elif self.dialogs is None or (
            self.version is not None and info.version != self.version + 1
        ):
            return Applied.NEED_FULL
        assert self.dialogs is not None
        for entry in info.dialogs:
            if entry.state == "terminated":
                self.dialogs.pop(entry.id, None)
            else:
                self.dialogs[entry.id] = entry
        self.version = info.version
        self.entity = info.entity
        return Applied.APPLIED

    @property
    def lamp(self) -> Lamp:
        if self.dialogs is None:
            return Lamp.UNKNOWN
        return lamp_of(list(self.dialogs.values()))
