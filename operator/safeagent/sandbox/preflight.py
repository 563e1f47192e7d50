"""Egress pre-flight: prove, from inside the sandbox Pod, that its NetworkPolicy is enforced.

STDLIB ONLY: the runner calls `check(spec)` before anything of the command runs.

Why: a NetworkPolicy exists before the Pod, but the enforcer (the CNI's policy agent) programs
the rules for a new Pod some time after the Pod has its address, and under a burst that gap grows
to tens of seconds. So the command waits until its own Pod is provably filtered, or never runs.

How (the canary is safeagent.sandbox.canary): every profile's policy allows the canary's open
port and nothing else of it. One round is

    open port   -> the canary's state: boot id B, drop count D
    closed port -> refused, connected, or silent
    open port   -> the canary's state again: must be B (same process, both listeners held
                   throughout), and D' for the silence rule below

and a round proves the Pod filtered only by something an outsider cannot cause:

- **refusal** (the default proof): the closed port's connection is refused (ECONNREFUSED,
  EHOSTUNREACH, ENETUNREACH, EACCES, EPERM). The canary held that port open throughout, and a
  listening port answers a flood by dropping, never by refusing, so the refusal came from the
  path: the enforcer's REJECT (kube-router's, on the test bed). A forged refusal would need an
  ICMP error or reset quoting this connection's random port and sequence number.
- **silence** (`proof: silence`, for enforcers that drop): the closed port stays silent for a
  window of max(SILENCE_MIN, SILENCE_RTT_FACTOR x the round's open-port round trip), the canary's
  drop count did not move in that round, and that for SILENT_ROUNDS rounds in a row. Weaker: it
  assumes nothing between the Pod and the canary drops packets for other reasons (a full
  connection-tracking table on a node, say) -- see docs/threat-model.md.

Under either proof a closed port that connects means "not filtered yet", and anything else (the
canary down, restarted, flooded, something else answering) proves nothing: the check tries again
until its deadline, then fails closed. Where the profile allows no DNS, a DNS query to each server
in /etc/resolv.conf must also go unanswered.

Spec: {"host": canary address, "openPort": A, "closedPort": B, "deadlineSeconds": N,
"checkDns": bool, "proof": "refusal" | "silence"}. Result: {"enforced": bool, "rounds": n,
"elapsedMs": ms, "detail": text, "proof": what proved it (when enforced)}.
"""

from __future__ import annotations

import errno
import random
import re
import select
import socket
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from safeagent.sandbox.contract import CANARY_PREFIX, EGRESS_PROOFS, EgressCheckRecord, EgressProof

PROOF_REFUSAL, PROOF_SILENCE = EGRESS_PROOFS
OPEN_TIMEOUT = 1.0
# How long the closed port is watched in the refusal proof: a refusal arrives in about one round
# trip; silence proves nothing there, so this only bounds one round.
CLOSED_TIMEOUT = 0.5
SILENCE_MIN = 0.2
SILENCE_MAX = 2.0
SILENCE_RTT_FACTOR = 20
SILENT_ROUNDS = 3
DNS_TIMEOUT = 0.3
RETRY_PAUSE = 0.05
RESOLV_CONF = "/etc/resolv.conf"
# The errors a refused connection gives: a TCP reset, or an ICMP port/host/net unreachable or
# administratively prohibited (what iptables' REJECT and its kin send).
REFUSALS = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES, errno.EPERM})

# What one try of the closed port showed. INCONCLUSIVE: an error that is neither a refusal nor
# silence (a reset after connecting, no buffer, no local port...), which proves nothing either way.
REACHABLE, REFUSED, SILENT, INCONCLUSIVE = "reachable", "refused", "silent", "inconclusive"
CANARY_LINE = re.compile("^" + re.escape(CANARY_PREFIX) + r" ([0-9a-f]{1,64}) (-1|[0-9]{1,20})\n?$")


@dataclass(frozen=True)
class CanaryState:
    boot: str
    drops: int
    seconds: float  # how long the answer took (connect to first line)


def canary_state(host: str, port: int, timeout: float = OPEN_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic) -> CanaryState | str:
    """The canary's state from its open port, or why there is none."""
    started = clock()
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.settimeout(timeout)
            data = b""
            while not data.endswith(b"\n") and len(data) < 128:
                chunk = connection.recv(128)
                if not chunk:
                    break
                data += chunk
    except OSError as error:
        return f"the canary {host}:{port} did not answer ({error.strerror or error})"
    line = CANARY_LINE.match(data.decode("ascii", "replace"))
    if line is None:
        return f"something other than the canary answers at {host}:{port}"
    return CanaryState(boot=line.group(1), drops=int(line.group(2)), seconds=clock() - started)


