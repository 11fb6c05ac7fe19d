"""Adapters of the auth service to the outside world (PostgreSQL, Kafka, …)."""
