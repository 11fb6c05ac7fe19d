"""Adapters of the gateway: reading history from the messages service."""
