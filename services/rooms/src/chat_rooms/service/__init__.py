"""Use cases of the rooms service, one function per command."""
