"""How the outside reaches the auth service: HTTP routes and bus handlers."""
