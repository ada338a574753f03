"""A real PostgreSQL server for the tests, from Debian's `postgresql` package: initdb and pg_ctl in a temporary
folder, on loopback, with password authentication; `.ci/run` installs the package where it is missing."""

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

USER = "mlplab"


def binaries() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, or Debian's versioned folder."""
    if found := shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    return Path(folders[-1]) if folders else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """One server; `url(database)` creates the database and gives its SQLAlchemy URL (driver psycopg), without the
    password, which the `postgres` fixture puts in PGPASSWORD, as README says to."""

    def __init__(self, folder: Path, bin_dir: Path) -> None:
        self.folder, self.bin_dir = folder, bin_dir
        self.password, self.port = secrets.token_hex(8), free_port()
        # initdb and the server refuse to run as root: as root, they run as Debian's postgres user.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def run(self, *command: str) -> None:
        subprocess.run([*self.as_user, *command], check=True, capture_output=True, text=True)

    def start(self) -> None:
        data, pwfile = self.folder / "data", self.folder / "password"
        pwfile.write_text(self.password, encoding="utf-8")
        if self.as_user:
            shutil.chown(self.folder, "postgres")
            shutil.chown(pwfile, "postgres")
        self.run(
            str(self.bin_dir / "initdb"), "-D", str(data), "-U", USER, "--auth=scram-sha-256", f"--pwfile={pwfile}"
        )
        self.restart()

    def restart(self) -> None:
        """Starts the server (again, after stop: a database that went away and came back); running, it stays so."""
        status = [*self.as_user, str(self.bin_dir / "pg_ctl"), "-D", str(self.folder / "data"), "status"]
        if subprocess.run(status, capture_output=True).returncode == 0:
            return
        options = f"-p {self.port} -h 127.0.0.1 -k {self.folder}"
        log, data = self.folder / "server.log", self.folder / "data"
        self.run(str(self.bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start")

    def stop(self) -> None:
        self.run(str(self.bin_dir / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "stop")

    def url(self, database: str) -> str:
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{database}"')
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"  # the password: PGPASSWORD

    def dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={USER} password={self.password} dbname={database}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Server]:
    """A PostgreSQL server for the session; skipped, saying why, without the binaries or the driver."""
    bin_dir = binaries()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        pytest.skip("PostgreSQL's initdb and pg_ctl are missing (Debian: apt-get install postgresql)")
    pytest.importorskip("psycopg", reason="the PostgreSQL driver is missing: pip install -e '.[postgres]'")
    folder = Path(tempfile.mkdtemp(prefix="mlplab-postgres-"))  # in /tmp, which the postgres user can reach
    server = Server(folder, bin_dir)
    try:
        server.start()
        os.environ["PGPASSWORD"] = server.password  # for this process's connections and the processes it starts
        yield server
        server.stop()
    finally:
        os.environ.pop("PGPASSWORD", None)
        shutil.rmtree(folder, ignore_errors=True)
