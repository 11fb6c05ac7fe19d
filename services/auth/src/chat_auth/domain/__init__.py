"""Pure models and rules of the auth service: no I/O, no framework."""
