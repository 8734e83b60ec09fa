"""Writing files so that a crash or a kill never leaves half of one.

Everything sippa keeps beside its database (trust bundles, access levels, update state, keys)
goes through :func:`atomic_write`: the data goes to a temporary file in the same directory, is
flushed to disk, then renamed over the target (``rename`` is atomic on POSIX), and the
directory is synced so the rename itself survives a power cut.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write"]


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` in one step (permissions ``mode``: private by default)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
