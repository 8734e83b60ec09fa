"""The server-rendered pages (Jinja2, autoescaped), built from the settings schema."""

from __future__ import annotations

import datetime as dt
import math
import secrets
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData, UploadFile

from sippa import __version__
from sippa.app.accounts import LockedOut, PasswordRejected
from sippa.app.blf import blf_text
from sippa.app.mwi import voicemail_text
from sippa.app.settings import SCHEMA
from sippa.app.webserver import MAX_CA_UPLOAD, CertificateError
from sippa.interfaces.web.api import lines_status
from sippa.interfaces.web.app import Forbidden, WebContext, context, principal
from sippa.interfaces.web.auth import COOKIE, PRE_COOKIE, Principal, can_see, tokens_equal
from sippa.interfaces.web.forms import ChangeError, apply_changes, page_fields, sections
from sippa.interfaces.web.provisioning import provisioning_view

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _when(epoch: object) -> str:
    """A history time stamp (seconds since the epoch) as local date and time."""
    if not isinstance(epoch, int | float):
        return ""
    return dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


templates.env.filters["when"] = _when
templates.env.filters["voicemail"] = voicemail_text
templates.env.filters["blf"] = blf_text

SETTINGS_PAGES = ("System", "SIP", "Provisioning", "User", "Phone")
# the settings page "Phone" (Cisco's Voice > Phone tab: line keys) is named apart from the
# phone page (/phone) in the navigation
_NAV_LABELS = {"Phone": "Line Keys"}


def _nav(ctx: WebContext, who: Principal) -> list[tuple[str, str]]:
    items = [("Info", "/"), ("Phone", "/phone")]
    for page in SETTINGS_PAGES:
        if any(s.page == page and can_see(who.role, s) for s in SCHEMA.values()):
            items.append((_NAV_LABELS.get(page, page), f"/settings/{page.lower()}"))
    items += [(f"Ext {n}", f"/ext/{n}") for n in range(1, ctx.store.lines + 1)]
    items.append(("Trust anchors", "/trust"))
    if who.is_admin:
        items.append(("API tokens", "/tokens"))
    return items


def _render(
    request: Request, name: str, who: Principal | None, status: int = 200, **kw: Any
) -> HTMLResponse:
    ctx = context(request)
    values = {
        "who": who,
        "csrf": who.csrf if who else "",
        "nav": _nav(ctx, who) if who else [],
        "path": request.url.path,
        "version": __version__,
        **kw,
    }
    return templates.TemplateResponse(request, name, values, status_code=status)


def _set_session_cookie(response: Response, sid: str) -> None:
    response.set_cookie(COOKIE, sid, secure=True, httponly=True, samesite="strict", path="/")


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


async def _form(request: Request, who: Principal) -> FormData:
    """The submitted form, after checking its CSRF token against the session's."""
    form = await request.form(max_part_size=MAX_CA_UPLOAD + 4096)
    if not tokens_equal(str(form.get("csrf", "")), who.csrf):
        raise Forbidden("bad or missing CSRF token: reload the page and try again")
    return form


def _pre_token(request: Request) -> str:
    return request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)


def _with_pre(response: HTMLResponse, token: str) -> HTMLResponse:
    response.set_cookie(
        PRE_COOKIE, token, secure=True, httponly=True, samesite="strict", path="/", max_age=3600
    )
    return response


def _check_pre(request: Request, form: FormData) -> None:
    if not tokens_equal(request.cookies.get(PRE_COOKIE), str(form.get("pre", ""))):
        raise Forbidden("bad or missing CSRF token: reload the page and try again")


# -- first run, login, logout -------------------------------------------------------------


@router.get("/setup")
async def setup_page(request: Request) -> Response:
    if not context(request).accounts.needs_setup:
        return RedirectResponse("/login", status_code=303)
    pre = _pre_token(request)
    return _with_pre(_render(request, "setup.html", None, pre=pre), pre)


