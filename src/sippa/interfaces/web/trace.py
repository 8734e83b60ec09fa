"""The SIP trace of a call: a server-rendered ladder diagram and ``GET /api/v1/calls/{id}/trace``.

The ladder is inline SVG laid out here (no script: the CSP forbids inline script and style, so
the drawing uses classes from ``static/trace.css``). Each arrow links to the full message below
it, in a ``<details>`` that the browser opens when the link is followed. Messages come from the
phone's trace store with digest responses and SDES keys already masked. Admin only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from sippa.interfaces.web.app import WebContext, context, principal
from sippa.interfaces.web.auth import Principal
from sippa.interfaces.web.pages import _render

__all__ = ["Arrow", "Ladder", "api_router", "ladder", "router"]

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/v1", tags=["api"])

Who = Annotated[Principal, Depends(principal)]
Ctx = Annotated[WebContext, Depends(context)]

# Ladder geometry (SVG user units).
WIDTH = 760
LEFT = 170  # x of our lane
RIGHT = 690  # x of the peer's lane
TOP = 56  # y of the first arrow
STEP = 38  # between arrows
BOTTOM = 24


@dataclass(frozen=True, slots=True)
class Arrow:
    """One message drawn on the ladder."""

    index: int
    y: int
    x1: int
    x2: int
    label: str
    offset: str
    """Seconds since the first message, ``+0.123``."""
    transport: str
    direction: str


@dataclass(frozen=True, slots=True)
class Ladder:
    """The ladder diagram's layout: two lanes and one arrow per message."""

    width: int
    height: int
    left: int
    right: int
    local: str
    remote: str
    arrows: list[Arrow]

    @property
    def middle(self) -> int:
        return (self.left + self.right) // 2


def ladder(entries: list[dict[str, Any]]) -> Ladder:
    """Lay out ``entries`` (as :meth:`sippa.app.trace.TraceEntry.as_dict` gives them)."""
    start = entries[0]["time"] if entries else 0.0
    arrows = []
    for n, e in enumerate(entries):
        out = e["direction"] == "out"
        arrows.append(Arrow(
            index=n,
            y=TOP + n * STEP,
            x1=LEFT if out else RIGHT,
            x2=RIGHT if out else LEFT,
            label=e["label"],
            offset=f"+{max(0.0, e['time'] - start):.3f} s",
            transport=e["transport"],
            direction=e["direction"],
        ))
    return Ladder(
        width=WIDTH,
        height=TOP + max(len(entries) - 1, 0) * STEP + BOTTOM,
        left=LEFT,
        right=RIGHT,
        local=entries[0]["local"] if entries else "",
        remote=entries[0]["remote"] if entries else "",
        arrows=arrows,
    )


def _trace(ctx: WebContext, call_id: str) -> dict[str, Any]:
    if ctx.phone is None:
        raise HTTPException(503, "the phone is not running (start it with `sippa serve`)")
    try:
        return ctx.phone.trace(call_id)
    except KeyError:
        raise HTTPException(404, f"no trace of call {call_id}") from None


# -- API -------------------------------------------------------------------------------------


class TraceEntryOut(BaseModel):
    time: float = Field(description="when it was sent or received (seconds since the epoch)")
    direction: str = Field(description='"in" (received) or "out" (sent)')
    transport: str = Field(description="UDP, TCP or TLS")
    local: str = Field(description="our host:port of the flow")
    remote: str = Field(description="the peer's (first hop's) host:port")
    first_line: str = Field(description="the Request-Line or Status-Line")
    label: str = Field(description="the method, or the status code and reason")
    text: str = Field(description="the whole message; digest responses and SDES keys masked")


class TraceOut(BaseModel):
    id: str
    call: dict[str, Any] | None = Field(
        description="the call as GET /api/v1/calls shows it (null once the phone forgot it)"
    )
    entries: list[TraceEntryOut] = Field(description="oldest first; the last 200 at most")


@api_router.get(
    "/calls/{call_id}/trace",
    response_model=TraceOut,
    responses={
        401: {"description": "no valid session or bearer token"},
        403: {"description": "not allowed for this login (the admin login is needed)"},
        404: {"description": "no trace of that call"},
        503: {"description": "the phone is not running"},
    },
)
async def call_trace(who: Who, ctx: Ctx, call_id: str) -> dict[str, Any]:
    """The recent SIP messages of a call, decrypted (we are the endpoint), secrets masked."""
    if not who.is_admin:
        raise HTTPException(403, "the admin login is needed")
    return _trace(ctx, call_id)


# -- pages -----------------------------------------------------------------------------------


@router.get("/phone/traces")
async def traces_page(request: Request) -> Response:
    """Recent calls that have a SIP trace."""
    who = principal(request)
    if not who.is_admin:
        return _render(request, "error.html", who, 403, message="the admin login is needed")
    ctx = context(request)
    calls = ctx.phone.traces() if ctx.phone is not None else []
    return _render(request, "trace_list.html", who, phone=ctx.phone is not None, calls=calls)


@router.get("/phone/calls/{call_id}/trace")
async def trace_page(request: Request, call_id: str) -> Response:
    """One call's ladder diagram."""
    who = principal(request)
    if not who.is_admin:
        return _render(request, "error.html", who, 403, message="the admin login is needed")
    ctx = context(request)
    try:
        trace = _trace(ctx, call_id)
    except HTTPException as exc:
        return _render(request, "error.html", who, exc.status_code, message=exc.detail)
    entries = trace["entries"]
    return _render(
        request, "trace.html", who, call_id=call_id, call=trace["call"], entries=entries,
        ladder=ladder(entries),
    )
