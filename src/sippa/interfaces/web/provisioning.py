"""The Provisioning section of the web UI and ``/api/v1/provisioning``.

Shows the resync state per Profile Rule (and whether a rule fetches over plain http without
``--key``/``--sha256``), the Custom CA Rule's anchors, the update state with the release notes
and security advisories of the last verified manifest, and lets the admin resync now, check for
updates, import a Cisco flat profile (all or nothing) and export one. Everything goes through
:class:`sippa.app.provisioning.ProvisioningService` (``WebContext.provisioning``); without it
the page says provisioning is not running and the API answers 409.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from starlette.datastructures import FormData, UploadFile

from sippa.app.profile import MAX_PROFILE_BYTES, ImportResult, ProfileError
from sippa.app.provisioning import PROFILE_RULES, ProvisioningService
from sippa.app.rules import RuleError, parse_rule
from sippa.app.settings import SCHEMA
from sippa.interfaces.web.app import Forbidden, WebContext, context, principal
from sippa.interfaces.web.auth import Principal, tokens_equal

__all__ = ["api_router", "provisioning_view", "router"]

NOT_RUNNING = "provisioning is not running (start the phone with `sippa serve`)"

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/v1/provisioning", tags=["provisioning"])


# -- what the page and the API show ------------------------------------------------------------


def _rule_name(key: str) -> str:
    return {"profile_rule": "Profile_Rule"}.get(key, f"Profile_Rule_{key[-1].upper()}")


def _without_userinfo(url: str) -> str:
    """The URL to show: never a user or password that someone put into it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def rules_view(service: ProvisioningService, error: str) -> list[dict[str, Any]]:
    """One row per configured Profile Rule: URL, how it is protected, its error if any."""
    rows = []
    macros = service.macros()
    for key in PROFILE_RULES:
        name = _rule_name(key)
        text = str(service.store.get(key))
        if not text.strip():
            continue
        row: dict[str, Any] = {"name": name, "url": "", "transport": "", "plain_http": False,
                               "error": ""}
        try:
            rule = parse_rule(text, macros, assignments=True)
        except RuleError as exc:
            row["error"] = f"bad rule: {exc}"
            rows.append(row)
            continue
        if rule is None or not rule.url:
            row["transport"] = (
                "no alternative applies now" if rule is None else "assignments only, no fetch"
            )
            rows.append(row)
            continue
        row["url"] = _without_userinfo(rule.url)
        if rule.https:
            row["transport"] = "https"
        elif rule.key is not None or rule.sha256 is not None:
            row["transport"] = "http, protected by " + ("--key" if rule.key else "--sha256")
        else:
            row["transport"] = "plain http: not protected on the way"
            row["plain_http"] = True
        if error.startswith(f"{name}: "):
            row["error"] = error[len(name) + 2 :]
        rows.append(row)
    return rows


def status_of(service: ProvisioningService) -> dict[str, Any]:
    """The service's status plus the per-rule rows."""
    out = service.status()
    out["rules"] = rules_view(service, str(out["resync"].get("error", "")))
    return out


def provisioning_view(ctx: WebContext) -> dict[str, Any]:
    """Template values for the Provisioning page (``prov`` is None when not running)."""
    if ctx.provisioning is None:
        return {"prov": None}
    return {"prov": status_of(ctx.provisioning)}


def _changed_names(result: ImportResult) -> list[str]:
    return sorted(SCHEMA[key].cisco_name(line) for key, line in result.changed)


# -- page actions (POST with the CSRF token, admin only) ---------------------------------------


async def _admin_form(request: Request) -> tuple[Principal, FormData]:
    who = principal(request)
    form = await request.form(max_part_size=MAX_PROFILE_BYTES + 4096)
    if not tokens_equal(str(form.get("csrf", "")), who.csrf):
        await form.close()
        raise Forbidden("bad or missing CSRF token: reload the page and try again")
    return who, form


def _page(request: Request, who: Principal, status: int = 200, **extra: Any) -> HTMLResponse:
    from sippa.interfaces.web.pages import _settings_view  # noqa: PLC0415 - pages imports us

    return _settings_view(
        request, who, "Provisioning", 0, status, action="/settings/provisioning", **extra
    )


