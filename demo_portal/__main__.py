"""``python -m demo_portal``: the portal alone (``autoclerk portal`` is the same with the CLI's errors)."""

from __future__ import annotations

import argparse
import os

from .app import Faults
from .server import serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="demo_portal", description="Serve the Autoclerk demo portal.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--username", default="clerk")
    parser.add_argument("--password-env", default="AUTOCLERK_PORTAL_PASSWORD",
                        help="environment variable holding the password (default: demo-password)")
    defaults = Faults()
    for knob, value in vars(defaults).items():
        parser.add_argument(f"--{knob.replace('_', '-')}", type=type(value), default=value)
    args = parser.parse_args()
    faults = Faults(**{k: getattr(args, k) for k in vars(defaults)})
    serve(args.host, args.port, username=args.username,
          password=os.environ.get(args.password_env, "demo-password"), faults=faults)


if __name__ == "__main__":
    main()
