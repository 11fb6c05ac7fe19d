"""In-memory stand-ins for the gateway's ports, for tests and benchmarks (never used by the product)."""
