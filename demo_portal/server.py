"""Running the demo portal: in the foreground (``autoclerk portal``) or as a child process.

The socket is bound before uvicorn starts, so ``--port 0`` works and the real address is printed on the
first line of standard output (``listening on http://127.0.0.1:PORT``) for whoever started the process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from .app import Faults, create_app

READY_PREFIX = "listening on "


def serve(host: str = "127.0.0.1", port: int = 0, *, username: str = "clerk", password: str = "demo-password",
          faults: Faults | None = None) -> None:
    """Serve the portal until interrupted; prints its URL first.

    Raises:
        OSError: the address cannot be bound (in use, not local).
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    bound_port = sock.getsockname()[1]
    print(f"{READY_PREFIX}http://{host}:{bound_port}", flush=True)
    config = uvicorn.Config(
        create_app(username, password, faults),
        log_level="warning",
        access_log=False,
        backlog=2048,
        timeout_keep_alive=30,
    )
    uvicorn.Server(config).run(sockets=[sock])


@dataclass
class PortalProcess:
    """A portal running in a child process."""

    url: str
    process: subprocess.Popen[str]


@contextmanager
def portal_process(*, password: str = "demo-password", faults: Faults | None = None) -> Iterator[PortalProcess]:
    """Start the portal in a child process on a free loopback port; stop it on exit.

    Example::

        with portal_process() as portal:
            httpx.get(portal.url + "/api/export")
    """
    args = [sys.executable, "-m", "demo_portal", "--port", "0", "--password-env", "AUTOCLERK_PORTAL_PASSWORD"]
    for knob, value in vars(faults or Faults()).items():
        args += [f"--{knob.replace('_', '-')}", str(value)]
    env = {**os.environ, "AUTOCLERK_PORTAL_PASSWORD": password}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith(READY_PREFIX):
            raise RuntimeError(f"the demo portal did not start (exit {proc.poll()}): {line.strip()[-300:]}")
        yield PortalProcess(line[len(READY_PREFIX):].strip(), proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
