"""RFC 9457 problem details with a stable machine ``code`` for every REST error."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chat_runtime.errors import CodedError

PROBLEM_JSON = "application/problem+json"

log = structlog.get_logger("chat.http")

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class Problem(BaseModel):
    """An RFC 9457 problem document as this platform sends it."""

    type: str = Field(examples=["urn:chat:problem:rate_limited"])
    title: str
    status: int
    code: str = Field(description="stable machine-readable error code")
    detail: str | None = None
    instance: str | None = None
    retry_after: float | None = Field(default=None, description="seconds to wait (rate limits)")
    errors: list[dict[str, Any]] | None = Field(default=None, description="validation errors")


def problem_responses(described: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given statuses, each a problem document."""
    return {
        status: {
            "model": Problem,
            "description": text,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status, text in described.items()
    }


class ProblemError(CodedError):
    """Raise from a route to answer with a problem document (``CodedError`` with the status first)."""

    def __init__(self, status: int, code: str, detail: str | None = None, **extra: Any) -> None:
        super().__init__(code, detail or code, status=status, **extra)


def problem_response(
    status: int, code: str, detail: str | None = None, *, instance: str | None = None, **extra: Any
) -> JSONResponse:
    """A problem+json response; ``type`` is a stable URN built from the code."""
    body: dict[str, Any] = {
        "type": f"urn:chat:problem:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    headers = {}
    if "retry_after" in extra:
        headers["Retry-After"] = str(max(1, round(float(extra["retry_after"]))))
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error a problem document: our own, validation, routing and unexpected ones."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, CodedError):  # pragma: no cover - registered for CodedError only
            raise exc
        extra = dict(exc.extra)
        if exc.retry_after is not None:
            extra["retry_after"] = exc.retry_after
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        response = problem_response(exc.status, exc.code, exc.message, instance=request.url.path, **extra)
        if headers:
            response.headers.update(headers)
        return response

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, RequestValidationError):  # pragma: no cover
            raise exc
        errors = [
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "msg": str(err.get("msg", "")),
                "type": err.get("type"),
            }
            for err in exc.errors()
        ]
        return problem_response(
            422,
            "validation_failed",
            "The request does not match the schema.",
            instance=request.url.path,
            errors=errors,
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, StarletteHTTPException):  # pragma: no cover
            raise exc
        code = _STATUS_CODES.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem_response(exc.status_code, code, detail, instance=request.url.path)

    async def on_outage(request: Request, exc: Exception) -> JSONResponse:
        log.warning("http.store_unreachable", error=type(exc).__name__, path=request.url.path)
        response = problem_response(
            503, "unavailable", "A store this needs is unreachable; try again.", instance=request.url.path
        )
        response.headers["Retry-After"] = "2"
        return response

    app.add_exception_handler(CodedError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    for outage in store_outage_errors():
        app.add_exception_handler(outage, on_outage)
    app.add_middleware(UnexpectedErrorMiddleware)


def store_outage_errors() -> tuple[type[Exception], ...]:
    """Errors that mean "the database is unreachable" rather than "this request is wrong": answered 503 with
    ``unavailable`` (a client retries) instead of 500. Only drivers that are installed are listed."""
    found: list[type[Exception]] = []
    try:
        from pymongo.errors import ConnectionFailure
    except ImportError:  # pragma: no cover - a service without MongoDB
        pass
    else:
        found.append(ConnectionFailure)
    try:
        from sqlalchemy.exc import InterfaceError, OperationalError
        from sqlalchemy.exc import TimeoutError as PoolTimeout
    except ImportError:  # pragma: no cover - a service without PostgreSQL
        pass
    else:
        # OperationalError: the server refused or dropped the connection (or a transient failure such as a
        # deadlock, which a retry also fixes); InterfaceError: a dead connection; PoolTimeout: no connection free.
        found.extend([OperationalError, InterfaceError, PoolTimeout])
    return tuple(found)


class UnexpectedErrorMiddleware:
    """Answer an unhandled exception with a 500 problem that leaks nothing, and log it once.

    Starlette's own last-resort handler re-raises after answering; this keeps the error inside the app.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("http.unhandled_error", path=scope.get("path"))
            if started:
                raise
            response = problem_response(
                500, "internal_error", "An unexpected error occurred.", instance=scope.get("path")
            )
            await response(scope, receive, send)
