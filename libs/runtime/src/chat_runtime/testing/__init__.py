"""Test support shipped with the runtime: the bus contract suite every adapter must pass."""
