#!/bin/sh
# One login role and one database per PostgreSQL service, each role owning only its own database.
# The postgres image runs this once, when the data volume is empty; it reads the passwords from the container's
# environment (AUTH_DB_PASSWORD, ROOMS_DB_PASSWORD, set from deploy/compose/.env). The image may source this
# file instead of executing it, so it neither exits nor changes shell options.
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    -v auth_password="${AUTH_DB_PASSWORD:?AUTH_DB_PASSWORD is not set}" \
    -v rooms_password="${ROOMS_DB_PASSWORD:?ROOMS_DB_PASSWORD is not set}" <<'SQL'
CREATE ROLE chat_auth LOGIN PASSWORD :'auth_password';
CREATE DATABASE chat_auth OWNER chat_auth;
REVOKE ALL ON DATABASE chat_auth FROM PUBLIC;
CREATE ROLE chat_rooms LOGIN PASSWORD :'rooms_password';
CREATE DATABASE chat_rooms OWNER chat_rooms;
REVOKE ALL ON DATABASE chat_rooms FROM PUBLIC;
SQL
