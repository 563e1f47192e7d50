"""The egress canary: `python3 -I -m safeagent.sandbox.canary --open-port A --closed-port B [--workers N]`.

STDLIB ONLY: runs from the sandbox image as a small Deployment the chart installs.

Every sandbox NetworkPolicy lets sandbox Pods reach port A of the canary and nothing else of it;
port B is outside every profile. Before the command runs, the runner's pre-flight
(safeagent.sandbox.preflight) asks A for the canary's state, tries B, and asks A again.

What the canary says, on every connection, without reading anything from the peer:

    open port A:   "safeagent-canary 2 <boot> <drops>\\n"
    closed port B: "safeagent-canary 2 <boot> closed\\n"

`<boot>` is a random id drawn once per canary process, before either port is bound: two answers
with the same id come from one process that held both listeners the whole time, so a connection
to B refused in between was refused by something on the path (the NetworkPolicy enforcer), never
by a canary that was restarting. `<drops>` counts the connection attempts the canary's own network
namespace has thrown away (listen-queue overflows and drops, full SYN queues, receive drops on its
interfaces): the pre-flight's "silence" proof (for enforcers that drop rather than refuse) counts
a silent B only when this number did not move, so a flooded canary proves nothing.

Staying up under a flood: N worker processes share both listeners (a backlog of 4096 each), and
each worker resets at once a source address that opens more than PER_SOURCE_RATE connections a
second to it beyond a burst of PER_SOURCE_BURST, so one noisy sandbox cannot slow every other
job's proof much. If a worker dies the canary exits, and its next process draws a new boot id.
The canary refuses to start where the kernel answers a full listen queue with a reset
(net.ipv4.tcp_abort_on_overflow), or where it cannot tell, since a reset must only ever mean
"refused by the path". `--probe` is its liveness check: one answer from the open port, over
loopback, within two seconds (a hung canary whose kernel still completes handshakes fails it).
"""

from __future__ import annotations

import argparse
import os
import secrets
import selectors
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from typing import cast

from safeagent.sandbox.contract import CANARY_PREFIX

PREFIX = CANARY_PREFIX.encode()
BACKLOG = 4096
PER_SOURCE_RATE = 200.0  # connections per second, per source address, per worker
PER_SOURCE_BURST = 400.0
DEFAULT_WORKERS = 2
MAX_SOURCES = 4096
PROBE_TIMEOUT = 2.0
NETSTAT = "/proc/net/netstat"
NETDEV = "/proc/net/dev"
ABORT_ON_OVERFLOW = "/proc/sys/net/ipv4/tcp_abort_on_overflow"
# TcpExt counters of connection attempts the network namespace dropped before any accept().
DROP_COUNTERS = ("ListenDrops", "ListenOverflows", "TCPReqQFullDrop")


def drops(netstat: str = NETSTAT, netdev: str = NETDEV) -> int:
    """Connection attempts this network namespace has dropped so far (monotonic while it lives)."""
    total = 0
    try:
        with open(netstat, encoding="ascii") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return -1  # unknown: never equal to a count, so no silence counts as proof
    try:
        for names, values in zip(lines[::2], lines[1::2], strict=False):
            if not names.startswith("TcpExt:"):
                continue
            for name, value in zip(names.split()[1:], values.split()[1:], strict=False):
                if name in DROP_COUNTERS:
                    total += int(value)
    except ValueError:
        return -1
    try:
        with open(netdev, encoding="ascii") as handle:
            for line in handle.read().splitlines()[2:]:
                fields = line.split(":", 1)[1].split()
                total += int(fields[3])  # receive drops
    except (OSError, IndexError, ValueError):
        return -1
    return total


def open_answer(boot: str) -> bytes:
    return b"%s %s %d\n" % (PREFIX, boot.encode(), drops())


def closed_answer(boot: str) -> bytes:
    return b"%s %s closed\n" % (PREFIX, boot.encode())


