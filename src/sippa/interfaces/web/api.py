"""The REST API under /api/v1 (the OpenAPI document is at /api/v1/openapi.json)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from sippa import __version__
from sippa.app.line import dial_plan_status
from sippa.app.settings import SCHEMA, format_value
from sippa.app.webserver import CertificateError
from sippa.interfaces.web.app import WebContext, context, principal
from sippa.interfaces.web.auth import Principal, can_edit, can_see
from sippa.interfaces.web.forms import ChangeError, apply_changes
from sippa.interfaces.web.phone import DialRefused, PhoneService, sse

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["api"])

Who = Annotated[Principal, Depends(principal)]
Ctx = Annotated[WebContext, Depends(context)]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid session or bearer token"},
    403: {"description": "not allowed for this login (or a bad CSRF token)"},
}


class SettingOut(BaseModel):
    name: str = Field(description="Cisco profile element name, e.g. Proxy_1_")
    key: str
    line: int = Field(description="line number, 0 for settings that are not per line")
    page: str
    section: str
    label: str
    kind: str
    value: str | None = Field(description="the value as text; null for passwords")
    is_set: bool | None = Field(None, description="passwords only: whether one is set")
    editable: bool
    choices: list[str] = []
    doc: str = ""


class SettingsOut(BaseModel):
    settings: list[SettingOut]


class ChangedOut(BaseModel):
    changed: list[str]


class ErrorsOut(BaseModel):
    detail: str
    errors: dict[str, str] = Field(description="Cisco name → what is wrong with the value")


class SourceRestrictionOut(BaseModel):
    setting: bool = Field(description="Restrict_Source_IP_n_ as configured")
    active: bool = Field(description="requests outside a call are checked (the line has a proxy)")
    allowed: list[str] = Field(description="source addresses accepted now (resolved proxies)")
    refused: int = Field(description="requests dropped (UDP) or refused with 403 (TCP/TLS)")
    last_refused_source: str | None = Field(None, description="transport:host:port")
    last_refused_method: str | None = None


class MwiOut(BaseModel):
    """The voicemail light of a line (RFC 3842 message summary)."""

    messages_waiting: bool = Field(False, description="the light: Messages-Waiting: yes")
    new: int = Field(0, description="new voice messages")
    old: int = Field(0, description="old voice messages")
    new_urgent: int = 0
    old_urgent: int = 0
    account: str | None = Field(None, description="Message-Account of the last summary")
    updated: float | None = Field(None, description="Unix time of the last summary")
    source: str | None = Field(None, description="subscription or unsolicited")
    subscription: str = Field("off", description="off, subscribing, active, pending, "
                              "backoff, given-up, stopped...")
    reason: str | None = Field(None, description="why the subscription failed or ended")


class BlfKeyOut(BaseModel):
    """A busy lamp field line key (RFC 4235 dialog state of a watched URI)."""

    key: int = Field(description="line key number (Extended_Function_<key>_)")
    label: str = Field(description="nme= of the key, else the watched user")
    uri: str = Field(description="the watched resource")
    lamp: str = Field("unknown", description="idle, ringing, busy or unknown")
    subscription: str = Field("off", description="off, subscribing, active, pending, "
                              "backoff, given-up, stopped...")
    reason: str | None = Field(None, description="why the subscription failed, or a bad "
                               "setting")
    remote: str | None = Field(None, description="who rings or talks with the watched URI")
    updated: float | None = Field(None, description="Unix time of the last lamp change")
    speed_dial: bool = Field(False, description="fnc has sd: the key calls uri")


class LineOut(BaseModel):
    model_config = {"extra": "allow"}
    line: int
    enabled: bool
    aor: str | None = None
    registered: bool = False
    state: str = ""
    reason: str | None = None
    source_restriction: SourceRestrictionOut | None = None
    mwi: MwiOut | None = None
    blf: list[BlfKeyOut] = Field(default_factory=list,
                                 description="busy lamp field keys (line 1 has them)")


class StatusOut(BaseModel):
    version: str
    phone_running: bool
    lines: list[LineOut]
    calls: int


class DialIn(BaseModel):
    target: str = Field(min_length=1, max_length=256, description="URI, number or host")
    line: int | None = Field(None, ge=1, le=16)


class DtmfIn(BaseModel):
    digits: str = Field(pattern=r"^[0-9*#A-Da-d]{1,32}$")


class TransferIn(BaseModel):
    target: str = Field(min_length=1, max_length=256)


class CallOut(BaseModel):
    model_config = {"extra": "allow"}
    id: str


class AnchorOut(BaseModel):
    subject: str
    sha256: str
    not_after: str
    source: str
    custom: bool
    expired: bool


class PemIn(BaseModel):
    pem: str = Field(min_length=1, max_length=262144, description="PEM CA certificate(s)")


class TokenIn(BaseModel):
    role: str = Field(pattern="^(admin|user)$")
    label: str = Field(min_length=1, max_length=64)


class TokenOut(BaseModel):
    id: str
    role: str
    label: str


class NewTokenOut(TokenOut):
    token: str = Field(description="shown once: store it now")


def _admin(who: Principal) -> None:
    if not who.is_admin:
        raise HTTPException(403, "the admin login is needed")


def _phone(ctx: WebContext) -> PhoneService:
    if ctx.phone is None:
        raise HTTPException(503, "the phone is not running (start it with `sippa serve`)")
    return ctx.phone


def lines_status(ctx: WebContext) -> list[dict[str, Any]]:
    """Line status from the phone, or from the configuration when it is not running."""
    if ctx.phone is not None:
        return ctx.phone.lines()
    out = []
    for n in range(1, ctx.store.lines + 1):
        user, proxy = ctx.store.get("user_id", n), ctx.store.get("proxy", n)
        enabled = bool(ctx.store.get("line_enable", n))
        out.append(
            {
                "line": n,
                "enabled": enabled,
                "aor": f"{user}@{proxy}" if user and proxy else None,
                "registered": False,
                "state": "not running" if enabled else "disabled",
                "reason": "the phone is not running" if enabled else None,
            }
        )
    return out


# -- status and settings -------------------------------------------------------------------


@router.get("/status", response_model=StatusOut, responses=_ERRORS)
async def status(who: Who, ctx: Ctx) -> dict[str, Any]:
    """Version, lines and their registration state, number of calls."""
    return {
        "version": __version__,
        "phone_running": ctx.phone is not None,
        "lines": lines_status(ctx),
        "calls": len(ctx.phone.calls()) if ctx.phone else 0,
    }


@router.get("/lines", response_model=list[LineOut], responses=_ERRORS)
async def lines(who: Who, ctx: Ctx) -> list[dict[str, Any]]:
    return lines_status(ctx)


@router.get("/settings", response_model=SettingsOut, responses=_ERRORS)
async def get_settings(who: Who, ctx: Ctx, page: str | None = None) -> dict[str, Any]:
    """Every setting this login may see (optionally of one page); passwords are never shown."""
    out = []
    for (key, line), value in ctx.store.snapshot().items():
        s = SCHEMA[key]
        if not can_see(who.role, s) or (page is not None and s.page != page):
            continue
        out.append(
            {
                "name": s.cisco_name(line),
                "key": key,
                "line": line,
                "page": s.page,
                "section": s.section,
                "label": s.label,
                "kind": s.kind.value,
                "value": None if s.secret else format_value(s, value),
                "is_set": bool(value) if s.secret else None,
                "editable": can_edit(who.role, s),
                "choices": list(s.choices),
                "doc": s.doc,
            }
        )
    return {"settings": out}


@router.patch(
    "/settings",
    response_model=ChangedOut,
    responses={**_ERRORS, 422: {"model": ErrorsOut, "description": "bad values; nothing saved"}},
)
async def patch_settings(
    who: Who,
    ctx: Ctx,
    changes: Annotated[
        dict[str, str | int | float | bool],
        Body(
            description="Cisco name → new value, e.g. {\"Proxy_1_\": \"sip.example.com\"}; "
            "all or nothing",
            examples=[{"Display_Name_1_": "Alice"}],
            json_schema_extra={
                "propertyNames": {"pattern": r"^[A-Za-z][A-Za-z0-9_]*$"},
                "maxProperties": 1000,
            },
        ),
    ],
) -> Any:
    """Change settings atomically: a bad value changes nothing (422 with every error)."""
    try:
        changed, roles = await run_in_threadpool(
            apply_changes, ctx.store, who.role, changes, blank_keeps_secret=False
        )
    except ChangeError as exc:
        status = 403 if exc.forbidden else 422
        detail = "not allowed" if exc.forbidden else "invalid values: nothing was saved"
        return JSONResponse({"detail": detail, "errors": exc.errors}, status_code=status)
    for role in roles:
        ctx.sessions.drop_role(role, keep=who.session.sid if who.session else None)
    return {"changed": changed}


# -- calls ---------------------------------------------------------------------------------


@router.get("/calls", response_model=list[CallOut], responses=_ERRORS)
async def calls(who: Who, ctx: Ctx) -> list[dict[str, Any]]:
    """Active calls, each with its security verdict (the padlock and why not)."""
    return ctx.phone.calls() if ctx.phone else []


@router.get("/history", responses=_ERRORS)
async def history(who: Who, ctx: Ctx, count: int = 50) -> list[dict[str, Any]]:
    return ctx.phone.history(max(1, min(count, 1000))) if ctx.phone else []


@router.get("/dial-plan", responses={**_ERRORS, 404: {"description": "no such line"}})
async def dial_plan(who: Who, ctx: Ctx, number: str = Query(max_length=256),
                    line: int = 1) -> dict[str, Any]:
    """What the line's dial plan (``Dial_Plan_n_``) does with a typed number, before dialling:
    allowed (the ``target`` to be called, ``dial_now`` when nothing longer can match),
    barred, incomplete or no match (with the ``reason``); "bypass" for URIs and names."""
    if not 1 <= line <= ctx.store.lines:
        raise HTTPException(404, f"no line {line} (lines 1..{ctx.store.lines})")
    plan = str(ctx.store.get("dial_plan", line)).strip()
    return {"line": line, **dial_plan_status(plan, number)}


async def _call_action(coro: Any) -> None:
    try:
        await coro
    except KeyError as exc:
        raise HTTPException(404, f"no such call {exc.args[0] if exc.args else ''}") from None
    except (ValueError, RuntimeError) as exc:
        raise HTTPException(409, str(exc)) from None


_CALL_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    404: {"description": "no such call"},
    409: {"description": "the call cannot do that now"},
    503: {"description": "the phone is not running"},
}


@router.post("/calls", response_model=CallOut, status_code=201, responses={
    **_CALL_ERRORS,
    403: {"description": "barred by the line's dial plan (or not allowed for this login)"},
    422: {"description": "not a valid number for the line's dial plan (incomplete, no match)"},
})
async def dial(who: Who, ctx: Ctx, body: DialIn) -> dict[str, Any]:
    """Place a call to a URI, a number (on the line's domain) or a host."""
    phone = _phone(ctx)
    try:
        return await phone.dial(body.target, body.line)
    except DialRefused as exc:  # the line's dial plan: barred (403), not a valid number (422)
        raise HTTPException(exc.status, str(exc)) from None
    except (ValueError, RuntimeError, KeyError) as exc:
        raise HTTPException(409, str(exc)) from None


@router.post("/calls/{call_id}/answer", status_code=204, responses=_CALL_ERRORS)
async def answer(who: Who, ctx: Ctx, call_id: str) -> Response:
    await _call_action(_phone(ctx).answer(call_id))
    return Response(status_code=204)


@router.post("/calls/{call_id}/hangup", status_code=204, responses=_CALL_ERRORS)
async def hangup(who: Who, ctx: Ctx, call_id: str) -> Response:
    """Hang up (or reject, or cancel) a call."""
    await _call_action(_phone(ctx).hangup(call_id))
    return Response(status_code=204)


@router.post("/calls/{call_id}/hold", status_code=204, responses=_CALL_ERRORS)
async def hold(who: Who, ctx: Ctx, call_id: str) -> Response:
    await _call_action(_phone(ctx).hold(call_id, True))
    return Response(status_code=204)


@router.post("/calls/{call_id}/resume", status_code=204, responses=_CALL_ERRORS)
async def resume(who: Who, ctx: Ctx, call_id: str) -> Response:
    await _call_action(_phone(ctx).hold(call_id, False))
    return Response(status_code=204)


@router.post("/calls/{call_id}/dtmf", status_code=204, responses=_CALL_ERRORS)
async def dtmf(who: Who, ctx: Ctx, call_id: str, body: DtmfIn) -> Response:
    await _call_action(_phone(ctx).dtmf(call_id, body.digits))
    return Response(status_code=204)


@router.post("/calls/{call_id}/transfer", status_code=204, responses=_CALL_ERRORS)
async def transfer(who: Who, ctx: Ctx, call_id: str, body: TransferIn) -> Response:
    """Blind transfer (REFER, RFC 3515)."""
    await _call_action(_phone(ctx).transfer(call_id, body.target))
    return Response(status_code=204)


# -- trust anchors -------------------------------------------------------------------------


@router.get("/trust-anchors", response_model=list[AnchorOut], responses=_ERRORS)
async def anchors(who: Who, ctx: Ctx) -> list[dict[str, object]]:
    """Every trusted CA, built-in ones included: subject, SHA-256 fingerprint, expiry."""
    return [a.as_dict() for a in ctx.trust.anchors()]


@router.post(
    "/trust-anchors",
    response_model=list[AnchorOut],
    status_code=201,
    responses={**_ERRORS, 422: {"description": "not a valid CA certificate"}},
)
async def add_anchor(who: Who, ctx: Ctx, body: PemIn) -> Any:
    """Add custom CA certificate(s) (PEM); each must be a CA certificate that has not expired."""
    _admin(who)
    try:
        added = ctx.trust.add_pem(body.pem.encode())
    except CertificateError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=422)
    if ctx.phone is not None:
        ctx.phone.reload_trust()
    return [a.as_dict() for a in added]


