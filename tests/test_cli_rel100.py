"""``sippa status`` shows whether a call's provisional responses went reliably (RFC 3262)."""

from __future__ import annotations

from sippa.interfaces.cli import main


def test_status_says_when_provisional_responses_went_reliably(capsys, monkeypatch,
                                                              tmp_path) -> None:
    import sippa.interfaces.cli as cli

    security = {"padlock": True, "transport": "TLS", "signalling_secure": True,
                "srtp_suite": "AEAD_AES_256_GCM", "reasons": []}
    call = {"id": "call-1", "line": 1, "direction": "outgoing", "remote": "sips:bob@x",
            "state": "ringing", "codec": None, "dtmf_received": "", "session_timer": None,
            "security": security, "end_reason": None, "rel100": True}
    answer = {"ok": True, "lines": [], "calls": [call, {**call, "id": "call-2", "rel100": False}]}
    monkeypatch.setattr(cli, "_daemon", lambda args, request, timeout=30.0: answer)
    assert main(["status", "--db", str(tmp_path / "x.db")]) == 0
    out = capsys.readouterr().out
    assert out.count("provisional responses: reliable (100rel, PRACKed)") == 1
