"""Adapters of the messages service to the outside world (MongoDB, Kafka, …)."""
