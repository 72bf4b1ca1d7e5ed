"""bench/burn.py's bodies, answers and client, against the real routes in-process (no servers)."""

from __future__ import annotations

import asyncio
import json
import random

import httpx

from bench import burn
from tests.burn.conftest import apply_program, balance


def test_a_cart_pays_its_total_less_the_held_amount() -> None:
    cart = burn.make_cart(random.Random(1))
    assert 2 <= len(cart.lines) <= 3
    assert cart.hold_cents in {100, 200, 300, 400, 500}
    assert cart.paid_cents == cart.total_cents - cart.hold_cents > 0
    body = burn.order_body("c1", "o-1", cart, "ref-1")
    assert body["redemption"] == {"pointsHoldReference": "ref-1"}
    assert body["totalPaid"] == burn.money(cart.paid_cents)
    assert len(body["lineItems"]) == len(cart.lines)


def test_money_is_an_exact_numeric_string() -> None:
    assert [burn.money(c) for c in (5, 100, 4999)] == ["0.05", "1.00", "49.99"]


def test_the_ledger_adds_up_what_the_answers_moved() -> None:
    ledger = burn.Ledger()
    ledger.record("manual", {"points": 1000})
    ledger.record("hold", {"holdEquivalentPoints": 100})
    ledger.record("order", {"redeemedPoints": 100, "rewardedPoints": 90}, hold_points=100)
    ledger.record("refund", {"pointsClawedBack": 45, "pointsReturned": 50})
    assert (ledger.expected, ledger.held) == (1000 - 100 + 90 - 45 + 50, 0)
    right = {
        "totalPointsBalance": 995,
        "pendingPoints": 0,
        "heldPoints": 0,
        "availablePointsBalance": 995,
    }
    assert burn.mismatch(ledger, right) is None
    assert "total+pending 994" in (burn.mismatch(ledger, right | {"totalPointsBalance": 994}) or "")


def test_an_answer_head_and_an_error_body_are_read() -> None:
    head = b"HTTP/1.1 422 Unprocessable Entity\r\nContent-Length: 12\r\nConnection: close\r\n\r\n"
    assert burn.parse_head(head) == (422, {"content-length": "12", "connection": "close"})
    body = json.dumps({"code": 9008, "message": "Insufficient balance."}).encode()
    assert burn.error_key("hold", 422, body) == "hold 422 code 9008: Insufficient balance."


async def test_the_connection_keeps_alive_across_requests() -> None:
    seen: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(2):
            head = await reader.readuntil(b"\r\n\r\n")
            _, fields = burn.parse_head(b"HTTP/1.1 200 -\r\n" + head.split(b"\r\n", 1)[1])
            seen.append(await reader.readexactly(int(fields["content-length"])))
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        connection = burn.Connection(f"http://127.0.0.1:{port}", {"apikey": "k"})
        assert await connection.post("/a", b"[1]") == (200, b"{}")
        assert await connection.post("/b", b"[2]") == (200, b"{}")
        connection.close()
    assert seen == [b"[1]", b"[2]"]


async def test_checkouts_on_the_routes_leave_the_balances_the_answers_add_up_to(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await apply_program(client, auth, burn.PROGRAM)

    async def post(path: str, body: bytes) -> tuple[int, bytes]:
        headers = {**auth, "content-type": "application/json"}
        reply = await client.post(path, content=body, headers=headers)
        return reply.status_code, reply.content

    plan = burn.Plan(
        url="http://kudos", keys=("-", "-"), tag="t", concurrency=1, customers=2, seed=1000
    )
    generator = burn.Generator(plan)
    worker = burn.Worker(0, random.Random(0), post)
    await generator.seed(worker)
    for _ in range(3):
        await generator.checkout(worker)
    await generator.refund(worker)
    assert (generator.non2xx, generator.failures) == ({}, {})
    assert set(generator.latencies) == {"manual", "hold", "order", "refund"}
    assert generator.checkouts == 3
    ledgers = generator.ledgers.values()
    assert sum(ledger.redeemed for ledger in ledgers) > 0
    assert sum(ledger.clawed + ledger.returned for ledger in ledgers) > 0
    for customer, ledger in generator.ledgers.items():
        assert burn.mismatch(ledger, await balance(client, auth, customer)) is None
