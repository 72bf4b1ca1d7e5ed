"""The delivery client's connections: checked addresses only, the host name kept for the
Host header, TLS SNI and the certificate check. A fake DNS and a fake network record what
the client resolves, where it connects and what it sends."""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpcore
import httpx
import pytest

from kudos.webhooks import transport
from kudos.webhooks.transport import TargetNotAllowed

ANSWER = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"


@dataclass
class FakeStream(httpcore.AsyncNetworkStream):
    written: bytearray = field(default_factory=bytearray)
    tls: list[tuple[str | None, bool, ssl.VerifyMode]] = field(default_factory=list)
    answer: list[bytes] = field(default_factory=lambda: [ANSWER])

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.answer.pop(0) if self.answer else b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.written += buffer

    async def aclose(self) -> None:
        pass

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.tls.append((server_hostname, ssl_context.check_hostname, ssl_context.verify_mode))
        return self

    def get_extra_info(self, info: str) -> object:
        return None


@dataclass
class FakeNetwork(httpcore.AsyncNetworkBackend):
    connects: list[tuple[str, int]] = field(default_factory=list)
    streams: list[FakeStream] = field(default_factory=list)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[transport.SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        self.streams.append(FakeStream())
        return self.streams[-1]


@dataclass
class FakeDns:
    """Answers each lookup of a name with the next of its answers."""

    answers: dict[str, list[list[str]]]
    asked: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return self.answers[host].pop(0)


def client(dns: FakeDns, network: FakeNetwork, *, allow_private: bool = True) -> httpx.AsyncClient:
    return transport.build_client(
        allow_private=allow_private, max_connections=4, resolve=dns, network=network
    )


@pytest.mark.parametrize(
    ("url", "port", "host_header"),
    [
        ("https://hooks.example/in", 443, b"Host: hooks.example\r\n"),
        ("http://hooks.example:8080/in", 8080, b"Host: hooks.example:8080\r\n"),
    ],
)
async def test_it_connects_to_the_checked_address_and_keeps_the_host_name(
    url: str, port: int, host_header: bytes
) -> None:
    dns, network = FakeDns({"hooks.example": [["93.184.216.34"]]}), FakeNetwork()
    async with client(dns, network) as http:
        response = await http.post(url, content=b"{}")
    assert response.status_code == 204
    assert network.connects == [("93.184.216.34", port)]
    [stream] = network.streams
    assert host_header in bytes(stream.written)
    if url.startswith("https"):  # SNI and the certificate check are for the name
        assert stream.tls == [("hooks.example", True, ssl.CERT_REQUIRED)]
    else:
        assert stream.tls == []


async def test_a_name_with_one_refused_address_is_refused_before_any_connection() -> None:
    dns = FakeDns({"mixed.example": [["93.184.216.34", "169.254.169.254"]]})
    network = FakeNetwork()
    async with client(dns, network) as http:
        with pytest.raises(TargetNotAllowed):
            await http.post("https://mixed.example/", content=b"{}")
    assert network.connects == []


async def test_each_connection_uses_the_answer_it_checked_so_rebinding_finds_nothing() -> None:
    dns = FakeDns({"rebind.example": [["93.184.216.34"], ["127.0.0.1"]]})
    network = FakeNetwork()
    async with client(dns, network, allow_private=False) as http:
        assert (await http.post("http://rebind.example/", content=b"{}")).status_code == 204
        with pytest.raises(TargetNotAllowed):  # the second answer points inside
            await http.post("http://rebind.example/", content=b"{}")
    assert dns.asked == ["rebind.example", "rebind.example"]  # once per connection
    assert network.connects == [("93.184.216.34", 80)]


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://2852039166/",
        "http://0xA9FEA9FE/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fe80::1]/",
        "http://0.0.0.0:8000/",
    ],
)
async def test_refused_addresses_are_never_connected_to(url: str) -> None:
    dns, network = FakeDns({}), FakeNetwork()
    async with client(dns, network) as http:
        with pytest.raises(TargetNotAllowed):
            await http.post(url, content=b"{}")
    assert network.connects == [] and dns.asked == []


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:5432/", "http://localhost:8000/", "http://10.0.0.1/", "http://db/"]
)
async def test_private_targets_are_refused_when_private_is_off(url: str) -> None:
    dns, network = FakeDns({}), FakeNetwork()
    async with client(dns, network, allow_private=False) as http:
        with pytest.raises(TargetNotAllowed):
            await http.post(url, content=b"{}")
    assert network.connects == [] and dns.asked == []


async def test_environment_proxies_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://93.184.216.99:3128")
    dns, network = FakeDns({"hooks.example": [["93.184.216.34"]]}), FakeNetwork()
    async with client(dns, network) as http:
        assert (await http.post("http://hooks.example/", content=b"{}")).status_code == 204
    assert network.connects == [("93.184.216.34", 80)]
