"""Use cases of the auth service, one function per command."""
