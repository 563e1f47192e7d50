"""The warm Pod's channel (safeagent.sandbox.channel) on real loopback sockets: one request with the
right token gets in, and the channel is gone after it; nothing else gets in or keeps it busy long."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from safeagent.sandbox import channel

TOKEN = "0123456789abcdef" * 4  # fixed: test ids are built from it, and xdist workers must agree
REQUEST = {"argv": ["ls", "-la"], "jobUid": "u-1", "files": {"a.txt": "hello\n"}}
MAX_BYTES = 4096


@pytest.fixture
def served() -> Iterator[tuple[int, Future[dict[str, Any]]]]:
    """A channel listening on a free loopback port, served in a thread: (port, its outcome)."""
    server = channel.listen(0, "127.0.0.1")
    port = server.getsockname()[1]
    with ThreadPoolExecutor(1) as pool:
        outcome = pool.submit(channel.serve_once, server, TOKEN.encode(), MAX_BYTES, 10.0, 0.5)
        yield port, outcome
        if not outcome.done():  # let the serving thread end: a valid request closes it
            channel.deliver("127.0.0.1", port, TOKEN, {}, timeout=5)


def _send(port: int, data: bytes) -> bytes:
    """Send raw bytes on one connection; what came back before the Pod closed it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(data)
        reply = b""
        try:
            while chunk := conn.recv(64):
                reply += chunk
        except ConnectionResetError:  # closed with our bytes unread: the kernel resets
            pass
        return reply


def _line(obj: Any) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def test_the_request_with_the_token_is_accepted_and_returned(served):
    port, outcome = served
    channel.deliver("127.0.0.1", port, TOKEN, REQUEST, timeout=5)
    assert outcome.result(timeout=5) == REQUEST


def test_after_the_request_nothing_listens(served):
    port, outcome = served
    channel.deliver("127.0.0.1", port, TOKEN, REQUEST, timeout=5)
    outcome.result(timeout=5)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    with pytest.raises(channel.ChannelUnreached):  # a second delivery, the right token included
        channel.deliver("127.0.0.1", port, TOKEN, REQUEST, timeout=2)


@pytest.mark.parametrize("data", [
    pytest.param(b"f" * 64 + b"\n" + _line(REQUEST), id="wrong-token"),
    pytest.param(TOKEN[:-1].encode() + b"\n" + _line(REQUEST), id="token-one-short"),
    pytest.param(TOKEN.encode() + b"0\n" + _line(REQUEST), id="token-one-long"),
    pytest.param(_line(REQUEST), id="no-token"),
    pytest.param(TOKEN.encode() + b"\n" + b"not json\n", id="not-json"),
    pytest.param(TOKEN.encode() + b"\n" + _line(["ls"]), id="not-an-object"),
    pytest.param(TOKEN.encode() + b"\n" + _line({"pad": "x" * MAX_BYTES}), id="too-large"),
    pytest.param(TOKEN.encode() + b"\n" + json.dumps(REQUEST).encode(), id="no-final-newline"),
])
def test_anything_else_is_turned_away_without_an_answer_and_the_channel_stays(served, data):
    port, outcome = served
    assert _send(port, data) == b""
    assert not outcome.done()
    channel.deliver("127.0.0.1", port, TOKEN, REQUEST, timeout=5)  # the operator still gets in
    assert outcome.result(timeout=5) == REQUEST


def test_a_slow_sender_is_cut_off_at_the_deadline_for_the_whole_exchange(served):
    port, outcome = served
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        for byte in TOKEN[:20]:  # a byte every 0.1 s: each read is quick, the whole is not
            try:
                conn.sendall(byte.encode())
            except OSError:
                break
            time.sleep(0.1)
        try:
            answer = conn.recv(64)
        except ConnectionResetError:  # closed with our bytes unread
            answer = b""
        assert answer == b""  # closed, no answer
    assert time.monotonic() - started < 5  # cut at the 0.5 s deadline, not after 20 reads
    channel.deliver("127.0.0.1", port, TOKEN, REQUEST, timeout=5)
    assert outcome.result(timeout=5) == REQUEST


def test_too_many_strangers_close_the_channel_and_nothing_is_accepted(served):
    port, outcome = served
    for _ in range(channel.MAX_STRANGERS):
        _send(port, b"f" * 64 + b"\n" + _line(REQUEST))
    with pytest.raises(channel.ChannelAbused):
        outcome.result(timeout=5)
    with pytest.raises(channel.ChannelError):
        channel.deliver("127.0.0.1", port, TOKEN, REQUEST, timeout=2)


def test_no_request_within_the_idle_time_ends_the_wait():
    server = channel.listen(0, "127.0.0.1")
    port = server.getsockname()[1]
    with pytest.raises(channel.ChannelIdle):
        channel.serve_once(server, TOKEN.encode(), MAX_BYTES, idle_seconds=0.3)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


def test_a_request_cut_off_midway_is_not_taken():
    """A sender reset halfway through its request line: nothing of it is returned, the next sender gets in."""
    server = channel.listen(0, "127.0.0.1")
    port = server.getsockname()[1]
    leaving = socket.create_connection(("127.0.0.1", port), timeout=5)
    leaving.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # reset on close
    leaving.sendall(TOKEN.encode() + b"\n" + b'{"argv": ["ls"]')  # the request is not finished yet
    result: dict[str, Any] = {}

    def serve() -> None:
        try:
            result["request"] = channel.serve_once(server, TOKEN.encode(), MAX_BYTES, 5.0, 0.5)
        except channel.ChannelError as error:
            result["error"] = error

    thread = threading.Thread(target=serve)
    thread.start()
    leaving.close()  # reset before the line ends: the request never completes
    channel.deliver("127.0.0.1", port, TOKEN, REQUEST, timeout=5)
    thread.join(5)
    assert result == {"request": REQUEST}


def test_deliver_refuses_when_nobody_listens():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(channel.ChannelUnreached, match="no connection"):  # nothing can have been delivered
        channel.deliver("127.0.0.1", port, TOKEN, REQUEST, timeout=2)


def test_the_token_is_taken_out_of_the_environment():
    environ = {channel.TOKEN_ENV: TOKEN, "HOME": "/tmp"}
    assert channel.take_token(environ) == TOKEN.encode()
    assert environ == {"HOME": "/tmp"}


@pytest.mark.parametrize("value", ["", "abc", TOKEN.upper(), TOKEN[:-1] + "g", TOKEN + "0"],
                         ids=["empty", "short", "upper-case", "not-hex", "long"])
def test_a_token_that_is_not_64_hex_digits_is_refused(value):
    environ = {channel.TOKEN_ENV: value}
    with pytest.raises(channel.ChannelError, match="hex"):
        channel.take_token(environ)
    assert channel.TOKEN_ENV not in environ


def test_new_tokens_are_valid_and_differ():
    tokens = {channel.new_token() for _ in range(100)}
    assert len(tokens) == 100
    for token in tokens:
        assert channel.take_token({channel.TOKEN_ENV: token}) == token.encode()


def test_request_size_is_what_deliver_sends_after_the_token():
    assert channel.request_size(REQUEST) == len(json.dumps(REQUEST, separators=(",", ":")).encode()) + 1
