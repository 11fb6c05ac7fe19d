"""Test support shipped with the messages service: the store contract suite every ``MessageStore`` must pass."""
