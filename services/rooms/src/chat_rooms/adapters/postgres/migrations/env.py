"""Alembic environment of the rooms service."""

from chat_runtime import alembic_env

alembic_env.run()
