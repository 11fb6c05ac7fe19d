"""ASGI middleware counting and timing HTTP requests by route template, method and status.

``route`` is the matched route's full path template (``/api/rooms/{room_id}``: FastAPI leaves the route it matched
in ``scope["route"]``, whose own ``path`` lacks the prefixes of the routers that include it, so the templates are
learnt from the built app), or ``unmatched``: never the raw path, so a scan of random URLs cannot grow the
label set. ``service`` is the module whose prefix the path is under (``/api/<name>/…``, also for an unmatched path
there), else ``app`` (``/healthz``, ``/metrics``…).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from typing import Any

from fastapi.routing import iter_route_contexts
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "unmatched"
APP_SERVICE = "app"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods kept as they are; any other is counted as ``other`` (the client chooses it)."""
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    """The HTTP metrics of one app: a request counter and a latency histogram on ``registry``."""

    def __init__(self, registry: CollectorRegistry, services: Collection[str]) -> None:
        self.requests = Counter(
            "chat_http_requests_total",
            "HTTP requests answered, by service module, route template, method and status code.",
            ["service", "route", "method", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "chat_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by service module, route template and method.",
            ["service", "route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._prefixes = {f"/api/{name}/": name for name in services}
        self._children: dict[tuple[str, str, str, int], tuple[Any, Any]] = {}
        self._templates: dict[int, str] = {}
        """id() of each route object → its full path template."""

    def learn_routes(self, routes: Sequence[BaseRoute]) -> None:
        """Learn the full path template of every route of the built app (``app.routes``)."""
        for context in iter_route_contexts(routes):
            if context.path_format:
                self._templates[id(context.original_route)] = context.path_format

    def route_of(self, scope: Scope) -> str:
        """The template of the route that served the request, or ``unmatched``."""
        route = scope.get("route")
        if route is None:
            return UNMATCHED
        template = self._templates.get(id(route))
        if template is None:
            path = getattr(route, "path", None)
            template = path if isinstance(path, str) else UNMATCHED
        return template

    def observe(self, service: str, route: str, method: str, status: int, seconds: float) -> None:
        key = (service, route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(service, route, method, str(status)),
                self.duration.labels(service, route, method),
            )
            self._children[key] = children
        counted, timed = children
        counted.inc()
        timed.observe(seconds)

    def service_of(self, path: str) -> str:
        """The module whose prefix ``path`` is under, else ``app``."""
        if not path.startswith("/api/"):
            return APP_SERVICE
        end = path.find("/", 5)
        return self._prefixes.get(path[: end + 1] if end > 0 else path + "/", APP_SERVICE)


class HttpMetricsMiddleware:
    """Observe every HTTP request once its response is over (or failed: counted as 500)."""

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            elapsed = time.perf_counter() - started
            service = self.metrics.service_of(scope.get("path", ""))
            self.metrics.observe(service, self.metrics.route_of(scope), _method_of(scope), status, elapsed)


def _method_of(scope: Scope) -> str:
    method: str = scope.get("method", "")
    return method if method in METHODS else "other"
