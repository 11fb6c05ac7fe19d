"""The auth service's own PostgreSQL database: engine, migrations."""

from __future__ import annotations

from pathlib import Path

MIGRATIONS = Path(__file__).parent / "migrations"
