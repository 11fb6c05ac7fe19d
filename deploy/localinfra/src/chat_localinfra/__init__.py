"""Real PostgreSQL, Kafka and Mongo-wire servers on this machine, for development and integration tests."""

from chat_localinfra.config import SERVICES, InfraConfig, Service
from chat_localinfra.errors import ConfigError, InfraError
from chat_localinfra.launcher import InfraUrls, ServiceStatus, current_urls, ensure_started, status, stop

__all__ = [
    "SERVICES",
    "ConfigError",
    "InfraConfig",
    "InfraError",
    "InfraUrls",
    "Service",
    "ServiceStatus",
    "current_urls",
    "ensure_started",
    "status",
    "stop",
]
