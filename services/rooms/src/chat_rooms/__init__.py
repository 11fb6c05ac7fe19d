"""The rooms service."""