class SourceLimit:
    """A token bucket per source address: `allow(address)` is False past the rate and burst."""

    def __init__(self, rate: float = PER_SOURCE_RATE, burst: float = PER_SOURCE_BURST,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.buckets: dict[str, tuple[float, float]] = {}

    def allow(self, address: str) -> bool:
        now = self.clock()
        tokens, last = self.buckets.get(address, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        allowed: bool = tokens >= 1.0
        self.buckets[address] = (tokens - 1.0 if allowed else tokens, now)
        if len(self.buckets) > MAX_SOURCES:
            # Forget buckets that have refilled by now: a new bucket for them would be the same.
            self.buckets = {
                key: (left, last) for key, (left, last) in self.buckets.items()
                if left + (now - last) * self.rate < self.burst
            }
            if len(self.buckets) > MAX_SOURCES:  # all busy: forget the oldest half
                ordered = sorted(self.buckets.items(), key=lambda item: item[1][1])
                self.buckets = dict(ordered[len(ordered) // 2:])
        return allowed


def _reset(connection: socket.socket) -> None:
    """Close with a reset: nothing queued, nothing lingering."""
    try:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    connection.close()


def listeners(open_port: int, closed_port: int, host: str = "0.0.0.0") -> dict[socket.socket, bool]:
    """Both listening sockets, non-blocking: socket -> True for the open port."""
    made = {}
    for port, is_open in ((open_port, True), (closed_port, False)):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(BACKLOG)
        listener.setblocking(False)
        made[listener] = is_open
    return made


def work(sockets: dict[socket.socket, bool], boot: str, limit: SourceLimit | None = None) -> None:
    """One worker: accept on both ports, answer one line, close. Never returns."""
    limit = limit or SourceLimit()
    selector = selectors.DefaultSelector()
    for listener in sockets:
        selector.register(listener, selectors.EVENT_READ)
    closed = closed_answer(boot)
    while True:
        for key, _ in selector.select():
            listener = cast(socket.socket, key.fileobj)
            # Drain what is queued, a bounded number at a time, so both ports get their turn.
            for _ in range(64):
                try:
                    connection, peer = listener.accept()
                except OSError:
                    break
                if not limit.allow(peer[0]):
                    _reset(connection)
                    continue
                try:
                    # A line this short fits the socket's send buffer: sending never blocks.
                    connection.send(open_answer(boot) if sockets[listener] else closed)
                except OSError:
                    pass
                connection.close()


def abort_on_overflow(path: str = ABORT_ON_OVERFLOW) -> bool:
    """True where a full listen queue may answer with a reset, or where that cannot be read."""
    try:
        with open(path, encoding="ascii") as handle:
            return handle.read().strip() != "0"
    except OSError:
        return True


def serve(open_port: int, closed_port: int, workers: int = DEFAULT_WORKERS, host: str = "0.0.0.0") -> int:
    if abort_on_overflow():
        print("canary refuses to start: net.ipv4.tcp_abort_on_overflow is on (or unreadable), so a "
              "flooded port could answer with resets that look like a refusal by the enforcer",
              file=sys.stderr, flush=True)
        return 2
    boot = secrets.token_hex(8)
    sockets = listeners(open_port, closed_port, host)
    children = []
    for _ in range(max(1, workers)):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child never returns
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            try:
                work(sockets, boot)
            finally:
                os._exit(1)
        children.append(pid)
    print(f"canary {boot} serving ports {open_port} and {closed_port} with {len(children)} workers", flush=True)

    def stop(*_: object) -> None:
        for child in children:
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    pid, status = os.wait()  # any worker gone: stop all, so the next process draws a new boot id
    print(f"canary worker {pid} ended ({status}): stopping", file=sys.stderr, flush=True)
    for child in children:
        if child != pid:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return 1


def probe(open_port: int, host: str = "127.0.0.1", timeout: float = PROBE_TIMEOUT) -> int:
    """The liveness check: 0 when the open port answers as the canary within `timeout`."""
    try:
        with socket.create_connection((host, open_port), timeout=timeout) as connection:
            connection.settimeout(timeout)
            return 0 if connection.recv(64).startswith(PREFIX + b" ") else 1
    except OSError:
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -I -m safeagent.sandbox.canary", description=__doc__.splitlines()[0])
    parser.add_argument("--open-port", type=int, required=True)
    parser.add_argument("--closed-port", type=int)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--probe", action="store_true", help="check that the canary answers, then exit")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.probe:
        return probe(args.open_port)
    if args.closed_port is None:
        parser.error("--closed-port is required to serve")
    return serve(args.open_port, args.closed_port, args.workers)


if __name__ == "__main__":
    sys.exit(main())
