"""Test support shipped with the rooms service: the store contract suite every ``RoomsStore`` must pass."""
