"""The messages service."""
