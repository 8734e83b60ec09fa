"""Cisco provisioning macros: ``$MA``, ``$PSN``, ``$(NAME:p:q)``... in profile and upgrade rules.

The phone's rules (``Profile_Rule``, ``Upgrade_Rule``, ``Custom_CA_Rule``) may name the device:
``https://prov.example/$MA.xml``. Expansion follows the Cisco MPP "Macro Variables" table:

- ``$$`` is a literal ``$``;
- ``$NAME`` takes the LONGEST known name at that place (``$MAU`` is not ``$MA`` + ``U``);
- ``$(NAME)``, ``$(NAME:p)`` (from offset ``p``) and ``$(NAME:p:q)`` (``q`` characters from ``p``);
- an unknown name stays as written, and expansion is not recursive (a value containing ``$``
  is not expanded again).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sippa.app.store import ConfigStore

__all__ = ["GPP_NAMES", "SECRET_GPP_NAMES", "device_macros", "expand", "secret_macros"]

GPP_NAMES = tuple("ABCDEFGHIJKLMNOP")
"""``$A``..``$P``: the values of ``GPP_A``..``GPP_P``."""
SECRET_GPP_NAMES = ("SA", "SB", "SC", "SD")
"""``$SA``..``$SD``: ``GPP_SA``..``GPP_SD``, secrets that expand only in a rule's ``--key``."""

_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_PAREN = re.compile(r"\(([A-Z][A-Z0-9_]*)(?::(\d+))?(?::(\d+))?\)")


def expand(text: str, values: Mapping[str, str]) -> str:
    """Expand the macros of ``text`` with ``values`` (macro name without ``$`` -> text)."""
    names = sorted(values, key=len, reverse=True)
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c != "$":
            out.append(c)
            i += 1
            continue
        rest = text[i + 1 :]
        if rest.startswith("$"):
            out.append("$")
            i += 2
            continue
        m = _PAREN.match(rest)
        if m and m.group(1) in values:
            value = values[m.group(1)]
            start = int(m.group(2) or 0)
            value = value[start:] if m.group(3) is None else value[start : start + int(m.group(3))]
            out.append(value)
            i += 1 + m.end()
            continue
        name = next((n for n in names if rest.startswith(n)), None)
        if name is None:
            out.append("$")  # unknown macro: left as written
            i += 1
            continue
        out.append(values[name])
        i += 1 + len(name)
    return "".join(out)


def device_macros(
    store: ConfigStore,
    *,
    mac: str,
    serial: str,
    product: str = "sippa",
    software_version: str = "",
    ip: str = "",
) -> dict[str, str]:
    """The macro values of this phone: identity, version, address and ``$A``..``$P``."""
    hexmac = re.sub(r"[^0-9a-fA-F]", "", mac).lower()
    values = {
        "MA": hexmac,
        "MAU": hexmac.upper(),
        "MAC": ":".join(hexmac[k : k + 2] for k in range(0, len(hexmac), 2)),
        "PN": product,
        "PSN": product,
        "SN": serial,
        "SWVER": software_version,
        "IP": ip,
    }
    for letter in GPP_NAMES:
        values[letter] = str(store.get(f"gpp_{letter.lower()}"))
    return values


def secret_macros(store: ConfigStore) -> dict[str, str]:
    """``$SA``..``$SD``, for a rule's ``--key`` only (see :mod:`sippa.app.rules`)."""
    return {name: str(store.get(f"gpp_{name.lower()}")) for name in SECRET_GPP_NAMES}