def probe(host: str, port: int, window: float) -> str:
    """Try `port` once, for up to `window` seconds: REACHABLE, REFUSED, SILENT or INCONCLUSIVE.

    The socket stays open for the whole window (a late answer still counts as reachable), and a
    reset or ICMP error is read off the socket itself (SO_ERROR), not guessed from a timeout.
    Only "nothing at all within the window" is SILENT."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as attempt:
        attempt.setblocking(False)
        code = attempt.connect_ex((host, port))
        if code == 0:
            return REACHABLE
        if code in (errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
            _, writable, failed = select.select([], [attempt], [attempt], window)
            if not writable and not failed:
                return SILENT
            code = attempt.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code == 0:
            return REACHABLE
        return REFUSED if code in REFUSALS else INCONCLUSIVE


def silence_window(open_seconds: float) -> float:
    return min(SILENCE_MAX, max(SILENCE_MIN, SILENCE_RTT_FACTOR * open_seconds))


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


@dataclass
class Round:
    """What one round showed: `proof` when it proved the Pod filtered, else why not."""

    proof: EgressProof | None
    detail: str
    silent: bool = False  # a clean silent round (counts towards SILENT_ROUNDS)


def one_round(host: str, open_port: int, closed_port: int, proof: str,
              clock: Callable[[], float] = time.monotonic) -> Round:
    before = canary_state(host, open_port, clock=clock)
    if isinstance(before, str):
        return Round(None, before)
    window = silence_window(before.seconds) if proof == PROOF_SILENCE else CLOSED_TIMEOUT
    outcome = probe(host, closed_port, window)
    after = canary_state(host, open_port, clock=clock)
    if isinstance(after, str):
        return Round(None, after)
    if after.boot != before.boot:
        return Round(None, "the canary restarted during the round")
    if outcome == REACHABLE:
        return Round(None, f"the canary's closed port {host}:{closed_port} is reachable: not filtered yet")
    if outcome == REFUSED:
        return Round(PROOF_REFUSAL, "refused")
    if outcome == INCONCLUSIVE:
        return Round(None, f"the canary's closed port {host}:{closed_port} failed in a way that proves nothing")
    if proof != PROOF_SILENCE:
        return Round(None, f"the canary's closed port {host}:{closed_port} stayed silent, which proves nothing: "
                           "either the Pod is not filtered yet or the enforcer drops instead of refusing "
                           "(for such an enforcer set egressCheck.proof=silence; docs/threat-model.md says what it assumes)")
    if before.drops < 0 or after.drops != before.drops:
        return Round(None, "the canary dropped connections during the round (under load): its silence proves nothing")
    return Round(None, "silent", silent=True)


def check(spec: Mapping[str, Any], clock: Callable[[], float] = time.monotonic,
          pause: Callable[[float], None] = time.sleep,
          round_: Callable[..., Round] = one_round) -> EgressCheckRecord:
    host, open_port, closed_port = spec["host"], int(spec["openPort"]), int(spec["closedPort"])
    deadline_seconds = float(spec["deadlineSeconds"])
    proof = spec.get("proof", PROOF_REFUSAL)
    if proof not in EGRESS_PROOFS:
        raise ValueError(f"unknown egress proof {proof!r}: one of {', '.join(EGRESS_PROOFS)}")
    servers: list[str] = []
    if spec.get("checkDns"):
        servers = nameservers(spec.get("resolvConf", RESOLV_CONF))
        if not servers:  # cannot tell which servers to prove silent: fail closed, say why
            return EgressCheckRecord(
                enforced=False, rounds=0, elapsedMs=0, proof=None,
                detail="the profile allows no DNS, but no nameserver could be read from resolv.conf")
    started = clock()
    rounds = silent = 0
    detail = "no round finished"
    while True:
        rounds += 1
        shown = round_(host, open_port, closed_port, proof)
        silent = silent + 1 if shown.silent else 0
        proved = shown.proof or (PROOF_SILENCE if silent >= SILENT_ROUNDS else None)
        detail = shown.detail
        if shown.silent and not proved:
            detail = f"silent for {silent} of {SILENT_ROUNDS} rounds in a row"
        if proved:
            answering = [server for server in servers if dns_answers(server)]
            if not answering:
                elapsed = int((clock() - started) * 1000)
                return EgressCheckRecord(enforced=True, rounds=rounds, elapsedMs=elapsed, detail="enforced",
                                         proof=proved)
            detail = f"DNS server {answering[0]} answers although the profile allows no DNS"
            silent = 0
        if clock() - started >= deadline_seconds:
            elapsed = int((clock() - started) * 1000)
            return EgressCheckRecord(
                enforced=False,
                rounds=rounds,
                elapsedMs=elapsed,
                detail=f"egress not enforced within {deadline_seconds:g} seconds: {detail}",
                proof=None,
            )
        if not shown.silent:
            pause(RETRY_PAUSE)