@router.post("/setup")
async def setup_submit(request: Request) -> Response:
    ctx = context(request)
    form = await request.form()
    _check_pre(request, form)
    if not ctx.accounts.needs_setup:
        return RedirectResponse("/login", status_code=303)
    password, confirm = str(form.get("password", "")), str(form.get("confirm", ""))
    error = None
    if password != confirm:
        error = "the two passwords differ"
    else:
        try:
            await run_in_threadpool(
                ctx.accounts.complete_setup, str(form.get("token", "")).strip(), password
            )
        except PermissionError as exc:
            error = str(exc)
        except PasswordRejected as exc:
            error = str(exc)
    if error:
        pre = _pre_token(request)
        return _with_pre(_render(request, "setup.html", None, 400, pre=pre, error=error), pre)
    session = ctx.sessions.create("admin")
    response = RedirectResponse("/", status_code=303)
    _set_session_cookie(response, session.sid)
    return response


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    ctx = context(request)
    if ctx.accounts.needs_setup:
        return RedirectResponse("/setup", status_code=303)
    pre = _pre_token(request)
    return _with_pre(_render(request, "login.html", None, pre=pre, next=_safe_next(next)), pre)


@router.post("/login")
async def login_submit(request: Request) -> Response:
    ctx = context(request)
    form = await request.form()
    _check_pre(request, form)
    role = str(form.get("role", "admin"))
    nxt = _safe_next(str(form.get("next", "/")))
    error, status, retry_after = None, 401, 0.0
    client = request.client.host if request.client else ""
    try:
        ok = await run_in_threadpool(
            lambda: ctx.accounts.login(
                role, str(form.get("password", "")), now=ctx.clock(), client=client
            )
        )
    except LockedOut as exc:
        ok, error, status, retry_after = False, str(exc), 429, exc.retry_after
    if not ok:
        pre = _pre_token(request)
        failed = _render(
            request, "login.html", None, status, pre=pre, next=nxt, role=role,
            error=error or "wrong login or password",
        )
        if status == 429:
            failed.headers["retry-after"] = str(max(1, math.ceil(retry_after)))
        return _with_pre(failed, pre)
    old = request.cookies.get(COOKIE)
    if old:
        ctx.sessions.drop(old)
    session = ctx.sessions.create(role)
    response = RedirectResponse(nxt, status_code=303)
    _set_session_cookie(response, session.sid)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    who = principal(request)
    await _form(request, who)
    if who.session:
        context(request).sessions.drop(who.session.sid)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response


# -- info ------------------------------------------------------------------------------------


@router.get("/")
async def info(request: Request) -> Response:
    who = principal(request)
    ctx = context(request)
    return _render(
        request, "info.html", who,
        lines=lines_status(ctx), phone=ctx.phone is not None,
        calls=ctx.phone.calls() if ctx.phone else [], fingerprint=ctx.web_fingerprint,
    )


# -- settings pages ------------------------------------------------------------------------


def _settings_view(
    request: Request, who: Principal, page: str, line: int, status: int = 200, *,
    errors: dict[str, str] | None = None, submitted: dict[str, str] | None = None,
    saved: bool = False, **extra: Any,
) -> HTMLResponse:
    ctx = context(request)
    if page == "Provisioning" and who.is_admin:  # resync, updates, import/export above
        extra = {**provisioning_view(ctx), **extra}
    action = extra.pop("action", request.url.path)
    fields = page_fields(ctx.store, page, who.role, line)
    for f in fields:
        if errors and f.name in errors:
            f.error = errors[f.name]
        if submitted and f.name in submitted and not f.setting.secret:
            f.value = submitted[f.name]
    title = f"Ext {line}" if page == "Ext" else page
    return _render(
        request, "settings.html", who, status, title=title, groups=sections(fields),
        errors=errors or {}, saved=saved, action=action, **extra,
    )


async def _settings_submit(request: Request, page: str, line: int) -> Response:
    who = principal(request)
    ctx = context(request)
    form = await _form(request, who)
    fields = page_fields(ctx.store, page, who.role, line)
    submitted = {f.name: str(form[f.name]) for f in fields if f.editable and f.name in form}
    try:
        changed, roles = await run_in_threadpool(apply_changes, ctx.store, who.role, submitted)
    except ChangeError as exc:
        return _settings_view(request, who, page, line, 422, errors=exc.errors, submitted=submitted)
    for role in roles:
        ctx.sessions.drop_role(role, keep=who.session.sid if who.session else None)
    target = f"{request.url.path}?saved=1"
    if "Web_Server_Port" in changed and ctx.port_follows_setting:
        # the pages move to the new port now: follow them there
        host = request.url.hostname or "localhost"
        host = f"[{host}]" if ":" in host else host
        target = f"https://{host}:{ctx.store.get('web_server_port')}{target}"
    return RedirectResponse(target, status_code=303)


