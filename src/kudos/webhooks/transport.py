"""The worker's HTTP client: it connects only to addresses the target policy allows.

Every new connection resolves the endpoint's host name once, checks every address it
resolves to (``targets``), and connects to one of those very addresses: no second lookup
happens between the check and the connection, so a name that changes its answer (DNS
rebinding) cannot slip an internal address in. The URL keeps the host name, so the
``Host`` header, TLS SNI and the certificate check all use the name, and connections are
pooled per host name (a TLS connection verified for one name never carries another's
requests).

Built on public interfaces only: an httpcore connection pool with a network backend of our
own, behind an httpx transport. Environment proxies are ignored (``trust_env=False``): a
proxy would connect where the policy cannot see.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator

import httpcore
import httpx

from kudos.webhooks import targets

Resolve = Callable[[str, int], Awaitable[list[str]]]
SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


class TargetRefused(httpcore.ConnectError):
    """The host is, or resolves to, an address the target policy refuses."""


class TargetNotAllowed(httpx.ConnectError):
    """``TargetRefused`` as the client raises it."""


async def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, on the event loop's default executor (tests and
    tools; the worker resolves on a ``dns.Resolver``, bounded per account)."""
    found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects to a host's checked addresses, through ``inner`` (the real network)."""

    def __init__(
        self,
        *,
        allow_private: bool,
        resolve: Resolve = resolve,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allow_private = allow_private
        self._resolve = resolve
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        failure: Exception = httpcore.ConnectError("no address")
        for address in await self._checked(host, port):
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # try the next address
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise TargetRefused("unix sockets are not webhook targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)

    async def _checked(self, host: str, port: int) -> list[str]:
        """The addresses to connect to, every one of them allowed; else ``TargetRefused``."""
        address = targets.literal(host)
        if address is not None:
            if not targets.allowed(address, allow_private=self.allow_private):
                raise TargetRefused(f"{host} is not allowed")
            return [str(address)]
        if not targets.name_allowed(host, allow_private=self.allow_private):
            raise TargetRefused(f"{host} is not allowed")
        try:
            addresses = await self._resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not addresses or not targets.all_allowed(addresses, allow_private=self.allow_private):
            raise TargetRefused(f"{host} resolves to an address that is not allowed")
        return addresses


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport over an httpcore pool whose connections ``backend`` opens."""

    def __init__(self, backend: GuardedBackend, *, limits: httpx.Limits) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        url = request.url
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _mapped():
            response = await self._pool.handle_async_request(core)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: httpcore.Response) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped():
            async for part in self._response.aiter_stream():
                yield part

    async def aclose(self) -> None:
        with _mapped():
            await self._response.aclose()


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    """httpcore's errors as httpx's (the kinds the delivery tells apart)."""
    try:
        yield
    except TargetRefused as exc:
        raise TargetNotAllowed(str(exc)) from exc
    except httpcore.TimeoutException as exc:
        raise httpx.TimeoutException(str(exc)) from exc
    except httpcore.NetworkError as exc:
        raise httpx.NetworkError(str(exc)) from exc
    except (httpcore.ProtocolError, httpcore.UnsupportedProtocol, httpcore.ProxyError) as exc:
        raise httpx.TransportError(str(exc)) from exc


def build_client(
    *,
    allow_private: bool,
    max_connections: int,
    resolve: Resolve = resolve,
    network: httpcore.AsyncNetworkBackend | None = None,
) -> httpx.AsyncClient:
    """The delivery client: guarded connections, no environment proxies, no redirects."""
    backend = GuardedBackend(allow_private=allow_private, resolve=resolve, inner=network)
    transport = GuardedTransport(backend, limits=httpx.Limits(max_connections=max_connections))
    return httpx.AsyncClient(transport=transport, trust_env=False, follow_redirects=False)
