"""Alembic environment of the auth service."""

from chat_runtime import alembic_env

alembic_env.run()
