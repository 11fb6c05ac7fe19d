"""How the outside reaches the gateway service: HTTP routes and bus handlers."""
