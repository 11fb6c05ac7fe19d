"""How the outside reaches the rooms service: HTTP routes and bus handlers."""
