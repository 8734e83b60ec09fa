"""The web package's public names: sorted, complete, and importable."""

from __future__ import annotations

import importlib

import sippa.interfaces.web as web

MODULES = ["app", "auth", "api", "forms", "pages", "phone", "server"]


def test_public_names_are_sorted_and_exist() -> None:
    assert web.__all__ == sorted(web.__all__)
    for name in web.__all__:
        assert getattr(web, name) is not None


def test_every_module_lists_what_it_exports() -> None:
    for name in MODULES:
        module = importlib.import_module(f"sippa.interfaces.web.{name}")
        exported = module.__all__
        assert exported == sorted(exported), name
        for item in exported:
            assert hasattr(module, item), f"{name}.{item}"
