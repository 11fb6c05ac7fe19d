"""The body of every service's Alembic ``env.py``: online migrations on a synchronous psycopg engine."""

from __future__ import annotations

from chat_runtime.extras import missing_extra

try:
    from alembic import context
    from sqlalchemy import MetaData, engine_from_config, pool
except ImportError as missing:
    raise missing_extra("postgres", __name__, missing) from missing


def run(target_metadata: MetaData | None = None) -> None:
    """Run the migrations Alembic selected, in one transaction per migration."""
    config = context.config
    if context.is_offline_mode():
        context.configure(
            url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    connectable.dispose()
