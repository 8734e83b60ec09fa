"""baresip as the media interop peer: one instance for the module, SRTP mandatory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.peers.baresip import Baresip
from tests.peers.process import free_port, free_port_block

BARESIP_TONE_HZ = 1000.0


@pytest.fixture(scope="module")
def baresip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Baresip]:
    workdir: Path = tmp_path_factory.mktemp("baresip-media")
    rtp = free_port_block(40)
    peer = Baresip(
        workdir,
        sip_port=free_port_block(2),
        ctrl_port=free_port(),
        rtp_min=rtp,
        rtp_max=rtp + 39,
        mediaenc="srtp-mand",
        tone_hz=BARESIP_TONE_HZ,
    )
    with peer:
        yield peer
