"""The gateway tests' shared fixture: a cluster of gateway instances on one in-process broker (``harness``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .harness import Cluster


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    cluster = Cluster(data_dir=tmp_path)
    try:
        yield cluster
    finally:
        await cluster.close()