def _refused(request: Request, who: Principal) -> HTMLResponse | None:
    """The answer when this login or this phone cannot do provisioning actions."""
    from sippa.interfaces.web.pages import _render  # noqa: PLC0415 - pages imports us

    if not who.is_admin:
        return _render(request, "error.html", who, 403, message="the admin login is needed")
    if context(request).provisioning is None:
        return _page(request, who, 409, prov_error=NOT_RUNNING)
    return None


@router.post("/provisioning/resync")
async def resync_submit(request: Request) -> Response:
    who, form = await _admin_form(request)
    await form.close()
    if (refused := _refused(request, who)) is not None:
        return refused
    service = context(request).provisioning
    assert service is not None  # checked by _refused
    status = await service.resync_now()
    if status.state == "ok":
        return _page(request, who, prov_message=f"Resync done: {status.changed} settings changed.")
    return _page(request, who, prov_error=f"Resync failed: {status.error}")


@router.post("/provisioning/check-updates")
async def check_updates_submit(request: Request) -> Response:
    return await _updates_submit(request, install=False)


@router.post("/provisioning/install-update")
async def install_update_submit(request: Request) -> Response:
    return await _updates_submit(request, install=True)


async def _updates_submit(request: Request, *, install: bool) -> Response:
    who, form = await _admin_form(request)
    expect = str(form.get("version", "")).strip() or None
    await form.close()
    if (refused := _refused(request, who)) is not None:
        return refused
    service = context(request).provisioning
    assert service is not None
    if service.updater is None:
        return _page(request, who, 409, prov_error="automatic updates are off: no release key "
                     "(update-keys.pem) is configured")
    if install:
        updates = await service.install_update(expect)
        done = "Update"
    else:
        updates = await service.check_updates()
        done = "Update check done"
    state = updates["state"] if updates else "idle"
    return _page(request, who, prov_message=f"{done}: {state}.")


@router.post("/provisioning/import")
async def import_submit(request: Request) -> Response:
    who, form = await _admin_form(request)
    try:
        upload = form.get("profile")
        data = (
            await upload.read(MAX_PROFILE_BYTES + 1) if isinstance(upload, UploadFile) else b""
        )
        key = str(form.get("key", "")) or None
    finally:
        await form.close()
    if (refused := _refused(request, who)) is not None:
        return refused
    service = context(request).provisioning
    assert service is not None
    if not data:
        return _page(request, who, 422, prov_error="choose a profile file to import")
    try:
        result = await run_in_threadpool(lambda: service.import_profile(data, key=key))
    except ProfileError as exc:
        return _page(
            request, who, 422, prov_error=f"Nothing was imported: {exc}",
            prov_errors=exc.errors,
        )
    names = _changed_names(result)
    return _page(
        request, who, prov_message=f"Imported: {len(names)} settings changed.",
        prov_changed=names, prov_warnings=result.warnings,
    )


@router.post("/provisioning/export")
async def export_submit(request: Request) -> Response:
    who, form = await _admin_form(request)
    secrets = form.get("secrets") in {"1", "on", "yes", "true"}
    await form.close()
    if (refused := _refused(request, who)) is not None:
        return refused
    service = context(request).provisioning
    assert service is not None
    return _xml_download(await run_in_threadpool(lambda: service.export(include_secrets=secrets)))


def _xml_download(data: bytes) -> Response:
    return Response(
        data,
        media_type="application/xml",
        headers={"content-disposition": 'attachment; filename="sippa-profile.xml"'},
    )


# -- the REST API ------------------------------------------------------------------------------

Who = Annotated[Principal, Depends(principal)]
Ctx = Annotated[WebContext, Depends(context)]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid session or bearer token"},
    403: {"description": "not the admin (or a bad CSRF token)"},
    409: {"description": "provisioning is not running (or updates are off)"},
}


class RuleOut(BaseModel):
    name: str = Field(description="Profile_Rule, Profile_Rule_B ..")
    url: str = Field(description="the expanded URL (no user or password)")
    transport: str
    plain_http: bool = Field(description="fetched over http without --key or --sha256")
    error: str


class ProvisioningOut(BaseModel):
    resync: dict[str, Any] = Field(description="state, last_attempt, last_success, error, "
                                   "changed, warnings, next_in, reason")
    rules: list[RuleOut]
    custom_ca: dict[str, Any] = Field(description="state, error, anchors")
    updates: dict[str, Any] | None = Field(
        description="null when automatic updates are off; else state, current_version, "
        "last_check, error, progress, history and the available release with its notes "
        "and security advisories"
    )


