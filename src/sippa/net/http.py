"""A small HTTP(S) GET for provisioning: profiles, CA bundles, release manifests and wheels.

Built on httpx, with the phone's TLS client policy (:func:`sippa.net.tls.make_client_context`):

- https is verified against the trust anchors the caller passes (chain and host name);
- no proxy from the environment, no redirects (a provisioning server answers where it is asked;
  a redirect from https to http would silently drop the protection);
- the body is read as a stream and refused beyond ``max_bytes`` (a server cannot fill memory);
- every failure becomes one :class:`FetchError` with a message meant for a person.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sippa.net.tls import TrustStore, explain_tls_error, make_client_context

__all__ = ["FetchError", "Fetcher", "HttpFetcher", "Request"]

DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_TIMEOUT = 30.0

Progress = Callable[[int, int | None], None]
"""Called with (bytes so far, total or None) while a body arrives."""


class FetchError(Exception):
    """A download that failed (no connection, TLS refused, HTTP error, too large...)."""


@dataclass(frozen=True, slots=True)
class Request:
    """What to fetch."""

    url: str
    username: str | None = None
    password: str | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    progress: Progress | None = None

    def __repr__(self) -> str:
        return f"Request({self.url!r}, user={self.username!r})"


Fetcher = Callable[[Request], Awaitable[bytes]]
"""Anything that turns a :class:`Request` into the body (tests pass a fake)."""


class HttpFetcher:
    """GET over http/https with the phone's TLS policy; ``trust()`` gives the current anchors."""

    def __init__(
        self,
        trust: Callable[[], TrustStore],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        user_agent: str = "sippa",
        minimum_version: Callable[[], ssl.TLSVersion] | None = None,
    ) -> None:
        self._trust = trust
        self._minimum_version = minimum_version
        self.timeout = timeout
        self.user_agent = user_agent

    def _context(self) -> ssl.SSLContext:
        ctx = make_client_context(self._trust(), verify=True, require_group_policy=False)
        if self._minimum_version is not None:
            ctx.minimum_version = max(ctx.minimum_version, self._minimum_version())
        return ctx

    async def __call__(self, request: Request) -> bytes:
        # imported on first fetch: an idle phone without profile rules never pays its ~15 MB
        import httpx  # noqa: PLC0415

        url = request.url
        auth = (
            httpx.BasicAuth(request.username, request.password or "")
            if request.username is not None
            else None
        )
        verify: ssl.SSLContext | bool = (
            self._context() if url.lower().startswith("https://") else False
        )
        try:
            async with (
                httpx.AsyncClient(
                    verify=verify,
                    trust_env=False,
                    follow_redirects=False,
                    timeout=self.timeout,
                    # identity: the body is exactly the file (a gzip profile stays gzip)
                    headers={"User-Agent": self.user_agent, "Accept-Encoding": "identity"},
                ) as client,
                client.stream("GET", url, auth=auth) as response,
            ):
                if response.status_code != 200:
                    raise FetchError(
                        f"{url}: HTTP {response.status_code} {response.reason_phrase}"
                    )
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                if total is not None and total > request.max_bytes:
                    raise FetchError(f"{url}: {total} bytes is more than {request.max_bytes}")
                body = bytearray()
                async for chunk in response.aiter_raw():
                    body += chunk
                    if len(body) > request.max_bytes:
                        raise FetchError(f"{url}: more than {request.max_bytes} bytes")
                    if request.progress is not None:
                        request.progress(len(body), total)
                return bytes(body)
        except FetchError:
            raise
        except httpx.ConnectError as exc:
            tls = _tls_cause(exc)
            if tls is not None:
                raise FetchError(f"{url}: {explain_tls_error(tls)}") from None
            raise FetchError(f"{url}: cannot connect: {exc}") from None
        except httpx.HTTPError as exc:
            raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from None
        except (ssl.SSLError, OSError) as exc:
            raise FetchError(f"{url}: {exc}") from None


def _tls_cause(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind an httpx/httpcore connection error, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
