"""Egress pre-flight: prove, from inside the sandbox Pod, that its NetworkPolicy is enforced.

STDLIB ONLY: the runner calls `check(spec)` before anything of the command runs.

Why: a NetworkPolicy exists before the Pod, but the enforcer (the CNI's policy agent) programs
the rules for a new Pod some time after the Pod has its address. Under load that gap is long
enough for a command to connect anywhere (measured on the test bed: 17 of 20 jobs of a burst
reached a listener under the `none` profile). So the command waits until its own Pod is
provably filtered, or never runs.

How (see safeagent.sandbox.canary): the safeagent canary answers on two ports. Every profile's policy
allows the canary's open port and nothing else of it, so in a filtered Pod

    open port   -> answers with the canary's banner
    closed port -> the connection fails
    open port   -> answers again

and in an unfiltered Pod the closed port answers too. One canary process serves both ports, so
the two answers on the open port bracket the closed port's failure: the canary was up, and the
failure is the policy, never a canary that is down (a down canary fails the open port, and the
check keeps waiting, then fails closed). Where the profile allows no DNS, a DNS query to each
server in /etc/resolv.conf must also go unanswered.

Spec: {"host": canary address, "openPort": A, "closedPort": B, "deadlineSeconds": N,
"checkDns": bool}. Result: {"enforced": bool, "rounds": n, "elapsedMs": ms, "detail": text}.
"""

from __future__ import annotations

import random
import socket
import struct
import time
from collections.abc import Mapping
from typing import Any

BANNER_PREFIX = b"safeagent-canary"
OPEN_TIMEOUT = 1.0
# The closed port is given this long to connect. Inside one cluster a reachable port connects in
# well under a millisecond; a filtered one is refused at once (REJECT) or never answers (DROP).
CLOSED_TIMEOUT = 0.5
DNS_TIMEOUT = 0.3
RETRY_PAUSE = 0.05
RESOLV_CONF = "/etc/resolv.conf"


def _answers(host: str, port: int, timeout: float) -> bool | None:
    """True: the canary answered; False: the connection failed; None: something else answered."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.settimeout(timeout)
            data = connection.recv(len(BANNER_PREFIX))
    except OSError:
        return False
    return True if data.startswith(BANNER_PREFIX) else None


def _connects(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def nameservers(path: str = RESOLV_CONF) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return []
    return [line.split()[1] for line in lines if line.startswith("nameserver") and len(line.split()) > 1]


def _dns_query() -> tuple[int, bytes]:
    """A standard query for the A record of `kubernetes.default` (any answer at all counts)."""
    ident = random.randrange(1 << 16)
    header = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    question = b"".join(bytes([len(p)]) + p for p in (b"kubernetes", b"default")) + b"\0"
    return ident, header + question + struct.pack("!HH", 1, 1)


def dns_answers(server: str, timeout: float = DNS_TIMEOUT) -> bool:
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    ident, query = _dns_query()
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as udp:
            udp.settimeout(timeout)
            udp.connect((server, 53))
            udp.send(query)
            reply = udp.recv(512)
    except OSError:
        return False
    return len(reply) >= 2 and struct.unpack("!H", reply[:2])[0] == ident


def check(spec: Mapping[str, Any], clock: Any = time.monotonic, pause: Any = time.sleep) -> dict[str, Any]:
    host, open_port, closed_port = spec["host"], int(spec["openPort"]), int(spec["closedPort"])
    deadline_seconds = float(spec["deadlineSeconds"])
    servers = nameservers(spec.get("resolvConf", RESOLV_CONF)) if spec.get("checkDns") else []
    started = clock()
    rounds = 0
    detail = "no round finished"
    while True:
        rounds += 1
        before = _answers(host, open_port, OPEN_TIMEOUT)
        closed_open = _connects(host, closed_port, CLOSED_TIMEOUT)
        after = _answers(host, open_port, OPEN_TIMEOUT)
        if before is not True or after is not True:
            detail = (
                f"the canary {host}:{open_port} did not answer"
                if before is False or after is False
                else f"something other than the canary answers at {host}:{open_port}"
            )
        elif closed_open:
            detail = f"the canary's closed port {host}:{closed_port} is reachable: not filtered yet"
        else:
            answering = [server for server in servers if dns_answers(server)]
            if not answering:
                elapsed = int((clock() - started) * 1000)
                return {"enforced": True, "rounds": rounds, "elapsedMs": elapsed, "detail": "enforced"}
            detail = f"DNS server {answering[0]} answers although the profile allows no DNS"
        if clock() - started >= deadline_seconds:
            elapsed = int((clock() - started) * 1000)
            return {
                "enforced": False,
                "rounds": rounds,
                "elapsedMs": elapsed,
                "detail": f"egress not enforced within {deadline_seconds:g} seconds: {detail}",
            }
        pause(RETRY_PAUSE)

