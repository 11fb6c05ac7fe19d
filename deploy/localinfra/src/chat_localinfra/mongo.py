"""The Mongo-wire server: SecantusDB in its own virtualenv, as a separate process.

SecantusDB is GPL-2.0. It is installed from deploy/secantus/requirements.txt into <infra>/secantus-venv
and only ever run as a server; no workspace package may import it or depend on it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

from chat_localinfra.config import MONGO_PORT_ENV, mongo_url
from chat_localinfra.errors import InfraError
from chat_localinfra.probes import probe_mongo
from chat_localinfra.process import run_command, spawn_detached
from chat_localinfra.servers import Progress, Server, child_env

_STAMP = ".chat-requirements.sha256"


def find_uv() -> str:
    # `uv run` exports UV with its own path; otherwise look on PATH.
    for candidate in (os.environ.get("UV"), shutil.which("uv")):
        if candidate and Path(candidate).is_file():
            return candidate
    raise InfraError("the Mongo-wire server is installed with uv, which is not on PATH; install uv first")


def _base_python() -> str:
    # The workspace pins Python 3.11, so the interpreter running us is one already on this machine: reuse it
    # rather than letting uv look for (or download) another.
    return sys.executable


CACHE_MIB_RANGE = (1024, 2048)
"""The least and the most WiredTiger cache the server gets, in MiB (``cache_size``)."""


def cache_size(memory_bytes: int | None = None) -> str:
    """WiredTiger's cache size flag: a quarter of the machine's memory, within ``CACHE_MIB_RANGE``. The cache grows
    to this only as data is touched. Data past it costs the server CPU on every insert (bench/soak.py,
    docs/benchmarks.md): 1,000,000 messages (1.2 GiB) on a 1 GiB cache measured 1.48x the CPU per message of a
    fresh server, on a 2 GiB one 1.10x; at 256M, 200,000 messages already cost 1.74x."""
    if memory_bytes is None:
        memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    least, most = CACHE_MIB_RANGE
    return f"{min(most, max(least, memory_bytes // 4 // 2**20))}M"


class MongoServer(Server):
    service = "mongo"
    human_name = "SecantusDB (Mongo wire)"

    @property
    def requirements(self) -> Path:
        return self.config.repo_root / "deploy" / "secantus" / "requirements.txt"

    @property
    def venv(self) -> Path:
        return self.config.infra_dir / "secantus-venv"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def config_file(self) -> Path:
        return self.home / "secantusd.toml"

    @property
    def url(self) -> str:
        return mongo_url(self.config.mongo_port)

    @property
    def ports(self) -> dict[str, int]:
        return {MONGO_PORT_ENV: self.config.mongo_port}

    @property
    def process_marker(self) -> str:
        return str(self.data_dir)

    def prepare(self, progress: Progress) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        # Passing --config turns off discovery of ./secantusd.toml and ~/.secantus/, so only our flags count.
        if not self.config_file.exists():
            self.config_file.write_text(
                "# Intentionally empty: chat_localinfra passes every setting on the command line.\n",
                encoding="utf-8",
            )
        self._ensure_venv(progress)

    def argv(self) -> list[str]:
        """The server's command line: every setting as a flag (see ``prepare``), then CHAT_INFRA_MONGO_ARGS."""
        return [
            str(self.venv / "bin" / "secantusd-py"),
            "--config",
            str(self.config_file),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.config.mongo_port),
            "--storage-path",
            str(self.data_dir),
            "--log-level",
            "WARNING",
            "--cache-size",
            cache_size(),
            # Not a single-member replica set: nothing here uses change streams or transactions, and a replica
            # set logs every write to an oplog that the server keeps pruning (docs/benchmarks.md). A standalone
            # writes no oplog at all.
            "--standalone",
            *self.config.mongo_args,
        ]

    def launch(self, timeout: float) -> int:
        return spawn_detached(self.argv(), log_path=self.log_path, env=child_env(PYTHONUNBUFFERED="1"))

    def probe(self) -> None:
        probe_mongo(self.url, timeout=1.0)

    def _ensure_venv(self, progress: Progress) -> None:
        if not self.requirements.is_file():
            raise InfraError(f"missing {self.requirements} (the pinned SecantusDB server requirements)")
        wanted = hashlib.sha256(self.requirements.read_bytes()).hexdigest()
        stamp = self.venv / _STAMP
        server = self.venv / "bin" / "secantusd-py"
        if server.is_file() and stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == wanted:
            return
        progress(f"mongo: installing SecantusDB into {self.venv} (once per requirements.txt change)")
        uv = find_uv()
        env = child_env()
        run_command(
            [uv, "venv", "--clear", "--quiet", "--python", _base_python(), str(self.venv)],
            what="creating the SecantusDB virtualenv",
            timeout=300,
            env=env,
        )
        run_command(
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                str(self.venv / "bin" / "python"),
                "--require-hashes",
                "-r",
                str(self.requirements),
            ],
            what="installing SecantusDB (pinned, hash-checked)",
            timeout=600,
            env=env,
        )
        if not server.is_file():
            raise InfraError(f"SecantusDB installed but {server} is missing")
        stamp.write_text(wanted + "\n", encoding="utf-8")
