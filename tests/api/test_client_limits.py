"""What a client can make one process hold: the key before the body, the memory budget, the
in-flight limit, and the counters that always come back down, on both stores.

These call the ASGI app directly, with a ``receive`` that records whether the body was asked
for: "refused without reading the body" is then an observable fact.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from kudos.api import admission
from kudos.api.app import KudosApp
from kudos.bootstrap import Runtime, run_in_transaction
from kudos.services import accounts
from tests.conftest import configure_account, events_body

EVENTS = "/api/v4.0/integrations/events"
CUSTOMERS = "/api/v4.0/integrations/customers"
BODY = json.dumps(events_body("limits")).encode()


@dataclass
class Exchange:
    """One request played against the app: what it read, and what it answered."""

    chunks: list[bytes]
    disconnect_after: int | None = None
    reads: int = 0
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    async def receive(self) -> dict[str, Any]:
        self.reads += 1
        if self.disconnect_after is not None and self.reads > self.disconnect_after:
            return {"type": "http.disconnect"}
        chunk = self.chunks[self.reads - 1] if self.reads <= len(self.chunks) else b""
        return {"type": "http.request", "body": chunk, "more_body": self.reads < len(self.chunks)}

    async def send(self, message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {k.decode(): v.decode() for k, v in message.get("headers", [])}
        else:
            self.body += message.get("body", b"")

    def code(self) -> int:
        code: int = json.loads(self.body)["code"]
        return code


async def play(
    app: KudosApp,
    path: str,
    headers: dict[str, str],
    chunks: list[bytes],
    *,
    length: bool = True,
    disconnect_after: int | None = None,
) -> Exchange:
    exchange = Exchange(chunks, disconnect_after)
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-type", b"application/json"))
    if length:
        raw.append((b"content-length", str(sum(map(len, chunks))).encode()))
    else:
        raw.append((b"transfer-encoding", b"chunked"))
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": raw,
        "scheme": "http",
        "server": ("kudos", 80),
        "client": ("127.0.0.1", 1),
        "root_path": "",
        "http_version": "1.1",
    }
    await app(scope, exchange.receive, exchange.send)
    return exchange


@pytest.fixture
def counts(app: KudosApp) -> Iterator[admission.Admission]:
    """The app's counters; every test ends with nothing held and nothing in flight."""
    yield app.admission
    assert (app.admission.bytes_held, app.admission.in_flight) == (0, 0)
    assert (app.admission.bytes_of, app.admission.in_flight_of) == ({}, {})


def upsert_body(customer_id: str) -> bytes:
    return json.dumps({"customerId": customer_id}).encode()


@pytest.mark.parametrize("path", [EVENTS, CUSTOMERS])
@pytest.mark.parametrize("key", [None, "not-a-key"])
async def test_a_missing_or_unknown_key_is_401_before_the_body_is_read(
    app: KudosApp, counts: admission.Admission, keys: Any, path: str, key: str | None
) -> None:
    headers = {} if key is None else {"apikey": key}
    refused = await play(app, path, headers, [b"{" + b" " * 1000 + b"}"])
    assert (refused.status, refused.code(), refused.reads) == (401, 1000, 0)
    known = await play(app, path, {"apikey": keys.api_key}, [upsert_body("k-1")])
    assert known.reads == 1  # the same request with a known key does read it


@pytest.mark.parametrize("path", [EVENTS, CUSTOMERS])
async def test_a_body_past_the_memory_budget_is_503_as_it_arrives(
    app: KudosApp, counts: admission.Admission, auth: dict[str, str], path: str
) -> None:
    counts.bytes_held = counts.memory_bytes - 10  # what other requests hold right now
    try:
        refused = await play(app, path, auth, [upsert_body("budget")])
    finally:
        counts.bytes_held -= counts.memory_bytes - 10
    assert (refused.status, refused.code(), refused.reads) == (503, 5003, 1)  # its first chunk
    assert refused.headers["retry-after"] == "1"
    assert counts.refused[admission.MEMORY] == 1


async def test_a_body_without_length_reserves_its_chunks_as_they_come(
    app: KudosApp, counts: admission.Admission, auth: dict[str, str]
) -> None:
    counts.bytes_held = counts.memory_bytes - 100
    try:
        chunks = [b'{"customerId": "ch', b'unked"' + b" " * 200 + b"}"]
        refused = await play(app, CUSTOMERS, auth, chunks, length=False)
    finally:
        counts.bytes_held -= counts.memory_bytes - 100
    assert (refused.status, refused.code(), refused.reads) == (503, 5003, 2)


