"""safeagent.sandbox.preflight and safeagent.sandbox.canary on loopback, against the real kernel.

A port nothing listens on stands for the enforcer's refusal (the kernel resets the connection, as
kube-router's REJECT does with an ICMP error); a listener whose accept queue is full stands for a
flooded canary (the kernel drops the SYN and counts it). The check must pass only on a refusal
bracketed by two answers of one canary, or (proof: silence) on silence the canary vouches for.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from safeagent.sandbox import canary, preflight


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Canary:
    """The real canary's worker loop on loopback, in a thread: `open` and `closed` are its ports.

    Its sockets stay open until the test process ends: the worker never returns, and closing them
    under it (possibly before it has even registered them, on a busy machine) only makes the
    thread die with "Invalid file descriptor" in whichever test runs next."""

    def __init__(self, limit: canary.SourceLimit | None = None) -> None:
        self.sockets = canary.listeners(0, 0, host="127.0.0.1")
        ports = {is_open: sock.getsockname()[1] for sock, is_open in self.sockets.items()}
        self.open, self.closed = ports[True], ports[False]
        self.boot = "b007"
        threading.Thread(target=canary.work, args=(self.sockets, self.boot, limit), daemon=True).start()


class Impostor:
    """A listener that answers something else."""

    def __init__(self, reply: bytes) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.port = self.socket.getsockname()[1]
        threading.Thread(target=self._serve, args=(reply,), daemon=True).start()

    def _serve(self, reply: bytes) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            with connection:
                connection.sendall(reply)


class Flooded:
    """A listener that never accepts, its queue already full: SYNs to it are dropped and counted."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(0)
        self.port = self.socket.getsockname()[1]
        self.fillers = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(filler)
        time.sleep(0.1)


@pytest.fixture
def made():
    things: list = []
    yield things
    for thing in things:
        for sock in [getattr(thing, "socket", None), *getattr(thing, "fillers", [])]:  # a Canary's stay open
            if sock is not None:
                sock.close()


@pytest.fixture
def live(made) -> Canary:
    made.append(Canary())
    return made[-1]


def spec(open_port: int, closed_port: int, deadline: float = 0.5, **extra) -> dict:
    return {"host": "127.0.0.1", "openPort": open_port, "closedPort": closed_port,
            "deadlineSeconds": deadline, **extra}


# ------------------------------------------------------------------------------- the refusal proof

def test_enforced_when_the_closed_port_is_refused_between_two_answers_of_one_canary(live):
    result = preflight.check(spec(live.open, free_port()))
    assert result["enforced"] is True and result["rounds"] == 1 and result["proof"] == "refusal", result


def test_not_enforced_while_the_closed_port_answers(live):
    result = preflight.check(spec(live.open, live.closed))
    assert result["enforced"] is False and result["rounds"] > 1
    assert "closed port" in result["detail"] and "not filtered" in result["detail"]


def test_a_canary_that_is_down_never_counts_as_refused():
    """Both ports are refused when nothing listens: that must not pass."""
    result = preflight.check(spec(free_port(), free_port()))
    assert result["enforced"] is False and "did not answer" in result["detail"]


@pytest.mark.parametrize("reply", [b"HTTP/1.1 200 OK\r\n\r\n", b"safeagent-canary 1\n",
                                   b"safeagent-canary 2 b007 many\n", b"safeagent-canary 2 b007 1 2\n",
                                   b"safeagent-canary 2 b007 --5\n", b"safeagent-canary 2 not-hex 5\n"])
def test_something_other_than_the_canary_does_not_count(made, reply):
    made.append(Impostor(reply))
    result = preflight.check(spec(made[-1].port, free_port()))
    assert result["enforced"] is False and "other than the canary" in result["detail"]


def test_a_canary_that_restarted_during_the_round_proves_nothing(monkeypatch):
    boots = iter(["one", "two"] * 100)
    monkeypatch.setattr(preflight, "canary_state", lambda *a, **k: preflight.CanaryState(next(boots), 0, 0.001))
    result = preflight.check(spec(1, free_port(), deadline=0.2))
    assert result["enforced"] is False and "restarted" in result["detail"]


def test_a_flooded_closed_port_proves_nothing_however_long_it_stays_silent(live, made):
    """A Pod no policy selects, whose connection to the closed port is dropped by a full queue:
    silence is not a refusal, so the default proof never passes."""
    made.append(Flooded())
    assert preflight.probe("127.0.0.1", made[-1].port, 0.3) == preflight.SILENT
    result = preflight.check(spec(live.open, made[-1].port, deadline=1.5))
    assert result["enforced"] is False and "stayed silent, which proves nothing" in result["detail"]
    assert "egressCheck.proof=silence" in result["detail"]


# ------------------------------------------------------------------------------- the silence proof

