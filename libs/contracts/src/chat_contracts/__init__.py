"""Contracts shared by every service: topic registry, event envelope, command and event payloads.

Import payloads from their topic module (``chat_contracts.messages_events.MessageCreated``) and topics from
``chat_contracts.topics``; the names below are the ones nearly every producer and consumer needs.
"""

from chat_contracts.base import Contract
from chat_contracts.envelope import Envelope, Record, decode, encode
from chat_contracts.errors import ContractError
from chat_contracts.spec import TopicSpec
from chat_contracts.topics import TOPICS, topic_for

__all__ = [
    "TOPICS",
    "Contract",
    "ContractError",
    "Envelope",
    "Record",
    "TopicSpec",
    "decode",
    "encode",
    "topic_for",
]