def _page_name(name: str) -> str | None:
    return next((p for p in SETTINGS_PAGES if p.lower() == name.lower()), None)


@router.get("/settings/{name}")
async def settings_page(request: Request, name: str, saved: int = 0) -> Response:
    who = principal(request)
    page = _page_name(name)
    if page is None:
        return _render(request, "error.html", who, 404, message="no such page")
    return _settings_view(request, who, page, 0, saved=bool(saved))


@router.post("/settings/{name}")
async def settings_submit(request: Request, name: str) -> Response:
    page = _page_name(name)
    if page is None:
        return _render(request, "error.html", principal(request), 404, message="no such page")
    return await _settings_submit(request, page, 0)


@router.get("/ext/{n}")
async def ext_page(request: Request, n: int, saved: int = 0) -> Response:
    who = principal(request)
    if not 1 <= n <= context(request).store.lines:
        return _render(request, "error.html", who, 404, message="no such line")
    return _settings_view(request, who, "Ext", n, saved=bool(saved))


@router.post("/ext/{n}")
async def ext_submit(request: Request, n: int) -> Response:
    if not 1 <= n <= context(request).store.lines:
        return _render(request, "error.html", principal(request), 404, message="no such line")
    return await _settings_submit(request, "Ext", n)


# -- trust anchors ---------------------------------------------------------------------------


def _trust_view(
    request: Request, who: Principal, status: int = 200, error: str | None = None,
    added: int = 0,
) -> HTMLResponse:
    anchors = context(request).trust.anchors()
    return _render(
        request, "trust.html", who, status, anchors=anchors, error=error, added=added,
        custom=sum(a.custom for a in anchors),
    )


@router.get("/trust")
async def trust_page(request: Request, added: int = 0) -> Response:
    return _trust_view(request, principal(request), added=added)


@router.post("/trust")
async def trust_upload(request: Request) -> Response:
    who = principal(request)
    form = await _form(request, who)
    if not who.is_admin:
        await form.close()
        return _trust_view(request, who, 403, "only the admin may add trust anchors")
    upload = form.get("pem")
    try:
        data = await upload.read(MAX_CA_UPLOAD + 1) if isinstance(upload, UploadFile) else b""
    finally:
        await form.close()
    try:
        added = context(request).trust.add_pem(data)
    except CertificateError as exc:
        return _trust_view(request, who, 422, str(exc))
    ctx = context(request)
    if ctx.phone is not None:
        ctx.phone.reload_trust()  # new TLS connections of the lines use it at once
    return RedirectResponse(f"/trust?added={len(added)}", status_code=303)


@router.post("/trust/remove")
async def trust_remove(request: Request) -> Response:
    who = principal(request)
    form = await _form(request, who)
    if not who.is_admin:
        return _trust_view(request, who, 403, "only the admin may remove trust anchors")
    ctx = context(request)
    if ctx.trust.remove(str(form.get("sha256", ""))) and ctx.phone is not None:
        ctx.phone.reload_trust()
    return RedirectResponse("/trust", status_code=303)


# -- phone -----------------------------------------------------------------------------------


@router.get("/phone")
async def phone_page(request: Request) -> Response:
    who = principal(request)
    ctx = context(request)
    return _render(
        request, "phone.html", who, phone=ctx.phone is not None,
        lines=lines_status(ctx), calls=ctx.phone.calls() if ctx.phone else [],
        history=ctx.phone.history(20) if ctx.phone else [],
    )


# -- API tokens ------------------------------------------------------------------------------


@router.get("/tokens")
async def tokens_page(request: Request) -> Response:
    who = principal(request)
    if not who.is_admin:
        return _render(request, "error.html", who, 403, message="the admin login is needed")
    tokens = context(request).accounts.list_tokens()
    return _render(request, "tokens.html", who, tokens=tokens, new=None)


@router.post("/tokens")
async def tokens_submit(request: Request) -> Response:
    who = principal(request)
    form = await _form(request, who)
    ctx = context(request)
    if not who.is_admin:
        return _render(request, "error.html", who, 403, message="the admin login is needed")
    new = None
    if "revoke" in form:
        ctx.accounts.revoke_token(str(form["revoke"]))
    else:
        role = str(form.get("role", "user"))
        label = str(form.get("label", "")).strip()[:64] or "script"
        if role in {"admin", "user"}:
            new = ctx.accounts.create_token(role, label)
    return _render(request, "tokens.html", who, tokens=ctx.accounts.list_tokens(), new=new)
