"""HTTP routes of the auth service, mounted under /api/auth."""

from __future__ import annotations

from importlib.metadata import version

from fastapi import APIRouter


def build_router() -> APIRouter:
    """The auth service's routes."""
    router = APIRouter(tags=["auth"])

    @router.get("/", summary="Which service answers here, and its version")
    async def about() -> dict[str, str]:
        return {"service": "auth", "version": version("chat-auth")}

    return router
