"""The padlock is shown only for validated TLS signalling plus SRTP keyed over that TLS: every
combination of the facts is checked against that rule, and the reasons name every gap."""

from __future__ import annotations

import itertools

import pytest

from sippa.app.security import (
    MediaFacts,
    SecureCallPolicy,
    SignallingFacts,
    assess,
    check_answer,
    plan_offer,
    policy_from_settings,
)

TRANSPORTS = ("UDP", "TCP", "TLS")


@pytest.mark.parametrize(
    ("transport", "validated", "disabled", "suite", "keys_over_tls"),
    list(
        itertools.product(
            TRANSPORTS, (False, True), (False, True), (None, "AES_CM_128_HMAC_SHA1_80"),
            (False, True),
        )
    ),
)
def test_padlock_needs_validated_tls_and_srtp_keyed_over_it(
    transport: str, validated: bool, disabled: bool, suite: str | None, keys_over_tls: bool
) -> None:
    signalling = SignallingFacts(
        transport,
        certificate_validated=validated and transport == "TLS" and not disabled,
        validation_disabled=disabled and transport == "TLS",
        tls_version="TLSv1.3" if transport == "TLS" else None,
    )
    media = MediaFacts(srtp_suite=suite, keys_over_tls=keys_over_tls and transport == "TLS")
    verdict = assess(signalling, media)
    expected = (
        transport == "TLS" and validated and not disabled and suite is not None and keys_over_tls
    )
    assert verdict.padlock is expected
    assert (not verdict.reasons) is expected
    text = " | ".join(verdict.reasons)
    if transport != "TLS":
        assert f"SIP over {transport}" in text
    elif disabled:
        assert "switched off" in text
    elif not validated:
        assert "not validated" in text
    if suite is None:
        assert "plain RTP" in text
    elif not (keys_over_tls and transport == "TLS"):
        assert "keys travelled without TLS" in text
    assert verdict.media_encrypted is (suite is not None)


def test_padlock_on_sip_over_udp_with_srtp_is_refused() -> None:
    """The reviewed phone's bug: SRTP with SIP over UDP showed a padlock."""
    verdict = assess(
        SignallingFacts("UDP"), MediaFacts("AES_CM_128_HMAC_SHA1_80", keys_over_tls=False)
    )
    assert not verdict.padlock
    assert verdict.media_encrypted
    assert verdict.reasons == (
        "signalling is not encrypted (SIP over UDP)",
        "the SRTP keys travelled without TLS, so others may have read them",
    )


def test_details_are_exposed() -> None:
    verdict = assess(
        SignallingFacts(
            "tls", certificate_validated=True, tls_version="TLSv1.3",
            cipher="TLS_AES_256_GCM_SHA384", group="X25519", peer_subject="CN=sip.example.test",
        ),
        MediaFacts("AEAD_AES_256_GCM", keys_over_tls=True),
    )
    assert verdict.padlock
    assert verdict.as_dict() == {
        "padlock": True,
        "signalling_secure": True,
        "media_encrypted": True,
        "reasons": [],
        "transport": "TLS",
        "tls_version": "TLSv1.3",
        "cipher": "TLS_AES_256_GCM_SHA384",
        "group": "X25519",
        "peer_subject": "CN=sip.example.test",
        "srtp_suite": "AEAD_AES_256_GCM",
    }


def test_before_negotiation_there_is_no_padlock() -> None:
    verdict = assess(SignallingFacts("TLS", certificate_validated=True), None)
    assert verdict.reasons == ("media not negotiated yet",)


@pytest.mark.parametrize("policy", list(SecureCallPolicy))
@pytest.mark.parametrize("tls", [False, True])
@pytest.mark.parametrize("keys_only_over_tls", [False, True])
def test_offer_plans(policy: SecureCallPolicy, tls: bool, keys_only_over_tls: bool) -> None:
    plan = plan_offer(policy, signalling_is_tls=tls, keys_only_over_tls=keys_only_over_tls)
    keys_allowed = tls or not keys_only_over_tls
    # never put keys into a message that is not sent over TLS when told so
    if keys_only_over_tls and not tls:
        assert not plan.include_crypto
    if policy is SecureCallPolicy.OFF:
        assert (plan.allowed, plan.profile, plan.include_crypto) == (True, "RTP/AVP", False)
    elif policy is SecureCallPolicy.BEST_EFFORT:
        assert (plan.allowed, plan.profile) == (True, "RTP/AVP")
        assert plan.include_crypto is keys_allowed
        assert (plan.reason is None) is keys_allowed
    else:
        assert plan.profile == "RTP/SAVP"
        assert plan.allowed is keys_allowed
        assert plan.include_crypto is keys_allowed
        if not keys_allowed:
            assert plan.reason is not None
            assert "only be sent over TLS" in plan.reason


def test_mandatory_rejects_plain_media_with_the_negotiators_reason() -> None:
    plain = MediaFacts(None, srtp_reason="the answer's a=crypto matches none of our offered lines")
    reason = check_answer(SecureCallPolicy.MANDATORY, plain)
    assert reason is not None
    assert "mandatory" in reason
    assert "matches none of our offered lines" in reason
    assert check_answer(SecureCallPolicy.BEST_EFFORT, plain) is None
    assert check_answer(SecureCallPolicy.MANDATORY, MediaFacts("AEAD_AES_128_GCM")) is None


def test_line_policy_follows_the_user_default() -> None:
    assert policy_from_settings("Default", "Mandatory") is SecureCallPolicy.MANDATORY
    assert policy_from_settings("Off", "Mandatory") is SecureCallPolicy.OFF
    with pytest.raises(ValueError):
        policy_from_settings("Sometimes", "Off")