@pytest.mark.parametrize("path", [EVENTS, CUSTOMERS])
async def test_a_chunked_body_past_one_mebibyte_is_413_on_every_route(
    app: KudosApp, counts: admission.Admission, auth: dict[str, str], path: str
) -> None:
    chunks = [b'{"customerId": "big", "x": "'] + [b"x" * 65536] * 17 + [b'"}']
    refused = await play(app, path, auth, chunks, length=False)
    assert (refused.status, refused.code()) == (413, 3014)
    assert refused.headers["connection"] == "close"
    assert refused.reads < len(chunks)


@pytest.mark.parametrize("path", [EVENTS, CUSTOMERS])
async def test_past_the_in_flight_limit_requests_are_503_unread(
    app: KudosApp, counts: admission.Admission, auth: dict[str, str], path: str
) -> None:
    counts.in_flight = counts.max_in_flight  # as many requests as allowed are being served
    try:
        refused = await play(app, path, auth, [BODY])
    finally:
        counts.in_flight = 0
    assert (refused.status, refused.code(), refused.reads) == (503, 5003, 0)
    assert refused.headers["retry-after"] == "1"
    assert counts.refused[admission.IN_FLIGHT] == 1


async def test_liveness_is_never_shed(
    app: KudosApp, client: httpx.AsyncClient, counts: admission.Admission
) -> None:
    counts.in_flight = counts.max_in_flight
    try:
        assert (await client.get("/healthz")).status_code == 200
    finally:
        counts.in_flight = 0


async def test_held_bytes_and_requests_in_flight_come_back_whatever_happens(
    app: KudosApp, runtime: Runtime, counts: admission.Admission, auth: dict[str, str]
) -> None:
    outcomes = [
        await play(app, EVENTS, auth, [BODY]),  # success
        await play(app, CUSTOMERS, auth, [upsert_body("held")]),
        await play(app, EVENTS, auth, [b"{nope"]),  # refused body
        await play(app, CUSTOMERS, auth, [b"{nope"]),
        await play(app, EVENTS, auth, [BODY[:10], BODY[10:]], disconnect_after=1),  # gone
        await play(app, CUSTOMERS, auth, [BODY[:10], BODY[10:]], disconnect_after=1),
        await play(app, EVENTS, {**auth, "secretkey": "wrong"}, [BODY]),  # the writer refuses
    ]
    configure_account(runtime, rate_limit="1")
    outcomes += [await play(app, EVENTS, auth, [BODY]) for _ in range(3)]  # 429s
    assert [o.status for o in outcomes][:4] == [200, 200, 400, 400]
    assert 429 in [o.status for o in outcomes[7:]]
    assert (counts.bytes_held, counts.in_flight) == (0, 0)


@pytest.fixture
def other_shop(runtime: Runtime) -> dict[str, str]:
    """A second account's headers (both keys)."""
    keyring = runtime.context.keyring
    pair = run_in_transaction(runtime.db, lambda tx: accounts.create(tx, keyring, "other"))
    return {"apikey": pair.api_key, "secretkey": pair.secret_key}


async def _seen(app: KudosApp, headers: dict[str, str]) -> int:
    """Make the process see the key (one request), and return its account id."""
    assert (await play(app, CUSTOMERS, headers, [upsert_body("seen")])).status == 200
    account = app.runtime.keys.cached(headers["apikey"])
    assert account is not None
    return account


async def _greedy_and_other(
    app: KudosApp,
    path: str,
    auth: dict[str, str],
    other_shop: dict[str, str],
    held: dict[int, int],
    amount: int,
) -> tuple[Exchange, Exchange]:
    """A request of the account whose share ``held`` (``in_flight_of`` or ``bytes_of``) says
    is nearly spent, then one of another account."""
    greedy, _ = await _seen(app, auth), await _seen(app, other_shop)
    held[greedy] = amount
    try:
        refused = await play(app, path, auth, [upsert_body("greedy")])
        served = await play(app, path, other_shop, [BODY if path == EVENTS else upsert_body("o")])
    finally:
        del held[greedy]
    return refused, served


@pytest.mark.parametrize("path", [EVENTS, CUSTOMERS])
async def test_an_account_past_its_share_of_requests_is_503_while_others_go_on(
    app: KudosApp,
    counts: admission.Admission,
    auth: dict[str, str],
    other_shop: dict[str, str],
    path: str,
) -> None:
    counts.in_flight += counts.account_in_flight  # the greedy account's requests, in flight
    try:
        refused, served = await _greedy_and_other(
            app, path, auth, other_shop, counts.in_flight_of, counts.account_in_flight
        )
    finally:
        counts.in_flight -= counts.account_in_flight
    assert (refused.status, refused.code(), refused.reads) == (503, 5003, 0)
    assert refused.headers["retry-after"] == "1"
    assert served.status == 200
    assert counts.refused[admission.ACCOUNT_IN_FLIGHT] == 1


