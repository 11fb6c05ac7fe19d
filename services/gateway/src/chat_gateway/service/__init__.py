"""Use cases of the gateway service, one function per command."""
