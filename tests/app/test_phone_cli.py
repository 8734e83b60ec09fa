"""The daemon's control socket and the CLI (in-process and against a running daemon)."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest

from sippa.app.control import control_request
from sippa.app.daemon import PhoneRuntime, RuntimeOptions, serve
from sippa.interfaces.cli import main

pytestmark = pytest.mark.timeout(60)


async def test_daemon_echo_call_config_and_status(tmp_path: Path) -> None:
    db, sock = tmp_path / "data" / "sippa.db", tmp_path / "data" / "ctl.sock"
    stop = asyncio.Event()
    started = asyncio.Event()
    task = asyncio.ensure_future(
        serve(RuntimeOptions(db=db), sock, ready=lambda rt, p: started.set(), stop=stop)
    )
    try:
        await asyncio.wait_for(started.wait(), 10)
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        answer = await control_request(sock, {"op": "call", "target": "echo", "duration": 1,
                                              "tone": 440})
        assert answer["ok"] and answer["answered"], answer
        call = answer["call"]
        assert call["security"]["padlock"] is True
        assert call["security"]["transport"] == "TLS"
        assert call["security"]["srtp_suite"]
        assert call["packets_received"] > 20
        assert call["end_reason"] == "hung up by us"
        bad = await control_request(sock, {"op": "config_set", "key": "sip_transport",
                                           "line": 1, "value": "SCTP"})
        assert not bad["ok"] and "must be one of" in bad["error"]
        good = await control_request(sock, {"op": "config_set", "key": "Display_Name_1_",
                                            "value": "Alice"})
        assert not good["ok"]  # Cisco names are for config_get; config_set takes keys
        good = await control_request(sock, {"op": "config_set", "key": "display_name",
                                            "line": 1, "value": "Alice"})
        assert good["ok"] and good["value"] == "Alice" and good["cisco"] == "Display_Name_1_"
        got = await control_request(sock, {"op": "config_get", "key": "Display_Name_1_"})
        assert got["value"] == "Alice"
        secret = await control_request(sock, {"op": "config_set", "key": "password",
                                              "line": 1, "value": "hunter2"})
        assert secret["value"] == "********"
        status = await control_request(sock, {"op": "status"})
        assert status["ok"] and status["lines"][0]["display_name"] == "Alice"
        assert "hunter2" not in json.dumps(status)
        history = await control_request(sock, {"op": "history"})
        assert history["history"][0]["padlock"] is True
        nothing = await control_request(sock, {"op": "hangup"})
        assert not nothing["ok"] and "no such call" in nothing["error"]
        unknown = await control_request(sock, {"op": "reboot"})
        assert not unknown["ok"]
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    assert not sock.exists()


def test_cli_config_without_daemon(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "s.db")
    assert main(["config", "set", "proxy", "example.test", "--line", "2", "--db", db]) == 0
    assert main(["config", "get", "Proxy_2_", "--db", db]) == 0
    assert "Proxy_2_ = example.test" in capsys.readouterr().out
    assert main(["config", "set", "rtp_port_min", "80", "--db", db, "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and "at least 1024" in out["error"]
    assert main(["config", "get", "no_such_thing", "--db", db]) == 1
    assert "no setting" in capsys.readouterr().err


def test_cli_commands_that_need_a_daemon(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    assert main(["answer", "--db", str(tmp_path / "s.db")]) == 3
    assert "no sippa daemon" in capsys.readouterr().err


def test_cli_call_echo_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = tmp_path / "echo.wav"
    code = main(["call", "echo", "--duration", "1.5", "--tone", "800", "--record", str(rec),
                 "--db", str(tmp_path / "s.db")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "secure: yes (padlock)" in out and "TLS version" in out
    from tests.media.tonecheck import analyse_wav

    assert analyse_wav(rec).holds(800, min_active=0.5)


async def test_runtime_without_echo(tmp_path: Path) -> None:
    async with PhoneRuntime(RuntimeOptions(db=tmp_path / "x.db", echo=False)) as rt:
        assert rt.echo is None and rt.phone is not None
        assert "tls" in rt.phone.local
