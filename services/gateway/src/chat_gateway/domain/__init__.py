"""Pure models and rules of the gateway service (no I/O)."""
