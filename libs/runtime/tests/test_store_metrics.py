"""Store latency by operation: one histogram per process, and PostgreSQL statements observed by their kind."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from chat_runtime.postgres import observe_statements, statement_kind
from chat_runtime.store_metrics import StoreMetrics


def observed(registry: CollectorRegistry, store: str, operation: str) -> float:
    labels = {"store": store, "operation": operation}
    return registry.get_sample_value("chat_store_operation_seconds_count", labels) or 0.0


def test_every_store_of_a_process_shares_one_histogram() -> None:
    registry = CollectorRegistry()
    assert StoreMetrics.on(registry) is StoreMetrics.on(registry)
    StoreMetrics.on(registry).observe("mongo", "insert", 0.002)
    StoreMetrics.on(registry).observe("postgres", "select", 0.001)
    assert observed(registry, "mongo", "insert") == 1
    assert observed(registry, "postgres", "select") == 1


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        ("SELECT 1", "select"),
        ("\n  INSERT INTO outbox (id) VALUES (%(id)s)", "insert"),
        ("(SELECT 1) UNION (SELECT 2)", "select"),
        ("update users set name = 'x'", "update"),
        ("WITH moved AS (DELETE FROM t RETURNING *) SELECT 1", "with"),
        ("-- a comment\nSELECT 1", "other"),
        ("", "other"),
    ],
)
def test_a_statement_is_labelled_by_its_first_keyword(statement: str, kind: str) -> None:
    assert statement_kind(statement) == kind


def test_statements_of_an_engine_are_observed_by_kind_failed_ones_too() -> None:
    registry = CollectorRegistry()
    engine = create_engine("sqlite://")
    observe_statements(engine, StoreMetrics.on(registry))
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE things (id INTEGER)"))
        connection.execute(text("INSERT INTO things VALUES (1)"))
        connection.execute(text("SELECT id FROM things"))
        connection.execute(text("SELECT id FROM things"))
    with pytest.raises(OperationalError), engine.begin() as connection:
        connection.execute(text("DELETE FROM missing"))
    assert observed(registry, "postgres", "create") == 1
    assert observed(registry, "postgres", "insert") == 1
    assert observed(registry, "postgres", "select") == 2
    assert observed(registry, "postgres", "delete") == 1
