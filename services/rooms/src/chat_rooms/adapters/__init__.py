"""Adapters of the rooms service to the outside world (PostgreSQL, Kafka, …)."""
