"""Use cases of the messages service, one function per command."""
