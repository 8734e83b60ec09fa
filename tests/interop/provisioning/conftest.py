"""nginx for the provisioning interop tests: one per module, stopped by pid even on failure."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.peers.certs import LabCerts
from tests.peers.nginx import Nginx


@pytest.fixture(scope="module")
def nginx(lab_certs: LabCerts, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    server = Nginx(tmp_path_factory.mktemp("nginx"), lab_certs)
    with server:
        yield server
