"""The web page and JSON API, served by the gateway in its own event loop.

`serve(host)` (gateway/web/server.py) runs a starlette app under uvicorn inside the gateway's
anyio task group; the handlers read the GatewayCore directly (one thread, one loop) and act
on it through its action methods. Read-only without the API token; every action and every
configuration edit needs it. The page (gateway/web/static) is plain HTML, CSS and
JavaScript served from package data: no build step, no CDN, works offline.
"""

from gateway.web.host import Host

__all__ = ["Host"]
