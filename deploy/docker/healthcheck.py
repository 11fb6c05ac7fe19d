"""The image's HEALTHCHECK: exit 0 when ``GET /healthz`` on this container answers 200, else 1.

``python /app/healthcheck.py /readyz`` probes readiness instead (docker compose uses it to order start-up).
Standard library only (the images carry no curl). The port is ``CHAT_HTTP_PORT`` (8000 by default), the one
``chat serve`` listens on.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 3.0


PATHS = ("/healthz", "/readyz")


def main(argv: list[str]) -> int:
    """Probe this container's liveness (or, with ``/readyz``, readiness) endpoint."""
    path = argv[0] if argv else "/healthz"
    if path not in PATHS:
        print(f"healthcheck: the path must be one of {', '.join(PATHS)}", file=sys.stderr)
        return 2
    port = int(os.environ.get("CHAT_HTTP_PORT", "8000"))
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"healthcheck: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
