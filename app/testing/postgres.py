"""A throwaway PostgreSQL server for tests and benchmarks, started from the local binaries.

`PostgresCluster` runs `initdb` into a temporary directory and `pg_ctl start`s it on a free
loopback port with durability switched off (`fsync=off`): fast, and gone when stopped. As root
the binaries run as the `postgres` OS user through `runuser` (PostgreSQL refuses to run as
root). Nothing here is used by the service itself.

    with PostgresCluster.start_new() as cluster:
        url = cluster.url("postgres")  # postgresql+asyncpg://postgres@127.0.0.1:PORT/postgres
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

logger = logging.getLogger(__name__)

_OS_USER = "postgres"
_SETTINGS = """
# --- throwaway test cluster (app.testing.postgres) ---
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = ''
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
"""


class PostgresNotAvailableError(RuntimeError):
    """No PostgreSQL server binaries were found, or they cannot be run here."""


def find_bin_dir() -> Path | None:
    """Return the directory holding `initdb` and `pg_ctl`, or None when there is none.

    Looks on PATH first, then in `/usr/lib/postgresql/<version>/bin` (newest version first).
    """
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: _version_key(Path(p).parent.name),
        reverse=True,
    )
    for candidate in candidates:
        path = Path(candidate)
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    return None


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    """One throwaway PostgreSQL cluster: a data directory and, while started, a server."""

    def __init__(self, bin_dir: Path, base_dir: Path, port: int) -> None:
        self.bin_dir = bin_dir
        self.base_dir = base_dir
        self.data_dir = base_dir / "data"
        self.log_file = base_dir / "server.log"
        self.port = port
        self._as_postgres = os.geteuid() == 0

    @classmethod
    def start_new(cls, bin_dir: Path | None = None) -> Self:
        """Create a cluster in a new temporary directory and start it.

        Raises:
            PostgresNotAvailableError: no binaries, or the server did not start.
        """
        bin_dir = bin_dir or find_bin_dir()
        if bin_dir is None:
            raise PostgresNotAvailableError(
                "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in "
                "/usr/lib/postgresql/*/bin"
            )
        base_dir = Path(tempfile.mkdtemp(prefix="agent-service-pg-"))
        cluster = cls(bin_dir, base_dir, free_port())
        try:
            cluster.init()
            cluster.start()
        except BaseException:
            cluster.destroy()
            raise
        return cluster

    def init(self) -> None:
        """Run `initdb` and write the throwaway settings."""
        if self._as_postgres:
            try:
                entry = pwd.getpwnam(_OS_USER)
            except KeyError as exc:
                raise PostgresNotAvailableError(
                    "running as root, but there is no `postgres` OS user to run the server as"
                ) from exc
            os.chown(self.base_dir, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        )
        self._write_settings()

    def _write_settings(self) -> None:
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a", encoding="utf-8") as f:
            f.write(_SETTINGS.format(port=self.port))

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it accepts connections.

        A port taken since it was chosen is replaced by a fresh one, up to three times.
        """
        for attempt in range(3):
            try:
                self._run(
                    "pg_ctl",
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_file),
                    "-w",
                    "-t",
                    str(int(timeout)),
                    "start",
                )
                logger.info("postgres started port=%d pid=%s", self.port, self.pid)
                return
            except PostgresNotAvailableError:
                if attempt == 2 or "could not bind" not in self.server_log():
                    raise
                self.port = free_port()
                self._write_settings()  # the last `port =` line wins
        raise AssertionError("unreachable")

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server (`pg_ctl stop -m MODE`); kill the postmaster if that fails."""
        pid = self.pid
        if pid is None:
            return
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "30", "stop")
        except PostgresNotAvailableError:
            logger.warning("pg_ctl stop failed; killing postmaster pid=%d", pid)
            _kill(pid)

    def destroy(self) -> None:
        """Stop the server if it runs and delete its directory."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while the server runs, else None."""
        try:
            first = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
            pid = int(first)
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, owned by the postgres user
        return pid

    def url(self, database: str = "postgres") -> str:
        """Return the SQLAlchemy URL of `database` on this server (user `postgres`, trust auth)."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def server_log(self) -> str:
        """Return the server's log so far (for error messages)."""
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin_dir / tool), *args]
        if self._as_postgres:
            cmd = ["runuser", "-u", _OS_USER, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise PostgresNotAvailableError(
                f"{tool} failed (exit {proc.returncode}): {proc.stderr.strip() or proc.stdout}\n"
                f"{self.server_log()[-2000:]}"
            )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.destroy()


def _kill(pid: int) -> None:
    """SIGQUIT the postmaster (immediate shutdown), then SIGKILL it if it lingers."""
    try:
        os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())
