"""Pure models and rules of the messages service (no I/O)."""
