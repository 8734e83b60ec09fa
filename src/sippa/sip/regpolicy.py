"""Calls on a line that should be registered but is not (Cisco "Make/Ans Call Without Reg").

The Cisco profile's per-line ``Make_Call_Without_Reg_n_`` and ``Ans_Call_Without_Reg_n_``
(default No / No) decide what a line that keeps a registration does while it has none - not
yet (the first REGISTER is on its way or was refused) or not any more (a refresh failed, the
registrar went away):

- outgoing: with No the phone refuses to place the call at once and tells the user "not
  registered", instead of sending an INVITE that the proxy will most likely refuse (it does
  not know our Contact, or our credentials are wrong) and that fails seconds later;
- incoming: with No an INVITE for the line gets **480 Temporarily Unavailable**. The registrar
  routes calls only to registered contacts, so what reaches an unregistered line is a stray
  (a stale route, a direct call, a scanner). RFC 3261 §21.4.18 describes 480 as "the callee's
  end system was contacted successfully but the callee is currently unavailable (for example,
  is not logged in ...)" - exactly this state, and temporary: the line is back once it
  registers. 403 Forbidden (§21.4.4) would say the request is refused for good whatever the
  caller does ("authorization will not help"), which is wrong for a state that heals by itself.

A line that does not register (direct IP calling, the loopback/echo line) is never affected:
there is no registration to be without. This module is the decision, sans-IO; the phone
supplies the line's settings and its registration state.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["INCOMING_STATUS", "NOT_REGISTERED", "WithoutReg"]

INCOMING_STATUS = 480
"""What an INVITE for a line that refuses calls while unregistered gets (§21.4.18)."""

NOT_REGISTERED = "not registered"
"""The words shown to the user for a refused outgoing call (and the 480's reason)."""


@dataclass(frozen=True, slots=True)
class WithoutReg:
    """One line's Make/Ans Call Without Reg settings and its registration state now."""

    registers: bool
    """The line keeps a registration (LineConfig.registers); False: never affected."""
    registered: bool
    """It holds a binding at the registrar now."""
    make_call: bool = False
    """Make Call Without Reg: place calls while not registered."""
    answer_call: bool = False
    """Ans Call Without Reg: take calls while not registered."""

    @property
    def unregistered(self) -> bool:
        """The line should be registered and is not."""
        return self.registers and not self.registered

    @property
    def refuses_outgoing(self) -> bool:
        return self.unregistered and not self.make_call

    @property
    def refuses_incoming(self) -> bool:
        return self.unregistered and not self.answer_call

    def outgoing_error(self) -> str | None:
        """Why a call cannot be placed now (for people), None when it can."""
        if not self.refuses_outgoing:
            return None
        return (
            f"{NOT_REGISTERED}: the line makes no calls until it registers "
            "(Make Call Without Reg is No)"
        )

    def status(self) -> str | None:
        """What the line status says about refused calls, None when it refuses none."""
        outgoing, incoming = self.refuses_outgoing, self.refuses_incoming
        if outgoing and incoming:
            return f"{NOT_REGISTERED}: calls can be neither made nor answered"
        if outgoing:
            return f"{NOT_REGISTERED}: calls cannot be made (incoming calls are answered)"
        if incoming:
            return f"{NOT_REGISTERED}: incoming calls are refused with 480 (calls can be made)"
        return None
