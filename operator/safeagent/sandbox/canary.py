"""The egress canary: `python3 -I -m safeagent.sandbox.canary --open-port A --closed-port B`.

STDLIB ONLY: runs from the sandbox image as a small Deployment the chart installs.

It answers every TCP connection on both ports with one fixed line and closes it, reading
nothing. Every sandbox NetworkPolicy lets sandbox Pods reach port A of the canary and nothing
else of it; port B is outside every profile. Before the command runs, the runner's pre-flight
(safeagent.sandbox.preflight) connects to A, then B, then A again, from inside the sandbox Pod: A must
answer (the canary is up, the network path works), B must not. Because one process serves both
ports in one loop, "A answered just before and just after" means B was being served too, so a
refused B is the NetworkPolicy at work, never a canary that happens to be down.
"""

from __future__ import annotations

import argparse
import selectors
import socket
import sys

BANNER = b"safeagent-canary 1\n"


def serve(open_port: int, closed_port: int, host: str = "0.0.0.0") -> None:
    selector = selectors.DefaultSelector()
    for port in (open_port, closed_port):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(128)
        listener.setblocking(False)
        selector.register(listener, selectors.EVENT_READ)
    print(f"canary serving ports {open_port} and {closed_port}", flush=True)
    while True:
        for key, _ in selector.select():
            try:
                connection, _ = key.fileobj.accept()  # type: ignore[union-attr]
            except OSError:
                continue
            try:
                connection.settimeout(1.0)
                connection.sendall(BANNER)
            except OSError:
                pass
            finally:
                connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -I -m safeagent.sandbox.canary", description=__doc__.splitlines()[0])
    parser.add_argument("--open-port", type=int, required=True)
    parser.add_argument("--closed-port", type=int, required=True)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    serve(args.open_port, args.closed_port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