@router.delete(
    "/trust-anchors/{sha256}",
    status_code=204,
    responses={**_ERRORS, 404: {"description": "no such custom anchor"}},
)
async def remove_anchor(who: Who, ctx: Ctx, sha256: str) -> Response:
    _admin(who)
    if not ctx.trust.remove(sha256):
        raise HTTPException(404, "no custom trust anchor with that fingerprint")
    if ctx.phone is not None:
        ctx.phone.reload_trust()
    return Response(status_code=204)


# -- tokens ----------------------------------------------------------------------------------


@router.get("/tokens", response_model=list[TokenOut], responses=_ERRORS)
async def tokens(who: Who, ctx: Ctx) -> list[dict[str, str]]:
    _admin(who)
    return ctx.accounts.list_tokens()


@router.post("/tokens", response_model=NewTokenOut, status_code=201, responses=_ERRORS)
async def new_token(who: Who, ctx: Ctx, body: TokenIn) -> dict[str, str]:
    """A new API token (admin only); the secret is in the answer and nowhere else."""
    _admin(who)
    token = ctx.accounts.create_token(body.role, body.label)
    return {"id": token.split("_")[1], "role": body.role, "label": body.label, "token": token}


@router.delete(
    "/tokens/{token_id}", status_code=204, responses={**_ERRORS, 404: {"description": "none"}}
)
async def revoke_token(who: Who, ctx: Ctx, token_id: str) -> Response:
    _admin(who)
    if not ctx.accounts.revoke_token(token_id):
        raise HTTPException(404, "no such token")
    return Response(status_code=204)


# -- events ----------------------------------------------------------------------------------

KEEPALIVE = 15.0


@router.get(
    "/events",
    responses={
        **_ERRORS,
        200: {"content": {"text/event-stream": {}}, "description": "server-sent events"},
    },
    response_class=StreamingResponse,
)
async def events(who: Who, ctx: Ctx, request: Request) -> StreamingResponse:
    """Server-sent events: ``hello`` (lines and calls now), then ``line``, ``call`` and
    ``settings`` events as they happen."""

    async def stream() -> AsyncIterator[bytes]:
        async with ctx.events.stream() as queue:
            yield sse(
                "hello",
                {"lines": lines_status(ctx), "calls": ctx.phone.calls() if ctx.phone else []},
            )
            while not await request.is_disconnected():
                try:
                    kind, data = await asyncio.wait_for(queue.get(), KEEPALIVE)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                yield sse(kind, data)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"x-accel-buffering": "no"}
    )
