"""HTTP routes of the messages service, mounted under /api/messages."""

from __future__ import annotations

from importlib.metadata import version

from fastapi import APIRouter


def build_router() -> APIRouter:
    """The messages service's routes."""
    router = APIRouter(tags=["messages"])

    @router.get("/", summary="Which service answers here, and its version")
    async def about() -> dict[str, str]:
        return {"service": "messages", "version": version("chat-messages")}

    return router
