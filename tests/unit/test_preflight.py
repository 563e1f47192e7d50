"""safeagent.sandbox.preflight and safeagent.sandbox.canary on loopback: the check passes only when the canary's
open port answers around a refused closed port, and fails closed otherwise."""

from __future__ import annotations

import socket
import threading

import pytest

from safeagent.sandbox import canary, preflight


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Listener:
    """A canary-like TCP listener on loopback that answers with `reply` until stopped."""

    def __init__(self, reply: bytes = canary.BANNER) -> None:
        self.reply = reply
        self.socket = socket.socket()
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)
        self.port = self.socket.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.accepted += 1
            with connection:
                connection.sendall(self.reply)

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def listeners():
    made: list[Listener] = []

    def make(reply: bytes = canary.BANNER) -> Listener:
        made.append(Listener(reply))
        return made[-1]

    yield make
    for listener in made:
        listener.close()


def spec(open_port: int, closed_port: int, deadline: float = 0.5, **extra) -> dict:
    return {"host": "127.0.0.1", "openPort": open_port, "closedPort": closed_port,
            "deadlineSeconds": deadline, **extra}


def test_enforced_when_the_open_port_answers_around_a_refused_closed_port(listeners):
    open_side = listeners()
    result = preflight.check(spec(open_side.port, free_port()))
    assert result["enforced"] is True and result["rounds"] == 1
    assert open_side.accepted == 2  # before and after the closed port


def test_not_enforced_while_the_closed_port_answers(listeners):
    open_side, closed_side = listeners(), listeners()
    result = preflight.check(spec(open_side.port, closed_side.port))
    assert result["enforced"] is False and result["rounds"] > 1
    assert "closed port" in result["detail"] and "not filtered" in result["detail"]


def test_a_canary_that_is_down_never_counts_as_refused():
    """Both ports fail the same way when nothing listens: that must not pass."""
    result = preflight.check(spec(free_port(), free_port()))
    assert result["enforced"] is False and "did not answer" in result["detail"]


def test_something_other_than_the_canary_does_not_count(listeners):
    impostor = listeners(b"HTTP/1.1 200 OK\r\n\r\n")
    result = preflight.check(spec(impostor.port, free_port()))
    assert result["enforced"] is False and "other than the canary" in result["detail"]


def test_an_answering_dns_server_fails_the_check_when_the_profile_has_no_dns(listeners, tmp_path, monkeypatch):
    open_side = listeners()
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("search svc.cluster.local\nnameserver 127.0.0.1\n")
    monkeypatch.setattr(preflight, "dns_answers", lambda server, timeout=0.3: server == "127.0.0.1")
    blocked = preflight.check(spec(open_side.port, free_port(), resolvConf=str(resolv), checkDns=True))
    assert blocked["enforced"] is False and "DNS server 127.0.0.1 answers" in blocked["detail"]
    allowed = preflight.check(spec(open_side.port, free_port(), resolvConf=str(resolv), checkDns=False))
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
