"""Liveness (/healthz), readiness (/readyz) and Prometheus (/metrics) endpoints."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

ReadinessCheck = Callable[[], Awaitable[None]]
"""Returns when the dependency answers; raises (any exception) when it does not."""

CHECK_TIMEOUT_SECONDS = 2.0


async def run_checks(
    checks: Mapping[str, ReadinessCheck], timeout: float = CHECK_TIMEOUT_SECONDS
) -> dict[str, dict[str, object]]:
    """Run every check concurrently with a timeout; a result per check name."""

    async def one(check: ReadinessCheck) -> dict[str, object]:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(check(), timeout)
        except TimeoutError:
            return {"ok": False, "error": f"timed out after {timeout}s"}
        except Exception as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}

    names = list(checks)
    results = await asyncio.gather(*(one(checks[name]) for name in names))
    return dict(zip(names, results, strict=True))


def health_router(checks: Mapping[str, ReadinessCheck], registry: CollectorRegistry) -> APIRouter:
    """The three operational endpoints of one process."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: every dependency of this process answers")
    async def readyz() -> JSONResponse:
        results = await run_checks(checks)
        ready = all(result["ok"] for result in results.values())
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "checks": results},
            status_code=200 if ready else 503,
        )

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
