"""Pure models and rules of the rooms service (no I/O)."""
