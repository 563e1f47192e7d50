"""A warm sandbox Pod's one way in: a single request from the operator, over TCP, with a per-Pod token.

STDLIB ONLY: the runner uses `serve_once` inside the sandbox image; the operator uses `deliver`.
The design, the choice of a port over `pods/exec` and its threats: docs/warm-pool.md.

The exchange, on one connection:

    operator -> Pod   the token, as hex, and a newline         (at most TOKEN_LINE_MAX bytes)
    operator -> Pod   the request, one JSON object, a newline  (at most `max_bytes`)
    Pod -> operator   ACCEPTED, then the Pod closes everything

The token line comes first so that a sender without the token is turned away before the Pod reads
anything large from it. The token is compared in constant time. Each connection has READ_SECONDS
in all to send both lines (a deadline for the whole exchange, not per read: a sender dribbling
a byte a second gets no longer). A connection that fails any of this is closed without an answer
and counted; after MAX_STRANGERS of them the Pod stops listening and raises ChannelAbused, so that
a Pod something else is hammering runs nothing (the runner then writes a record saying so).
After the one good request the listening socket and the connection are closed before `serve_once`
returns: the command that runs afterwards finds no channel to read from or answer on.

The token reaches the runner in its environment (`TOKEN_ENV`), never its argv, which every process
of the container can read in /proc/1/cmdline; `take_token` removes it from the environment at once.
"""

from __future__ import annotations

import hmac
import json
import secrets
import socket
import time
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

TOKEN_ENV = "SAFEAGENT_CHANNEL_TOKEN"
TOKEN_HEX_CHARS = 64  # 32 random bytes
TOKEN_LINE_MAX = TOKEN_HEX_CHARS + 1
ACCEPTED = b"accepted\n"
READ_SECONDS = 2.0
MAX_STRANGERS = 16
_BACKLOG = 8
_CHUNK = 65536


class ChannelError(Exception):
    """The channel could not deliver the one request (both sides)."""


class ChannelUnreached(ChannelError):
    """No connection was made: the Pod cannot have received anything (the operator may go elsewhere)."""


class ChannelAbused(ChannelError):
    """MAX_STRANGERS connections came without a valid request; the Pod must run nothing."""


class ChannelIdle(ChannelError):
    """No valid request within the idle time; the Pod runs nothing and leaves."""


def new_token() -> str:
    """A fresh token for one Pod (the operator's side)."""
    return secrets.token_hex(TOKEN_HEX_CHARS // 2)


def take_token(environ: MutableMapping[str, str]) -> bytes:
    """The token from the environment, removed from it; refused unless it is TOKEN_HEX_CHARS hex digits."""
    token = environ.pop(TOKEN_ENV, "")
    if len(token) != TOKEN_HEX_CHARS or any(char not in "0123456789abcdef" for char in token):
        raise ChannelError(f"{TOKEN_ENV} is not {TOKEN_HEX_CHARS} lower-case hex digits")
    return token.encode()


def listen(port: int, host: str = "0.0.0.0") -> socket.socket:  # noqa: S104 - the Pod's own address
    """The listening socket (port 0: any free one, for tests)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((host, port))
    server.listen(_BACKLOG)
    return server


def _read_line(conn: socket.socket, buffer: bytearray, limit: int, deadline: float,
               clock: Callable[[], float]) -> bytes | None:
    """One line (without its newline) of at most `limit` bytes before `deadline`, else None.
    Bytes after the newline stay in `buffer` for the next line."""
    while True:
        end = buffer.find(b"\n")
        if end >= 0:
            if end + 1 > limit:
                return None
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            return line
        if len(buffer) >= limit:
            return None
        remaining = deadline - clock()
        if remaining <= 0:
            return None
        conn.settimeout(remaining)
        try:
            chunk = conn.recv(min(_CHUNK, limit - len(buffer)))
        except OSError:  # the deadline (socket.timeout is an OSError) or a reset
            return None
        if not chunk:
            return None
        buffer += chunk


def _request_from(conn: socket.socket, token: bytes, max_bytes: int, read_seconds: float,
                  clock: Callable[[], float]) -> dict[str, Any] | None:
    """The request on `conn` if it carries the token and is one JSON object, else None."""
    deadline = clock() + read_seconds
    buffer = bytearray()
    sent_token = _read_line(conn, buffer, TOKEN_LINE_MAX, deadline, clock)
    if sent_token is None or not hmac.compare_digest(sent_token, token):
        return None
    line = _read_line(conn, buffer, max_bytes, deadline, clock)
    if line is None:
        return None
    try:
        request = json.loads(line)
    except ValueError:
        return None
    return request if isinstance(request, dict) else None


def _answer(conn: socket.socket, seconds: float) -> bool:
    """Tell the sender its request was accepted; False if it has left (then it was not: it cannot know)."""
    try:
        conn.settimeout(seconds)
        conn.sendall(ACCEPTED)
    except OSError:
        return False
    return True


def serve_once(server: socket.socket, token: bytes, max_bytes: int, idle_seconds: float,
               read_seconds: float = READ_SECONDS, clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Wait for the one request that carries `token`, answer ACCEPTED, close everything, return it.

    Closes `server` whatever happens. Raises ChannelIdle when no such request came within
    `idle_seconds`, ChannelAbused after MAX_STRANGERS connections that were not one."""
    strangers = 0
    idle_deadline = clock() + idle_seconds
    try:
        while True:
            remaining = idle_deadline - clock()
            if remaining <= 0:
                raise ChannelIdle(f"no request within {idle_seconds:g} s")
            server.settimeout(remaining)
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue  # the loop's deadline check raises ChannelIdle
            with conn:
                request = _request_from(conn, token, max_bytes, read_seconds, clock)
                if request is not None and _answer(conn, read_seconds):
                    return request
            strangers += 1
            if strangers >= MAX_STRANGERS:
                raise ChannelAbused(f"{strangers} connections without a valid request")
    finally:
        server.close()


def deliver(host: str, port: int, token: str, request: Mapping[str, Any], timeout: float) -> None:
    """Send `request` to the Pod at host:port (the operator's side); raise ChannelError unless accepted."""
    payload = token.encode() + b"\n" + json.dumps(request, separators=(",", ":")).encode() + b"\n"
    deadline = time.monotonic() + timeout
    try:
        conn = socket.create_connection((host, port), timeout=timeout)
    except OSError as error:
        raise ChannelUnreached(f"no connection to {host}:{port}: {error}") from error
    try:
        with conn:
            conn.sendall(payload)
            reply = bytearray()
            while len(reply) < len(ACCEPTED):
                conn.settimeout(max(deadline - time.monotonic(), 0.001))
                chunk = conn.recv(len(ACCEPTED) - len(reply))
                if not chunk:
                    break
                reply += chunk
    except OSError as error:
        raise ChannelError(f"delivery to {host}:{port} failed: {error}") from error
    if bytes(reply) != ACCEPTED:
        raise ChannelError(f"{host}:{port} did not accept the request")


def request_size(request: Mapping[str, Any]) -> int:
    """The bytes `deliver` sends for `request` after the token line (for checking it against the Pod's cap)."""
    return len(json.dumps(request, separators=(",", ":")).encode()) + 1
