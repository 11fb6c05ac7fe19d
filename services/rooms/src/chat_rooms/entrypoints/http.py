"""HTTP routes of the rooms service, mounted under /api/rooms."""

from __future__ import annotations

from importlib.metadata import version

from fastapi import APIRouter


def build_router() -> APIRouter:
    """The rooms service's routes."""
    router = APIRouter(tags=["rooms"])

    @router.get("/", summary="Which service answers here, and its version")
    async def about() -> dict[str, str]:
        return {"service": "rooms", "version": version("chat-rooms")}

    return router
