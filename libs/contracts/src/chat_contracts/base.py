"""Base class every command and event payload derives from."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class Contract(BaseModel):
    """A payload that crosses a service boundary: strict, immutable, versioned.

    Subclasses declare ``type: Literal["…"] = "…"`` (the discriminator) and may raise
    ``SCHEMA_VERSION`` when they change in a way consumers should know about.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    SCHEMA_VERSION: ClassVar[int] = 1
