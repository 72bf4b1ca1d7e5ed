"""A real ``kudos serve`` against clients that send too much, too slowly, or as strangers.

The HTTP edge does not touch the store, so one SQLite server serves every check; its limits
are set small through the environment so each refusal comes within a second.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer, start_server, stop_server

EVENTS = "/api/v4.0/integrations/events"
TIMEOUT = 1.0
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the module (its checks leave nothing behind for the next one)."""
    tmp_path = tmp_path_factory.mktemp("hostile")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KUDOS_BODY_TIMEOUT_SECONDS", str(TIMEOUT))
        env.setenv("KUDOS_HEADER_TIMEOUT_SECONDS", str(TIMEOUT))
        env.setenv("KUDOS_MAX_REQUESTS_IN_FLIGHT", "2")
        live = start_server(f"sqlite:///{tmp_path}/kudos.db", tmp_path / "server.log")
    try:
        yield live
    finally:
        stop_server(live)


def _connect(server: LiveServer) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    return sock


def _head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "host: kudos", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], dict[str, object]]:
    """Status, headers and JSON body of the next answer on ``sock``, read byte-exact so that
    a pipelined answer behind it stays on the socket for the next call."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)  # answers' heads are small: one byte at a time never reads past
        assert byte, f"closed without an answer: {head!r}"
        head += byte
    status_line, *lines = head[:-4].decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    body = b""
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(int(headers["content-length"]) - len(body))
        assert chunk, f"closed in the middle of an answer: {body!r}"
        body += chunk
    return int(status_line.split()[1]), headers, json.loads(body)


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _json_headers(server: LiveServer, length: int | None = None) -> dict[str, str]:
    headers = {**server.headers(), "content-type": "application/json"}
    if length is not None:
        headers["content-length"] = str(length)
    return headers


def test_a_one_megabyte_header_gets_431_and_the_server_does_not_hold_it(
    server: LiveServer,
) -> None:
    before = _rss_kb(server.process.pid)
    with _connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: kudos\r\nx-big: ")
        sent = 0
        while sent < MIB and not select.select([sock], [], [], 0.001)[0]:
            sock.sendall(b"a" * 16384)
            sent += 16384
        status, headers, body = _answer(sock)
    assert sent < MIB / 4  # refused long before the megabyte was through
    assert (status, body["code"], headers["connection"]) == (431, 3021, "close")
    assert _rss_kb(server.process.pid) - before < 2048  # KB: nothing like the header's size


def test_a_body_that_stops_halfway_gets_408_after_the_timeout(server: LiveServer) -> None:
    body = json.dumps({"customerId": "slow", "events": {"a": {}}}).encode()
    with _connect(server) as sock:
        sock.sendall(_head(EVENTS, _json_headers(server, len(body))) + body[:10])
        started = time.monotonic()
        status, headers, answer = _answer(sock)
        waited = time.monotonic() - started
        assert _closed(sock)
    assert (status, answer["code"], headers["connection"]) == (408, 3020, "close")
    assert TIMEOUT * 0.9 <= waited < TIMEOUT + 2


def test_silent_connections_are_closed_after_the_header_timeout(server: LiveServer) -> None:
    with _connect(server) as sock:
        started = time.monotonic()
        assert _closed(sock)
    assert time.monotonic() - started < TIMEOUT + 2


@pytest.mark.parametrize("path", [EVENTS, "/api/v4.0/integrations/customers"])
def test_an_unknown_key_gets_401_before_its_body_is_sent(server: LiveServer, path: str) -> None:
    with _connect(server) as sock:
        headers = {**_json_headers(server, MIB), "apikey": "not-a-key"}
        sock.sendall(_head(path, headers))  # and not one byte of the announced mebibyte
        status, _, answer = _answer(sock)
    assert (status, answer["code"]) == (401, 1000)


def test_past_the_in_flight_limit_requests_get_503_with_retry_after(server: LiveServer) -> None:
    body = json.dumps({"customerId": "slow", "events": {"a": {}}}).encode()
    holders = [_connect(server) for _ in range(2)]
    try:
        for sock in holders:  # two requests in flight, waiting for the rest of their bodies
            sock.sendall(_head(EVENTS, _json_headers(server, len(body))) + body[:5])
        time.sleep(0.2)
        shed = httpx.post(f"{server.url}{EVENTS}", content=body, headers=_json_headers(server))
        assert (shed.status_code, shed.json()["code"]) == (503, 5003)
        assert shed.headers["retry-after"] == "1"
        assert httpx.get(f"{server.url}/healthz").status_code == 200  # liveness is never shed
    finally:
        for sock in holders:
            sock.close()
    time.sleep(0.2)
    ok = httpx.post(f"{server.url}{EVENTS}", content=body, headers=_json_headers(server))
    assert ok.status_code == 200, ok.text


def test_blank_lines_after_an_answer_do_not_hold_the_connection(server: LiveServer) -> None:
    """llhttp skips blank lines between requests without starting one, and any byte stops
    uvicorn's keep-alive timer: a CRLF after each answer held a connection for ever."""
    sock = _connect(server)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: kudos\r\n\r\n")
        assert _answer(sock)[0] == 200
        sock.sendall(b"\r\n")
        sock.settimeout(TIMEOUT + 4)
        started = time.monotonic()
        assert _closed(sock)
        assert time.monotonic() - started < TIMEOUT + 3
    finally:
        sock.close()


def test_a_pipelined_request_s_headers_count_against_the_limit(server: LiveServer) -> None:
    """Sent in the same write as a request with a body, a next request's headers used to be
    fed to the parser unsliced, past the header limit."""
    body = json.dumps({"customerId": "pipelined", "events": {"a": {"pad": "x" * 20_000}}})
    first = _head(
        EVENTS,
        {
            "apikey": server.api_key,
            "content-type": "application/json",
            "content-length": str(len(body)),
        },
    )
    second = b"GET /healthz HTTP/1.1\r\nhost: kudos\r\nx-junk: " + b"j" * 40_000 + b"\r\n\r\n"
    sock = _connect(server)
    try:
        sock.sendall(first + body.encode() + second)
        assert _answer(sock)[0] == 200
        status, _, answer = _answer(sock)
        assert (status, answer["code"]) == (431, 3021)
    finally:
        sock.close()


def test_a_client_that_never_reads_its_answers_is_dropped(server: LiveServer) -> None:
    """Pipelined requests whose answers are never read used to hold their in-flight slot (and
    the connection) for ever; once the server's writes stall for the body timeout, the
    connection is dropped, with what it could not send."""
    requests = 250  # ~25 MB of answers: more than the sockets' buffers hold
    sock = _connect(server)
    try:
        sock.sendall(b"GET /openapi.json HTTP/1.1\r\nhost: kudos\r\n\r\n" * requests)
        time.sleep(TIMEOUT + 3)  # megabytes of answers wait: the writes stall, then the drop
        sock.settimeout(5)
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
    finally:
        sock.close()
    assert received.count(b"HTTP/1.1 200") < requests  # dropped before it answered them all
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