def test_silence_proves_only_after_several_rounds_the_canary_saw_no_drops(monkeypatch):
    monkeypatch.setattr(preflight, "canary_state", lambda *a, **k: preflight.CanaryState("b", 7, 0.001))
    monkeypatch.setattr(preflight, "probe", lambda host, port, window: preflight.SILENT)
    result = preflight.check(spec(1, 2, deadline=5, proof="silence"))
    assert result == {**result, "enforced": True, "proof": "silence", "rounds": preflight.SILENT_ROUNDS}


def test_silence_while_the_canary_drops_connections_never_proves(monkeypatch):
    drops = iter(range(10_000))
    monkeypatch.setattr(preflight, "canary_state",
                        lambda *a, **k: preflight.CanaryState("b", next(drops), 0.001))
    monkeypatch.setattr(preflight, "probe", lambda host, port, window: preflight.SILENT)
    result = preflight.check(spec(1, 2, deadline=0.5, proof="silence"))
    assert result["enforced"] is False and "dropped connections" in result["detail"]


def test_one_reachable_round_restarts_the_count_of_silent_ones(monkeypatch):
    outcomes = iter([preflight.SILENT, preflight.SILENT, preflight.REACHABLE] + [preflight.SILENT] * 10)
    monkeypatch.setattr(preflight, "canary_state", lambda *a, **k: preflight.CanaryState("b", 0, 0.001))
    monkeypatch.setattr(preflight, "probe", lambda host, port, window: next(outcomes))
    result = preflight.check(spec(1, 2, deadline=5, proof="silence"), pause=lambda seconds: None)
    assert result["enforced"] is True and result["rounds"] == 3 + preflight.SILENT_ROUNDS


def test_a_flooded_closed_port_proves_nothing_with_the_silence_proof_either(live, made):
    """The real kernel: every SYN dropped at the full queue is counted where the canary reads."""
    made.append(Flooded())
    result = preflight.check(spec(live.open, made[-1].port, deadline=2, proof="silence"))
    assert result["enforced"] is False and "dropped connections" in result["detail"], result


def test_the_silence_window_grows_with_the_round_trip():
    assert preflight.silence_window(0.0001) == preflight.SILENCE_MIN
    assert preflight.silence_window(0.05) == pytest.approx(1.0)
    assert preflight.silence_window(10) == preflight.SILENCE_MAX


def test_an_unknown_proof_is_refused():
    with pytest.raises(ValueError, match="unknown egress proof"):
        preflight.check(spec(1, 2, proof="hope"))


# ------------------------------------------------------------------------------------------- DNS

def test_an_answering_dns_server_fails_the_check_when_the_profile_has_no_dns(live, tmp_path, monkeypatch):
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("search svc.cluster.local\nnameserver 127.0.0.1\n")
    monkeypatch.setattr(preflight, "dns_answers", lambda server, timeout=0.3: server == "127.0.0.1")
    blocked = preflight.check(spec(live.open, free_port(), resolvConf=str(resolv), checkDns=True))
    assert blocked["enforced"] is False and "DNS server 127.0.0.1 answers" in blocked["detail"]
    allowed = preflight.check(spec(live.open, free_port(), resolvConf=str(resolv), checkDns=False))
    assert allowed["enforced"] is True