class ImportOut(BaseModel):
    changed: list[str] = Field(description="Cisco names of the settings that changed")
    warnings: list[str]


class ImportErrorOut(BaseModel):
    detail: str
    errors: dict[str, str] = Field(description="profile element → what is wrong with it")


def _service(who: Principal, ctx: WebContext) -> ProvisioningService:
    if not who.is_admin:
        raise HTTPException(403, "the admin login is needed")
    if ctx.provisioning is None:
        raise HTTPException(409, NOT_RUNNING)
    return ctx.provisioning


@api_router.get("/status", response_model=ProvisioningOut, responses=_ERRORS)
async def api_status(who: Who, ctx: Ctx) -> dict[str, Any]:
    """Resync state per rule, Custom CA anchors, update state, release notes, advisories."""
    return status_of(_service(who, ctx))


@api_router.post("/resync", response_model=ProvisioningOut, responses=_ERRORS)
async def api_resync(who: Who, ctx: Ctx) -> dict[str, Any]:
    """Resync every Profile Rule now (all or nothing); answers the status after it."""
    service = _service(who, ctx)
    await service.resync_now()
    return status_of(service)


@api_router.post(
    "/check-updates",
    response_model=ProvisioningOut,
    responses=_ERRORS,
)
async def api_check_updates(who: Who, ctx: Ctx) -> dict[str, Any]:
    """Check the Upgrade Rule's manifest now; a newer signed release shows as
    ``available`` (nothing is installed)."""
    service = _service(who, ctx)
    if service.updater is None:
        raise HTTPException(409, "automatic updates are off: no release key is configured")
    await service.check_updates()
    return status_of(service)


@api_router.post(
    "/install-update",
    response_model=ProvisioningOut,
    responses=_ERRORS,
)
async def api_install_update(
    who: Who, ctx: Ctx, version: str | None = Query(default=None, max_length=64)
) -> dict[str, Any]:
    """Check the Upgrade Rule's manifest now and install a newer signed release (health
    check, rollback when it fails); answers the status after it. With ``version``, only
    that release is installed (when the manifest names another by now, nothing is)."""
    service = _service(who, ctx)
    if service.updater is None:
        raise HTTPException(409, "automatic updates are off: no release key is configured")
    await service.install_update(version)
    return status_of(service)


_PROFILE_BODY = {
    "requestBody": {
        "required": True,
        "description": "a Cisco flat profile: XML, gzip, or `openssl enc` encrypted",
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@api_router.post(
    "/import",
    response_model=ImportOut,
    responses={
        **_ERRORS,
        413: {"description": "the profile is too large"},
        422: {"model": ImportErrorOut, "description": "nothing was imported"},
    },
    openapi_extra=_PROFILE_BODY,
)
async def api_import(
    who: Who,
    ctx: Ctx,
    request: Request,
    key: Annotated[str | None, Query(description="passphrase of an encrypted profile")] = None,
    x_profile_key: Annotated[str | None, Header(description="the passphrase (preferred)")] = None,
) -> Any:
    """Import a profile, all or nothing (the same checks as a resync)."""
    service = _service(who, ctx)
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_PROFILE_BYTES:
            raise HTTPException(413, f"the profile is larger than {MAX_PROFILE_BYTES} bytes")
    passphrase = x_profile_key or key or None
    try:
        result = await run_in_threadpool(
            lambda: service.import_profile(bytes(data), key=passphrase)
        )
    except ProfileError as exc:
        return Response(
            ImportErrorOut(detail=str(exc), errors=exc.errors).model_dump_json(),
            status_code=422,
            media_type="application/json",
        )
    return {"changed": _changed_names(result), "warnings": list(result.warnings)}


@api_router.get(
    "/export",
    response_class=Response,
    responses={
        **_ERRORS,
        200: {"content": {"application/xml": {}}, "description": "the flat profile"},
    },
)
async def api_export(
    who: Who,
    ctx: Ctx,
    secrets: Annotated[bool, Query(description="include the passwords")] = False,
) -> Response:
    """Export every setting as a Cisco flat profile (passwords only with ``secrets=true``)."""
    service = _service(who, ctx)
    return _xml_download(await run_in_threadpool(lambda: service.export(include_secrets=secrets)))
