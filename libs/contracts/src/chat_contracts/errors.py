"""Errors raised while decoding records."""


class ContractError(ValueError):
    """A record that cannot be turned into a known contract: it belongs in the dead-letter topic."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