def test_a_dns_query_is_answered_only_by_a_server(monkeypatch):
    """The real query against a loopback UDP server echoing its id: answered; nothing there: not."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def echo() -> None:
        data, peer = server.recvfrom(512)
        server.sendto(data[:2] + b"\x81\x80" + data[4:], peer)

    original = socket.socket.connect
    # The query goes to port 53; send it to the test's server (or to a closed port) instead.
    target = {"port": port}
    monkeypatch.setattr(socket.socket, "connect", lambda self, address: original(self, (address[0], target["port"])))
    threading.Thread(target=echo, daemon=True).start()
    try:
        assert preflight.dns_answers("127.0.0.1") is True
        target["port"] = free_port()
        assert preflight.dns_answers("127.0.0.1", timeout=0.2) is False
    finally:
        server.close()


def test_nameservers_are_read_from_resolv_conf(tmp_path):
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 10.96.0.10\noptions ndots:5\nnameserver fd00::a\n")
    assert preflight.nameservers(str(resolv)) == ["10.96.0.10", "fd00::a"]
    assert preflight.nameservers(str(tmp_path / "missing")) == []


# ------------------------------------------------------------------------------------ the canary

def test_the_canary_answers_its_state_on_the_open_port_and_names_the_closed_one(live):
    state = preflight.canary_state("127.0.0.1", live.open)
    assert isinstance(state, preflight.CanaryState) and state.boot == live.boot and state.drops >= 0
    with socket.create_connection(("127.0.0.1", live.closed), timeout=1) as connection:
        assert connection.recv(64) == b"safeagent-canary 2 b007 closed\n"


def test_drops_add_the_kernel_counters_the_canary_reads(tmp_path):
    netstat = tmp_path / "netstat"
    netstat.write_text("TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPReqQFullDrop\n"
                       "TcpExt: 9 3 4 1\nIpExt: InNoRoutes\nIpExt: 5\n")
    netdev = tmp_path / "dev"
    netdev.write_text("Inter-|   Receive\n face |bytes packets errs drop\n"
                      "    lo: 100 2 0 0 0 0 0 0 100 2 0 0 0 0 0 0\n  eth0: 100 2 0 6 0 0 0 0 1 1 0 0 0 0 0 0\n")
    assert canary.drops(str(netstat), str(netdev)) == 3 + 4 + 1 + 6
    assert canary.drops(str(tmp_path / "missing"), str(netdev)) == -1


def test_a_source_past_its_rate_is_refused_and_others_are_not():
    now = [0.0]
    limit = canary.SourceLimit(rate=10, burst=5, clock=lambda: now[0])
    assert [limit.allow("10.0.0.1") for _ in range(7)] == [True] * 5 + [False] * 2
    assert limit.allow("10.0.0.2") is True
    now[0] += 0.2  # two tokens back
    assert [limit.allow("10.0.0.1") for _ in range(3)] == [True, True, False]


def test_a_flooding_source_is_reset_while_the_canary_keeps_answering(made):
    made.append(Canary(limit=canary.SourceLimit(rate=50, burst=20)))
    live = made[-1]
    refused = 0
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", live.open), timeout=1) as connection:
                if not connection.recv(64):
                    refused += 1
        except ConnectionResetError:
            refused += 1
    assert refused > 100, refused


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_canary_process_serves_both_ports_from_its_workers_and_stops_when_one_dies():
    open_port, closed_port = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": os.path.join(os.path.dirname(__file__), "..", "..", "..", "operator")}
    process = subprocess.Popen(
        [sys.executable, "-m", "safeagent.sandbox.canary", f"--open-port={open_port}",
         f"--closed-port={closed_port}", "--workers=3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=env["PYTHONPATH"],
    )
    try:
        banner = process.stdout.readline()
        assert "with 3 workers" in banner, banner + process.stderr.read()
        states = {preflight.canary_state("127.0.0.1", open_port).boot for _ in range(30)}
        assert len(states) == 1 and states.pop() in banner
        probe = [sys.executable, "-m", "safeagent.sandbox.canary", "--probe"]
        assert subprocess.run([*probe, f"--open-port={open_port}"], env=env, cwd=env["PYTHONPATH"]).returncode == 0
        assert subprocess.run([*probe, f"--open-port={free_port()}"], env=env, cwd=env["PYTHONPATH"]).returncode == 1
        workers = [int(pid) for pid in subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True,
                                                      text=True).stdout.split()]
        assert len(workers) == 3
        os.kill(workers[0], signal.SIGKILL)
        assert process.wait(timeout=10) == 1
        time.sleep(0.2)
        assert not [pid for pid in workers if running(pid)]
    finally:
        process.kill()
        process.wait()


def test_an_error_that_is_neither_refusal_nor_silence_proves_nothing(monkeypatch):
    monkeypatch.setattr(preflight, "canary_state", lambda *a, **k: preflight.CanaryState("b", 0, 0.001))
    monkeypatch.setattr(preflight, "probe", lambda host, port, window: preflight.INCONCLUSIVE)
    for proof in ("refusal", "silence"):
        result = preflight.check(spec(1, 2, deadline=0.3, proof=proof), pause=lambda seconds: None)
        assert result["enforced"] is False and "proves nothing" in result["detail"], result


def test_no_readable_nameserver_fails_closed_where_dns_must_be_blocked(live, tmp_path):
    result = preflight.check(spec(live.open, free_port(), resolvConf=str(tmp_path / "missing"), checkDns=True))
    assert result["enforced"] is False and "no nameserver could be read" in result["detail"]


def test_the_source_limit_stays_bounded_however_many_sources_come():
    now = [0.0]
    limit = canary.SourceLimit(rate=1, burst=2, clock=lambda: now[0])
    for index in range(3 * canary.MAX_SOURCES):
        limit.allow(f"10.{index >> 16}.{(index >> 8) & 255}.{index & 255}")
        now[0] += 0.0001
    assert len(limit.buckets) <= canary.MAX_SOURCES


@pytest.mark.parametrize(("content", "refuses"), [("0\n", False), ("1\n", True), (None, True)])
def test_the_canary_will_not_run_where_a_full_queue_may_reset(tmp_path, content, refuses):
    path = tmp_path / "tcp_abort_on_overflow"
    if content is not None:
        path.write_text(content)
    assert canary.abort_on_overflow(str(path)) is refuses
