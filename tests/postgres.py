"""A throw-away PostgreSQL server for the tests, started on 127.0.0.1.

It uses the Debian `postgresql` binaries that the test set-up installs; as
root it runs them as the `postgres` user (initdb refuses root). Where no
server can be started, `start_postgres` returns the reason instead."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass
class PostgresServer:
    data_dir: Path
    port: int
    bin_dir: Path
    as_user: list[str]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://grm@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql+psycopg://grm@127.0.0.1:{self.port}/{name}"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run([*self.as_user, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args],
                       capture_output=True, check=True)

    def go_away(self) -> None:
        """Stop the server, keeping its data (a database that went away)."""
        self._pg_ctl("-m", "fast", "stop")

    def come_back(self) -> None:
        options = f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-o", options, "-w", "-l", str(self.data_dir / "log"), "start")

    def stop(self) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_postgres() -> PostgresServer | str:
    """A running server, or the reason why none could be started."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not candidates:
        return "PostgreSQL binaries not found (install Debian's postgresql package)"
    bin_dir = candidates[-1].parent
    as_user: list[str] = []
    data_dir = Path(tempfile.mkdtemp(prefix="grm-pg-"))
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root without runuser: cannot start PostgreSQL as postgres"
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(data_dir, "postgres", "postgres")
    port = _free_port()
    init = subprocess.run(
        [*as_user, str(bin_dir / "initdb"), "-D", str(data_dir), "-A", "trust", "-U", "grm", "-E", "UTF8"],
        capture_output=True,
        text=True,
        check=False,  # a failure is returned as the reason, below
    )
    if init.returncode != 0:
        shutil.rmtree(data_dir, ignore_errors=True)
        return f"initdb failed: {init.stderr.strip()[-300:]}"
    options = f"-p {port} -k {data_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = subprocess.run(
        [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-o", options, "-w", "-l", str(data_dir / "log"), "start"],
        capture_output=True,
        text=True,
        check=False,  # a failure is returned as the reason, below
    )
    if start.returncode != 0:
        log = (data_dir / "log").read_text() if (data_dir / "log").exists() else start.stderr
        shutil.rmtree(data_dir, ignore_errors=True)
        return f"PostgreSQL did not start: {log.strip()[-300:]}"
    return PostgresServer(data_dir, port, bin_dir, as_user)
