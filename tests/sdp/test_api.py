"""The public API of sippa.sdp: a curated, sorted __all__ that names real objects."""

from __future__ import annotations

import importlib

import pytest

import sippa.sdp

MODULES = ["sippa.sdp", "sippa.sdp.model", "sippa.sdp.sdes", "sippa.sdp.negotiate"]


def _isort_key(name: str) -> tuple[int, str]:
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_and_resolves(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    # Sorted the way ruff's RUF022 sorts: CONSTANTS, then Classes, then functions.
    assert exported == sorted(exported, key=_isort_key)
    assert len(set(exported)) == len(exported)
    for attr in exported:
        assert hasattr(module, attr), f"{name}.{attr}"


def test_package_reexports_submodule_api() -> None:
    wanted = set()
    for name in MODULES[1:]:
        wanted |= set(importlib.import_module(name).__all__)
    # Limits other than the body size stay in sippa.sdp.model.
    wanted -= {"MAX_ATTRIBUTES", "MAX_FORMATS", "MAX_LINE_LENGTH", "MAX_MEDIA"}
    assert wanted == set(sippa.sdp.__all__)


def test_package_docstring_documents_the_api() -> None:
    doc = sippa.sdp.__doc__ or ""
    for name in ("Negotiator", "MediaParameters", "CryptoAttribute", "SessionDescription",
                 "receive_offer", "receive_answer", "create_offer", "random_bytes"):
        assert name in doc
