"""How the outside reaches the messages service: HTTP routes and bus handlers."""
