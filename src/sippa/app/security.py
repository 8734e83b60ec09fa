"""Secure-call policy and the padlock: what a call offers, what it accepts, and what it tells.

The reviewed phone showed a padlock on calls whose SIP did not even use TLS. sippa shows it only
when BOTH hold:

1. the signalling to the first hop is TLS with a validated certificate (chain and name), and
2. the media is SRTP whose SDES keys travelled, both ways, over that TLS connection.

Anything else is reported with the reasons why not, in words meant for the person on the call.
These functions are pure: the call object feeds them facts and shows their verdict.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "CallSecurity",
    "MediaFacts",
    "OfferPlan",
    "SecureCallPolicy",
    "SignallingFacts",
    "assess",
    "check_answer",
    "plan_offer",
    "policy_from_settings",
]


class SecureCallPolicy(enum.Enum):
    """The line's secure-call setting (the phone's "Secure Call")."""

    OFF = "Off"
    """RTP/AVP, no a=crypto."""
    BEST_EFFORT = "Best Effort"
    """RTP/AVP with a=crypto (RFC 8643): encrypt when the peer agrees."""
    MANDATORY = "Mandatory"
    """RTP/SAVP; a call without SRTP is refused (488) or fails with a reason."""


def policy_from_settings(line_option: str, user_setting: str) -> SecureCallPolicy:
    """Resolve a line's ``Secure_Call_Option_n_`` (``Default`` follows the user's setting)."""
    value = user_setting if line_option == "Default" else line_option
    return SecureCallPolicy(value)


@dataclass(frozen=True, slots=True)
class SignallingFacts:
    """How the call's SIP messages travel to and from the first hop."""

    transport: str
    """UDP, TCP or TLS."""
    certificate_validated: bool = False
    """TLS only: the peer's chain verified against our anchors AND its name matched the SIP
    domain (RFC 5922). False for TLS with validation switched off, or an inbound TLS connection
    whose peer showed no validated certificate."""
    tls_version: str | None = None
    cipher: str | None = None
    group: str | None = None
    peer_subject: str | None = None
    validation_disabled: bool = False
    """The line's TLS Name Validate (or chain validation) is switched off."""

    @property
    def is_tls(self) -> bool:
        return self.transport.upper() == "TLS"


@dataclass(frozen=True, slots=True)
class MediaFacts:
    """What offer/answer agreed for the audio stream."""

    srtp_suite: str | None
    """The SDES crypto suite in use, or None for plain RTP."""
    keys_over_tls: bool = False
    """Both our key and the peer's key were carried in messages sent over the TLS connection
    of :class:`SignallingFacts` (never over UDP/TCP, never through a downgraded leg)."""
    srtp_reason: str | None = None
    """Why SRTP was not agreed, when it was not (from the negotiator)."""


@dataclass(frozen=True, slots=True)
class CallSecurity:
    """The verdict shown on the phone page, the API and the CLI."""

    padlock: bool
    signalling_secure: bool
    media_encrypted: bool
    reasons: tuple[str, ...]
    """Why the call is not secure (empty when the padlock is shown)."""
    transport: str
    tls_version: str | None
    cipher: str | None
    group: str | None
    peer_subject: str | None
    srtp_suite: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "padlock": self.padlock,
            "signalling_secure": self.signalling_secure,
            "media_encrypted": self.media_encrypted,
            "reasons": list(self.reasons),
            "transport": self.transport,
            "tls_version": self.tls_version,
            "cipher": self.cipher,
            "group": self.group,
            "peer_subject": self.peer_subject,
            "srtp_suite": self.srtp_suite,
        }


def assess(signalling: SignallingFacts, media: MediaFacts | None) -> CallSecurity:
    """The padlock and its reasons. ``media`` is None before offer/answer completes."""
    reasons: list[str] = []
    if not signalling.is_tls:
        reasons.append(f"signalling is not encrypted (SIP over {signalling.transport.upper()})")
    elif signalling.validation_disabled:
        reasons.append("the server's certificate is not checked (validation is switched off)")
    elif not signalling.certificate_validated:
        reasons.append("the peer's TLS certificate was not validated")
    signalling_secure = signalling.is_tls and signalling.certificate_validated
    suite = media.srtp_suite if media else None
    if media is None:
        reasons.append("media not negotiated yet")
    elif suite is None:
        why = f": {media.srtp_reason}" if media.srtp_reason else ""
        reasons.append(f"media is not encrypted (plain RTP{why})")
    elif not media.keys_over_tls:
        reasons.append("the SRTP keys travelled without TLS, so others may have read them")
    return CallSecurity(
        padlock=not reasons,
        signalling_secure=signalling_secure,
        media_encrypted=suite is not None,
        reasons=tuple(reasons),
        transport=signalling.transport.upper(),
        tls_version=signalling.tls_version,
        cipher=signalling.cipher,
        group=signalling.group,
        peer_subject=signalling.peer_subject,
        srtp_suite=suite,
    )


@dataclass(frozen=True, slots=True)
class OfferPlan:
    """How to build (or whether to refuse) an SDP offer or answer for a call."""

    allowed: bool
    profile: str
    """RTP/AVP or RTP/SAVP."""
    include_crypto: bool
    reason: str | None = None
    """Why the call cannot go ahead (when not ``allowed``) or why it will not be encrypted."""


def plan_offer(
    policy: SecureCallPolicy, *, signalling_is_tls: bool, keys_only_over_tls: bool
) -> OfferPlan:
    """What our offer carries under ``policy`` on a leg that is (or is not) TLS.

    With "keys only over TLS" SDES keys are never put into a message that is not sent over TLS
    (RFC 4568 §8.1: the keys are in the clear in the SDP).
    """
    keys_allowed = signalling_is_tls or not keys_only_over_tls
    if policy is SecureCallPolicy.OFF:
        return OfferPlan(True, "RTP/AVP", include_crypto=False, reason="secure calls are off")
    if policy is SecureCallPolicy.BEST_EFFORT:
        if keys_allowed:
            return OfferPlan(True, "RTP/AVP", include_crypto=True)
        return OfferPlan(
            True,
            "RTP/AVP",
            include_crypto=False,
            reason="SRTP keys are sent only over TLS and this call's signalling is not TLS",
        )
    if keys_allowed:
        return OfferPlan(True, "RTP/SAVP", include_crypto=True)
    return OfferPlan(
        False,
        "RTP/SAVP",
        include_crypto=False,
        reason="SRTP is mandatory but its keys may only be sent over TLS, and this call's "
        "signalling is not TLS",
    )


def check_answer(policy: SecureCallPolicy, media: MediaFacts) -> str | None:
    """A reason to end (or refuse) the call under ``policy``, or None when it may go on."""
    if policy is SecureCallPolicy.MANDATORY and media.srtp_suite is None:
        why = f" ({media.srtp_reason})" if media.srtp_reason else ""
        return f"SRTP is mandatory on this line but the peer did not agree to it{why}"
    return None
