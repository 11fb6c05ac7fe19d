"""schemathesis against every service's OpenAPI, through the gateway's one origin (the all-in-one product on real
PostgreSQL, the Mongo-wire server and SMTP): generated valid and invalid requests, signed in as a real user.
Required: no server error (5xx other than a documented 503), every response matching the documented schema. The
number of requests is printed. ``CHAT_OPENAPI_EXAMPLES`` sets examples per operation (default 8; more in
`make chaos`).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from .product import Product, product

__all__ = ["product"]

EXAMPLES = int(os.environ.get("CHAT_OPENAPI_EXAMPLES", "8"))


async def test_every_operation_answers_without_server_errors_and_as_documented(
    product: Product, tmp_path: Path
) -> None:
    ada = await product.sign_up("fuzzer")
    report = tmp_path / "schemathesis.ndjson"
    schemathesis = Path(sys.executable).with_name("st")
    process = await asyncio.create_subprocess_exec(
        str(schemathesis),
        "run",
        f"{product.base}/openapi.json",
        "--header",
        f"Authorization: Bearer {ada['access_token']}",
        "--checks",
        "not_a_server_error,response_schema_conformance,content_type_conformance",
        "--max-examples",
        str(EXAMPLES),
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        "1",  # with threads, CPython 3.11's ast.parse inside hypothesis can fail ("recursion depth mismatch")
        "--seed",
        os.environ.get("CHAT_OPENAPI_SEED", "20261121"),
        "--request-timeout",
        "20",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
        "--no-color",
        # Ending the fuzzer's own session would turn every later request into a 401 and test nothing.
        "--exclude-path",
        "/api/auth/logout",
        "--exclude-path",
        "/api/auth/logout-all",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,  # schemathesis keeps its state in ./.schemathesis
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    counts = [line.strip() for line in text.splitlines() if " generated" in line]
    operations = [line.strip() for line in text.splitlines() if line.strip().startswith("Tested:")]
    print(f"schemathesis: operations {operations[-1:]}, test cases {counts[-1:]}")
    assert process.returncode == 0, text[-6000:]
    assert counts, text[-2000:]