@pytest.mark.parametrize("path", [EVENTS, CUSTOMERS])
async def test_an_account_past_its_share_of_body_bytes_is_503_while_others_go_on(
    app: KudosApp,
    counts: admission.Admission,
    auth: dict[str, str],
    other_shop: dict[str, str],
    path: str,
) -> None:
    held = counts.account_memory_bytes - 10  # its slow uploads hold nearly its whole share
    counts.bytes_held += held
    try:
        refused, served = await _greedy_and_other(
            app, path, auth, other_shop, counts.bytes_of, held
        )
    finally:
        counts.bytes_held -= held
    assert (refused.status, refused.code(), refused.reads) == (503, 5003, 1)
    assert served.status == 200
    assert counts.refused[admission.ACCOUNT_MEMORY] == 1


async def test_keys_the_process_has_not_seen_share_one_account_s_share(
    app: KudosApp, counts: admission.Admission, auth: dict[str, str], other_shop: dict[str, str]
) -> None:
    """A flood of unknown keys fills the share of unseen keys, not the known accounts'."""
    await _seen(app, auth)
    counts.in_flight_of[admission.UNSEEN] = counts.account_in_flight
    counts.in_flight += counts.account_in_flight
    try:
        unseen = await play(app, CUSTOMERS, other_shop, [upsert_body("first")])
        known = await play(app, CUSTOMERS, auth, [upsert_body("known")])
    finally:
        counts.in_flight -= counts.account_in_flight
        del counts.in_flight_of[admission.UNSEEN]
    assert (unseen.status, unseen.code()) == (503, 5003)
    assert known.status == 200


async def test_an_account_over_its_rate_limit_is_429_before_its_body_is_read(
    app: KudosApp, runtime: Runtime, counts: admission.Admission, auth: dict[str, str]
) -> None:
    """Over-limit requests cost no body read and no decoding: a tenant that keeps sending
    past its limit cannot spend the server's time on bodies that will be refused anyway."""
    configure_account(runtime, rate_limit="1")
    runtime.context.clock = lambda: 2000.5  # one fixed second
    first = await play(app, EVENTS, auth, [BODY])
    refused = await play(app, EVENTS, auth, [BODY])
    assert first.status == 200
    assert (refused.status, refused.code(), refused.reads) == (429, 2003, 0)
    assert refused.headers["retry-after"] == "1"


async def test_a_body_holds_what_arrived_not_what_its_length_promised(
    app: KudosApp, counts: admission.Admission, auth: dict[str, str]
) -> None:
    """A client that announces a megabyte and sends a byte holds a byte: connections that
    only promise bodies cannot spend the budget (a few dozen of them used to lock every
    account out for as long as the body timeout let them wait)."""
    seen: list[int] = []
    exchange = Exchange([b"{", b""], disconnect_after=1)
    original = exchange.receive

    async def receive() -> dict[str, Any]:
        seen.append(counts.bytes_held)  # what the process holds when the app asks for more
        return await original()

    exchange.receive = receive  # type: ignore[method-assign]
    raw = [(b"apikey", auth["apikey"].encode()), (b"content-type", b"application/json")]
    raw.append((b"content-length", b"1048576"))
    scope = {"type": "http", "method": "POST", "path": EVENTS, "headers": raw, "query_string": b""}
    await app(scope, exchange.receive, exchange.send)
    assert seen[0] == 0 and max(seen) <= 1  # never the promised megabyte


@pytest.mark.parametrize("path", [EVENTS, CUSTOMERS])
async def test_an_answer_before_a_body_the_client_holds_back_closes_the_connection(
    app: KudosApp, counts: admission.Admission, path: str
) -> None:
    """``Expect: 100-continue``: the client sends the body only on a go-ahead. Refused before
    that, the connection must close, or what the client sends next would be read as the
    body of the refused request."""
    expecting = await play(app, path, {"expect": "100-continue"}, [b"{}"])
    assert (expecting.status, expecting.headers.get("connection")) == (401, "close")
    plain = await play(app, path, {}, [b"{}"])
    assert (plain.status, plain.headers.get("connection")) == (401, None)


async def test_a_key_longer_than_any_key_is_refused_without_a_lookup(
    app: KudosApp, counts: admission.Admission
) -> None:
    refused = await play(app, EVENTS, {"apikey": "k" * 16_000}, [BODY])
    assert (refused.status, refused.code(), refused.reads) == (401, 1000, 0)
    assert app.runtime.keys.remembered == (0, 0)  # nothing of it kept


async def test_a_key_lookup_the_store_cannot_answer_is_503(
    app: KudosApp, counts: admission.Admission, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(*_: Any, **__: Any) -> Any:
        raise ConnectionError("the store went away")

    monkeypatch.setattr(app.runtime.reader, "run", unreachable)
    refused = await play(app, EVENTS, {"apikey": "some-key"}, [BODY])
    assert (refused.status, refused.code()) == (503, 5003)
    assert refused.headers["retry-after"] == "1"
