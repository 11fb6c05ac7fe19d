"""`chat up` points the services at its embedded servers through their settings, never the environment."""

from __future__ import annotations

from chat_app.embedded import store_settings

POSTGRES = "postgresql://postgres:pw@127.0.0.1:54329/postgres"
MONGO = "mongodb://127.0.0.1:27019/?directConnection=true"


def test_each_postgres_service_gets_its_own_database_on_the_embedded_server() -> None:
    given = store_settings(POSTGRES, MONGO, {})
    assert given == {
        "auth": {"database_url": "postgresql+psycopg://postgres:pw@127.0.0.1:54329/chat_auth"},
        "rooms": {"database_url": "postgresql+psycopg://postgres:pw@127.0.0.1:54329/chat_rooms"},
        "messages": {"mongo_url": MONGO},
    }


def test_a_url_the_environment_names_is_kept() -> None:
    environ = {"CHAT_ROOMS_DATABASE_URL": "postgresql+psycopg://elsewhere/rooms", "CHAT_MESSAGES_MONGO_URL": "x"}
    given = store_settings(POSTGRES, MONGO, environ)
    assert set(given) == {"auth"}


def test_an_empty_variable_counts_as_unset() -> None:
    assert "auth" in store_settings(POSTGRES, None, {"CHAT_AUTH_DATABASE_URL": ""})
