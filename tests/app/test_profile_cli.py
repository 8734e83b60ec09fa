"""``sippa config export|import``."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from sippa.app.store import ConfigStore
from sippa.interfaces.cli import main


def test_export_import_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "a.db"
    store = ConfigStore(db)
    store.update({("proxy", 1): "pbx.example.test", ("password", 1): "s3cret", ("gpp_c", 0): "c"})
    store.close()
    out = tmp_path / "profile.xml"
    assert main(["config", "export", "--db", str(db), "--secrets", "-o", str(out)]) == 0
    assert out.stat().st_mode & 0o077 == 0
    assert b"<Password_1_" in out.read_bytes()
    assert main(["config", "export", "--db", str(db)]) == 0
    assert "s3cret" not in capsys.readouterr().out

    other = tmp_path / "b.db"
    (tmp_path / "profile.xml.gz").write_bytes(gzip.compress(out.read_bytes()))
    assert main(["config", "import", "--db", str(other), str(tmp_path / "profile.xml.gz")]) == 0
    copy = ConfigStore(other)
    assert copy.get("proxy", 1) == "pbx.example.test" and copy.get("password", 1) == "s3cret"
    copy.close()

    bad = tmp_path / "bad.xml"
    bad.write_bytes(b"<flat-profile><GPP_C>new</GPP_C><SIP_T1>fast</SIP_T1></flat-profile>")
    assert main(["config", "import", "--db", str(other), str(bad)]) == 1
    assert "SIP_T1" in capsys.readouterr().err
    copy = ConfigStore(other)
    assert copy.get("gpp_c") == "c"
    copy.close()
