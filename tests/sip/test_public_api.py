"""The public API of sippa.sip: a curated, sorted __all__ of real, public names (httpx style)."""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

import sippa.sip

SUBMODULES = sorted(
    m.name for m in pkgutil.iter_modules(sippa.sip.__path__, "sippa.sip.") if not m.ispkg
)


def _isort_key(name: str) -> tuple[int, str]:
    """ruff RUF022 order: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_all_is_sorted_and_unique() -> None:
    exported = sippa.sip.__all__
    assert exported == sorted(exported, key=_isort_key)
    assert len(set(exported)) == len(exported)


def test_every_name_imports() -> None:
    namespace: dict[str, object] = {}
    exec("from sippa.sip import *", namespace)  # the star import is the point
    assert set(sippa.sip.__all__) <= set(namespace)
    for name in sippa.sip.__all__:
        assert getattr(sippa.sip, name) is namespace[name]


@pytest.mark.parametrize("name", sippa.sip.__all__)
def test_each_name_is_public_where_it_lives(name: str) -> None:
    """Re-exported from the one submodule whose own __all__ lists it: nothing private leaks."""
    assert not name.startswith("_")
    obj = getattr(sippa.sip, name)
    homes = [
        module
        for module in map(importlib.import_module, SUBMODULES)
        if name in getattr(module, "__all__", ()) and getattr(module, name) is obj
    ]
    assert homes, f"{name} is not in the __all__ of any sippa.sip submodule"
    owner = getattr(obj, "__module__", None)
    if isinstance(obj, type | types.FunctionType) and owner is not None:
        assert owner.startswith("sippa.sip."), (name, owner)
        assert not any(part.startswith("_") for part in owner.split("."))


def test_package_namespace_holds_only_the_api_and_submodules() -> None:
    public = {
        name
        for name, value in vars(sippa.sip).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(sippa.sip.__all__)


def test_what_the_runtime_and_app_use_is_exported() -> None:
    wanted = {
        # messages and their parts
        "Request", "Response", "Headers", "Uri", "NameAddr", "Via", "CSeq", "StatusCode",
        "parse_message", "make_response", "StreamFramer",
        # the UA core and its events
        "UserAgentCore", "CoreConfig", "TimerConfig", "Address", "Event", "CallState",
        "IncomingCall", "CallRinging", "CallAnswered", "CallConfirmed", "CallEnded",
        "ReinviteReceived", "ReinviteAnswered", "ReinviteFailed", "ReinviteGlare",
        "RequestReceived", "ResponseReceived", "TransactionTimeout", "TransportError",
        "MessageRejected",
        # digest, registration, server location
        "DigestClient", "DigestPolicy", "Registration", "RegistrationConfig", "LocalContact",
        "Registered", "RegistrationFailed", "Unregistered", "SendFailure", "Credentials",
        "locate", "LocateRequest", "TransportChoice",
    }  # fmt: skip
    assert wanted <= set(sippa.sip.__all__), wanted - set(sippa.sip.__all__)


def test_every_event_class_is_exported() -> None:
    events = importlib.import_module("sippa.sip.events")
    assert set(events.__all__) <= set(sippa.sip.__all__)
