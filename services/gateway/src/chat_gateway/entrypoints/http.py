"""HTTP routes of the gateway, mounted under /api/gateway."""

from __future__ import annotations

from importlib.metadata import version

from fastapi import APIRouter


def build_router() -> APIRouter:
    """The gateway's routes."""
    router = APIRouter(tags=["gateway"])

    @router.get("/", summary="Which service answers here, and its version")
    async def about() -> dict[str, str]:
        return {"service": "gateway", "version": version("chat-gateway"), "socket_path": "/socket.io/"}

    return router
