"""The arguments the Kafka bus gives aiokafka's clients (no broker needed)."""

from __future__ import annotations

import ssl

from chat_runtime.bus.kafka_setup import KafkaConfig, KafkaSecurity, admin_options, consumer_options, producer_options


def test_a_group_consumer_is_a_static_member_named_after_the_process_and_its_topic() -> None:
    config = KafkaConfig(bootstrap="k:9092", topic_prefix="t.", group_instance_id="messages-0")

    options = consumer_options(
        config, topic="chat.messages.commands", group="messages", start="earliest", broadcast=False
    )

    assert options["group_id"] == "t.messages"
    assert options["group_instance_id"] == "messages-0.chat.messages.commands"


def test_each_topic_of_one_process_gets_its_own_member_name() -> None:
    config = KafkaConfig(bootstrap="k:9092", group_instance_id="messages-0")

    names = {
        consumer_options(config, topic=topic, group="messages", start="earliest", broadcast=False)["group_instance_id"]
        for topic in ("chat.rooms.events", "chat.users.events", "chat.messages.commands")
    }

    assert len(names) == 3


def test_without_an_instance_name_consumers_are_dynamic_members() -> None:
    config = KafkaConfig(bootstrap="k:9092")

    options = consumer_options(config, topic="chat.rooms.events", group="messages", start="earliest", broadcast=False)

    assert options["group_id"] == "messages"
    assert options["group_instance_id"] is None


def test_a_broadcast_reader_joins_no_group_even_with_an_instance_name() -> None:
    config = KafkaConfig(bootstrap="k:9092", group_instance_id="gateway-0")

    options = consumer_options(config, topic="chat.messages.events", group="fanout", start="latest", broadcast=True)

    assert options["group_id"] is None
    assert options["group_instance_id"] is None
    assert options["auto_offset_reset"] == "latest"


def test_every_client_connects_to_the_configured_cluster() -> None:
    config = KafkaConfig(bootstrap="a:9092,b:9092", client_id="chat-messages")

    for options in (
        consumer_options(config, topic="x", group="g", start="earliest", broadcast=False),
        producer_options(config),
        admin_options(config),
    ):
        assert options["bootstrap_servers"] == "a:9092,b:9092"
        assert str(options["client_id"]).startswith("chat-messages")


def test_plaintext_clients_get_no_tls_and_no_sign_in() -> None:
    options = producer_options(KafkaConfig(bootstrap="k:9092"))

    assert options["security_protocol"] == "PLAINTEXT"
    assert "ssl_context" not in options
    assert "sasl_mechanism" not in options


def test_every_client_signs_in_over_tls_with_sasl_ssl() -> None:
    security = KafkaSecurity(
        protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-256", sasl_username="chat", sasl_password="pw"
    )
    config = KafkaConfig(bootstrap="k:9093", security=security)

    for options in (
        consumer_options(config, topic="x", group="g", start="earliest", broadcast=False),
        consumer_options(config, topic="x", group="g", start="latest", broadcast=True),
        producer_options(config),
        admin_options(config),
    ):
        assert options["security_protocol"] == "SASL_SSL"
        assert isinstance(options["ssl_context"], ssl.SSLContext)
        assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED
        assert (options["sasl_mechanism"], options["sasl_plain_username"], options["sasl_plain_password"]) == (
            "SCRAM-SHA-256",
            "chat",
            "pw",
        )


def test_sasl_plaintext_signs_in_without_tls() -> None:
    security = KafkaSecurity(protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username="u", sasl_password="p")

    options = admin_options(KafkaConfig(bootstrap="k:9092", security=security))

    assert options["sasl_mechanism"] == "PLAIN"
    assert "ssl_context" not in options


def test_the_password_is_not_in_the_config_repr() -> None:
    security = KafkaSecurity(protocol="SASL_SSL", sasl_mechanism="PLAIN", sasl_username="u", sasl_password="hunter22")

    assert "hunter22" not in repr(KafkaConfig(bootstrap="k:9092", security=security))
