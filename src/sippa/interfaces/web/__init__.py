"""L4: the HTTPS administration pages, the phone page and the REST API (FastAPI + Jinja2).

:func:`create_app` builds the ASGI app for a :class:`WebContext` (the config store, the
accounts, the trust anchors and optionally the running phone); :func:`run_web` serves it over
HTTPS (with an optional HTTP port that redirects) until cancelled.
"""

from sippa.interfaces.web.app import WebContext, create_app
from sippa.interfaces.web.phone import EventHub, PhoneAdapter, PhoneService
from sippa.interfaces.web.server import WebServer, run_phone_web, run_web

__all__ = [
    "EventHub",
    "PhoneAdapter",
    "PhoneService",
    "WebContext",
    "WebServer",
    "create_app",
    "run_phone_web",
    "run_web",
]
