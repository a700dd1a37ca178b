"""Private servers for the faults that restart a whole server: a RabbitMQ node and a PostgreSQL cluster of
their own, on free loopback ports, in a temporary folder that is deleted (with the servers stopped) when
the ``with`` block ends, whatever happened inside it.

The shared RabbitMQ (5672) and PostgreSQL (5432) that other test runs use are never touched, nor a broker or
ledger named in the user's settings: everything here has its own node name, ports, data and sockets.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

PG_BIN = Path(os.environ.get("AUTOCLERK_PG_BIN", "/usr/lib/postgresql/15/bin"))
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")  # Debian's /usr/sbin wrappers switch user and log to /var/log
START_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {timeout_s:g} s")
        time.sleep(0.2)


class PrivateRabbitmq:
    """A RabbitMQ node of its own (``<name>-<port>@localhost``, ``autoclerk-chaos`` unless named), guest/guest on
    127.0.0.1:<port>."""

    def __init__(self, folder: Path, name: str = "autoclerk-chaos") -> None:
        self.folder = folder
        self.port, dist = free_port(), free_port()
        self.node = f"{name}-{self.port}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        self.env = {**os.environ, "HOME": str(folder), "RABBITMQ_NODENAME": self.node,
                    "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(dist),
                    "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1", "ERL_EPMD_ADDRESS": "127.0.0.1",
                    "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
                    "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"), "RABBITMQ_LOG_BASE": str(folder / "log"),
                    "RABBITMQ_PID_FILE": str(folder / "rabbit.pid"), "RABBITMQ_CONFIG_FILE": str(folder / "none"),
                    "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
                    "RABBITMQ_CONF_ENV_FILE": str(folder / "rabbitmq-env.conf")}

    def ctl(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        result = subprocess.run([str(RABBITMQ_BIN / "rabbitmqctl"), "-q", "-n", self.node, *args], env=self.env,
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {result.stderr.strip()[-500:]}")
        return result.stdout

    def start(self) -> None:
        self.folder.mkdir(exist_ok=True)
        (self.folder / "enabled_plugins").write_text("[].\n")  # no management listener on the shared node's port
        subprocess.run([str(RABBITMQ_BIN / "rabbitmq-server"), "-detached"], env=self.env, check=True,
                       capture_output=True, timeout=60)
        _wait(lambda: listening(self.port), START_TIMEOUT_S, f"RabbitMQ node {self.node} listening")
        self.ctl("await_startup")

    def url_for(self, vhost: str) -> str:
        """The URL of one of this node's virtual hosts."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{vhost}"

    def add_vhost(self, vhost: str) -> str:
        """Make a virtual host that guest may use fully; returns its URL."""
        self.ctl("add_vhost", vhost)
        self.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        return self.url_for(vhost)

    def pid(self) -> int:
        return int((self.folder / "rabbit.pid").read_text().split()[0])

    def kill(self) -> int:
        """kill -9 the node's Erlang VM; returns its pid once the port no longer answers."""
        pid = self.pid()
        os.kill(pid, signal.SIGKILL)
        _wait(lambda: not listening(self.port), 30, "the killed RabbitMQ node closing its port")
        return pid

    def stop(self) -> None:
        self.ctl("stop", check=False, timeout=60)
        try:
            os.kill(self.pid(), signal.SIGKILL)  # stop failed or is slow: this node is ours to end
        except (OSError, ValueError):
            pass


class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb into the folder, superuser ``autoclerk``, trust on loopback),
    started with ``pg_ctl`` on 127.0.0.1:<port> with its socket in the folder."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.data = folder / "data"
        self.admin_url = f"postgresql+psycopg://autoclerk@127.0.0.1:{self.port}/postgres"

    def _as_owner(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        # root may not run initdb or the server: run them as the postgres user, who owns the folder
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=timeout, cwd=self.folder)

    def _pg_ctl(self, *args: str) -> None:
        result = self._as_owner(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "server.log"),
                                "-w", "-t", str(START_TIMEOUT_S), *args)
        if result.returncode != 0:
            log = (self.folder / "server.log").read_text(errors="replace")[-1000:]
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed: {result.stderr.strip()} {log}")

    def start(self) -> None:
        self.folder.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        if not self.data.exists():
            result = self._as_owner(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "autoclerk",
                                    "--auth=trust", "--no-sync", "-E", "UTF8")
            if result.returncode != 0:
                raise RuntimeError(f"initdb failed: {result.stderr.strip()[-500:]}")
        self._pg_ctl("start", "-o", f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                                    "-c fsync=off -c max_connections=200")

    def restart(self, mode: str = "fast") -> None:
        """``pg_ctl restart``: ``fast`` ends every session cleanly, ``immediate`` is a crash and a recovery."""
        self._pg_ctl("restart", "-m", mode)

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def postmaster_pid_or_none(self) -> int | None:
        """The server's pid, or ``None`` when it is down (no pid file, or nothing listens on its port)."""
        if not (self.data / "postmaster.pid").exists() or not listening(self.port):
            return None
        return self.postmaster_pid()

    def create_database(self, name: str) -> str:
        from sqlalchemy import create_engine, text

        admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        return f"postgresql+psycopg://autoclerk@127.0.0.1:{self.port}/{name}"

    def terminate_connections(self, database: str) -> int:
        """``pg_terminate_backend`` every session on ``database`` but this one; returns how many ended."""
        from sqlalchemy import create_engine, text

        admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                return sum(1 for (ended,) in conn.execute(text(
                    "select pg_terminate_backend(pid) from pg_stat_activity "
                    "where datname = :db and pid <> pg_backend_pid()"), {"db": database}) if ended)
        finally:
            admin.dispose()

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._as_owner(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")


@contextmanager
def private_servers(rabbitmq: bool = True, postgres: bool = True, *, name: str = "autoclerk-chaos",
                    ) -> Iterator[tuple[PrivateRabbitmq | None, PrivatePostgres | None]]:
    """Start a private RabbitMQ node (named ``name``-<port>) and PostgreSQL cluster; stop them and delete their
    folder at the end."""
    folder = Path(tempfile.mkdtemp(prefix="autoclerk-servers-"))
    os.chmod(folder, 0o755)
    broker = PrivateRabbitmq(folder / "rabbitmq", name) if rabbitmq else None
    database = PrivatePostgres(folder / "postgres") if postgres else None
    try:
        for server in (broker, database):
            if server is not None:
                server.start()
        yield broker, database
    finally:
        for server in (broker, database):
            if server is not None:
                try:
                    server.stop()
                except Exception:  # noqa: BLE001 - stop the other one and delete the folder all the same
                    pass
        shutil.rmtree(folder, ignore_errors=True)
