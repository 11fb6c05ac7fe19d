"""Test support shipped with the auth service: the store contract suite every ``AuthStore`` must pass."""
