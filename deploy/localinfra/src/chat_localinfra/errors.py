"""Errors the launcher reports to people: each message says what failed and what to do about it."""


class InfraError(RuntimeError):
    """A local server could not be installed, started, probed or stopped."""


class ConfigError(InfraError):
    """The launcher's environment variables or arguments are invalid."""
