"""The web client's built files (clients/web/dist) at ``/``, in front of the HTTP app.

Paths the product serves itself (``/api/…``, ``/socket.io/…``, health, metrics, OpenAPI) always go to the app.
Any other GET or HEAD is a file of the build when one exists there, else ``index.html`` (the single-page app
routes in the browser). Vite names every file under ``assets/`` by its content hash, so those are cached for a
year; ``index.html`` is revalidated on every load so a new build is picked up at once.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

RESERVED: tuple[str, ...] = (
    "/api",
    "/socket.io",
    "/healthz",
    "/readyz",
    "/metrics",
    "/docs",
    "/redoc",
    "/openapi.json",
    "/dev",  # dev mode's mailbox page (chat_app.devmail); a 404 from the app in other modes
)
"""Path prefixes the web client never answers: the product's own routes."""

HASHED_CACHE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"

# The page and its assets come from this origin only; images may also be blob: URLs (attachments are fetched
# with the access token and shown from memory).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

NOT_BUILT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>chat: web client not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem">
<h1>Web client not built</h1>
<p>The server is running, but the web client has not been built: run <code>make web</code>
(Node.js 20+ with npm) and reload this page.</p>
<p>The HTTP APIs are under <code>/api/</code> and Socket.IO under <code>/socket.io/</code>.</p>
</body></html>
"""


def is_reserved(path: str) -> bool:
    """Whether ``path`` belongs to the product's own routes rather than to the web client."""
    return any(path == prefix or path.startswith(prefix + "/") for prefix in RESERVED)


def resolve(web_dir: Path, path: str) -> Path | None:
    """The file of the build that ``path`` names, or None (no such file, or a path that tries to leave it)."""
    if "\\" in path or "\x00" in path:
        return None
    parts = PurePosixPath(path).parts[1:]  # without the leading "/"
    if any(part in {"..", "."} or part.startswith(".") for part in parts):
        return None
    root = web_dir.resolve()
    candidate = root.joinpath(*parts).resolve() if parts else root / "index.html"
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def web_response(web_dir: Path | None, path: str) -> Response:
    """What a GET or HEAD of a non-reserved ``path`` answers."""
    index = web_dir / "index.html" if web_dir is not None else None
    if web_dir is None or index is None or not index.is_file():
        return HTMLResponse(NOT_BUILT_PAGE, status_code=503, headers={"Cache-Control": NO_CACHE, **PAGE_HEADERS})
    found = resolve(web_dir, path)
    if found is not None and found.name != "index.html":
        hashed = found.parent.name == "assets" and found.parent.parent == web_dir.resolve()
        return FileResponse(found, headers={"Cache-Control": HASHED_CACHE if hashed else NO_CACHE})
    if path.startswith("/assets/"):
        # A missing hashed asset is an old build's file: a 404, never the page in its place.
        return Response("Not found", status_code=404, media_type="text/plain", headers={"Cache-Control": NO_CACHE})
    return FileResponse(index, media_type="text/html", headers={"Cache-Control": NO_CACHE, **PAGE_HEADERS})


def serve_web(app: ASGIApp, web_dir: Path | None) -> ASGIApp:
    """An ASGI app that answers the web client's paths from ``web_dir`` and hands everything else to ``app``."""

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in {"GET", "HEAD"} and not is_reserved(scope["path"]):
            await web_response(web_dir, scope["path"])(scope, receive, send)
        else:
            await app(scope, receive, send)

    return dispatch
