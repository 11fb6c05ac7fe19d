"""What a MongoDB client sent: a command listener for the tests that check the commands a store sends."""

from __future__ import annotations

from pymongo import monitoring


class Recorded(monitoring.CommandListener):
    """The commands a client sent."""

    def __init__(self) -> None:
        self.sent: list[monitoring.CommandStartedEvent] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.sent.append(event)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass
