"""Delivery end to end: outbox → worker → a real local receiver; signatures, retries, dead
letters, redelivery, the delivery log, atomicity with the cause, isolation, disabling."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from kudos.bootstrap import Runtime, run_in_transaction
from kudos.services import ingest
from kudos.webhooks import signing
from kudos.webhooks.delivery import NO_ANSWER
from kudos.webhooks.worker import Worker
from tests.api.test_campaigns import shop_program
from tests.conftest import events_body
from tests.webhooks.conftest import (
    EVENTS,
    HOOKS,
    Clock,
    Receiver,
    add_endpoint,
    deliveries,
    messages,
    send,
)


async def test_a_reward_is_delivered_signed_in_both_schemes(
    client: httpx.AsyncClient, auth: dict[str, str], receiver: Receiver, worker: Worker
) -> None:
    assert (
        await client.put("/api/kudos/v1/program", json=shop_program(), headers=auth)
    ).status_code == 200
    hook = await add_endpoint(
        client, auth, receiver.url(), "campaign.rewarded", "customer.profile.updated"
    )
    await send(client, auth)
    assert await worker.run_once() == 3  # welcome + order points, then one profile update
    got = receiver.got()
    for delivery in got:
        signing.verify(hook["secret"], delivery.headers, delivery.body)
    rewards = [d.json() for d in got if d.headers.get("x-gb-signature") is None]
    assert {r["type"] for r in rewards} == {"campaign.rewarded"}
    assert sorted(r["data"]["campaignId"] for r in rewards) == ["order-points", "welcome"]
    order = next(r["data"] for r in rewards if r["data"]["campaignId"] == "order-points")
    assert order["points"] == 15 and order["customerId"] == "cust-1"
    assert order["event"]["name"] == "place_order"
    assert order["event"]["metadata"]["order_amount"] == 150.75
    [profile] = [d for d in got if d.headers.get("x-gb-signature") is not None]
    expected = hashlib.sha1(profile.body + b":" + auth["secretkey"].encode()).hexdigest()
    assert profile.headers["x-gb-signature"] == expected
    assert profile.headers["x-gb-webhook-version"] == "v4"
    body = profile.json()
    assert body["event"] == "customer.profile.updated" and body["customer_id"] == "cust-1"
    assert body["data"]["total_points"] == 35 and body["data"]["tier_name"] == "Bronze"


async def test_topics_filter_what_an_endpoint_receives(
    client: httpx.AsyncClient, auth: dict[str, str], receiver: Receiver, worker: Worker
) -> None:
    await add_endpoint(client, auth, receiver.url("/created"), "customer.created")
    await add_endpoint(client, auth, receiver.url("/events"), "event.received")
    await send(client, auth, "cust-1")
    await send(client, auth, "cust-1")  # known customer: no second customer.created
    await worker.run_once()
    created = [d.json() for d in receiver.got("/created")]
    assert [c["data"]["customerId"] for c in created] == ["cust-1"]
    events = [d.json()["data"]["event"]["name"] for d in receiver.got("/events")]
    assert sorted(events) == ["place_order", "place_order", "write_review", "write_review"]


async def test_a_failed_attempt_is_retried_later_with_the_same_webhook_id(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    receiver: Receiver,
    worker: Worker,
    clock: Clock,
) -> None:
    hook = await add_endpoint(client, auth, receiver.url(), "customer.created")
    receiver.respond("/hook", 500)
    await send(client, auth)
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0  # not due before the first delay (1 s + jitter)
    clock.advance(1.3)
    assert await worker.run_once() == 1
    first, second = receiver.got()
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    [message] = await messages(client, auth, hook["id"])
    assert (message["state"], message["attempts"]) == ("delivered", 2)
    log = await deliveries(client, auth, hook["id"])
    assert [(a["attempt"], a["statusCode"], a["outcome"]) for a in log] == [
        (2, 200, "delivered"),
        (1, 500, "pending"),
    ]
    assert log[1]["error"] == "HTTP 500" and all(a["latencyMs"] >= 0 for a in log)


async def test_after_the_last_retry_a_message_is_a_dead_letter_and_can_be_redelivered(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    receiver: Receiver,
    worker: Worker,
    clock: Clock,
) -> None:
    hook = await add_endpoint(client, auth, receiver.url(), "customer.created")
    receiver.respond("/hook", 503, 503, 503, 503)
    await send(client, auth)
    for _ in range(4):  # schedule 1s,2s,4s: four attempts in all
        assert await worker.run_once() == 1
        clock.advance(10)
    assert await worker.run_once() == 0
    [dead] = await messages(client, auth, hook["id"], state="dead")
    assert dead["attempts"] == 4 and dead["lastStatusCode"] == 503
    replay = await client.post(f"{HOOKS}/messages/{dead['messageId']}/redeliver", headers=auth)
    assert replay.status_code == 202 and replay.json()["state"] == "pending"
    assert await worker.run_once() == 1
    assert [d.headers["webhook-id"] for d in receiver.got()] == [dead["messageId"]] * 5
    assert (await messages(client, auth, hook["id"]))[0]["state"] == "delivered"


async def test_every_dead_letter_of_an_endpoint_can_be_replayed_at_once(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    receiver: Receiver,
    make_worker: Callable[..., Worker],
    clock: Clock,
) -> None:
    worker = make_worker(clock, webhook_retry_schedule="")  # no retries: dead at once
    hook = await add_endpoint(client, auth, receiver.url(), "customer.created")
    receiver.respond("/hook", 500, 500, 500)
    for customer in ("a", "b", "c"):
        await send(client, auth, customer)
    assert await worker.run_once() == 3
    assert len(await messages(client, auth, hook["id"], state="dead")) == 3
    replay = await client.post(f"{HOOKS}/{hook['id']}/dead-letters/redeliver", headers=auth)
    assert replay.json() == {"endpointId": hook["id"], "requeued": 3}
    assert await worker.run_once() == 3
    assert {m["state"] for m in await messages(client, auth, hook["id"])} == {"delivered"}


async def test_redelivering_an_unknown_message_is_404(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.post(f"{HOOKS}/messages/msg_nope/redeliver", headers=auth)
    assert response.status_code == 404 and response.json()["code"] == 4004


async def test_a_request_rolled_back_in_its_batch_emits_nothing(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    receiver: Receiver,
    worker: Worker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await add_endpoint(client, auth, receiver.url(), "customer.created", "event.received")
    real = ingest.IngestEvents.apply

    def failing(self: ingest.IngestEvents, tx: Any) -> Any:
        outcome = real(self, tx)  # the messages are staged by now…
        if self.batch.customer_id == "doomed":
            raise RuntimeError("boom")  # …and roll back with the request
        return outcome

    monkeypatch.setattr(ingest.IngestEvents, "apply", failing)
    doomed = client.post(EVENTS, json=events_body("doomed"), headers=auth)
    fine = client.post(EVENTS, json=events_body("fine"), headers=auth)
    answers = await asyncio.gather(doomed, fine)
    assert [a.status_code for a in answers] == [500, 200]
    await worker.run_once()
    customers = {d.json()["data"]["customerId"] for d in receiver.got()}
    assert customers == {"fine"} and len(receiver.got()) == 3


async def test_a_merge_and_a_tier_change_are_announced(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    receiver: Receiver,
    worker: Worker,
    runtime: Runtime,
) -> None:
    from tests.conftest import configure_account

    configure_account(runtime, channel_merging="email")
    await client.put("/api/kudos/v1/program", json=shop_program(), headers=auth)
    await add_endpoint(client, auth, receiver.url(), "customer.merged", "tier.changed")
    for customer in ("web-1", "app-1"):
        body = {
            "customerId": customer,
            "events": {"place_order": {"order_amount": 700, "currency": "USD"}},
        }
        assert (await client.post(EVENTS, json=body, headers=auth)).status_code == 200
    body = {"customerId": "web-1", "email": "A@example.com", "events": {"login": {}}}
    assert (await client.post(EVENTS, json=body, headers=auth)).status_code == 200
    body = {"customerId": "app-1", "email": "a@example.com", "events": {"login": {}}}
    assert (await client.post(EVENTS, json=body, headers=auth)).status_code == 200
    await worker.run_once()
    kinds = [d.json()["type"] for d in receiver.got()]
    # Each customer enters Bronze (90 points); merged, their 180 points reach Silver.
    assert kinds.count("tier.changed") == 3 and kinds.count("customer.merged") == 1
    merged = next(d.json()["data"] for d in receiver.got() if d.json()["type"] == "customer.merged")
    assert merged["movedCustomerIds"] == ["app-1"] and merged["mergedBy"] == "email"
    tiers = [d.json()["data"] for d in receiver.got() if d.json()["type"] == "tier.changed"]
    moves = sorted((t["tier"]["name"], str(t["previousTier"]), t["direction"]) for t in tiers)
    assert moves == [
        ("Bronze", "None", "upgraded"),
        ("Bronze", "None", "upgraded"),
        ("Silver", str({"order": 1, "name": "Bronze"}), "upgraded"),
    ]


async def test_a_campaign_notification_becomes_a_gameball_push(
    client: httpx.AsyncClient, auth: dict[str, str], receiver: Receiver, worker: Worker
) -> None:
    program = shop_program()
    program["campaigns"][0]["notification"] = {"title": "Welcome!", "body": "20 points for you"}
    await client.put("/api/kudos/v1/program", json=program, headers=auth)
    await add_endpoint(client, auth, receiver.url(), "customer.notification.push")
    await send(client, auth)
    await send(client, auth)  # the welcome campaign rewards once
    await worker.run_once()
    [push] = receiver.got()
    body = push.json()
    assert body["event"] == "customer.notification.push" and body["client_id"] == "shop"
    assert body["data"] == [
        {"local": "en", "icon": None, "title": "Welcome!", "body": "20 points for you"}
    ]
    assert push.headers["x-gb-signature"]


async def test_manual_points_and_expiry_are_announced(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    receiver: Receiver,
    worker: Worker,
    runtime: Runtime,
) -> None:
    from kudos.services import rewards

    await add_endpoint(client, auth, receiver.url(), "points.expired", "customer.profile.updated")
    await send(client, auth)
    credit = await client.post(
        "/api/kudos/v1/customers/cust-1/points", json={"points": 40, "reason": "gift"}, headers=auth
    )
    assert credit.status_code == 200
    run_in_transaction(
        runtime.db,
        lambda tx: tx.execute("UPDATE history SET expires_at = '2000-01-01T00:00:00.000000Z'"),
    )
    assert await runtime.writer.submit(rewards.ExpirePoints(now="2001-01-01T00:00:00.000000Z")) == 1
    await worker.run_once()
    kinds = [d.json().get("type") or d.json()["event"] for d in receiver.got()]
    assert kinds.count("customer.profile.updated") == 2 and kinds.count("points.expired") == 1
    expired = next(d.json()["data"] for d in receiver.got() if d.json().get("type"))
    assert expired == {
        "customerId": "cust-1",
        "gbCustomerId": expired["gbCustomerId"],
        "points": 40,
        "pointsBalance": 0,
    }


async def test_a_slow_endpoint_delays_neither_others_nor_ingestion(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    receiver: Receiver,
    make_worker: Callable[..., Worker],
    clock: Clock,
) -> None:
    worker = make_worker(clock, webhook_concurrency_per_endpoint=2, webhook_poll_seconds=0.05)
    await add_endpoint(client, auth, receiver.url("/slow"), "customer.created")
    await add_endpoint(client, auth, receiver.url("/fast"), "customer.created")
    release = receiver.hold("/slow")
    running = asyncio.create_task(worker.run())
    try:
        for n in range(8):
            await send(client, auth, f"c{n}")  # acknowledged while /slow hangs
        fast = await asyncio.to_thread(receiver.wait_for, 8, "/fast")
        assert len(fast) == 8
        assert len(receiver.got("/slow")) == 2  # its two slots, the rest waits
        assert receiver.most_in_flight["/slow"] == 2
    finally:
        release.set()
        await asyncio.to_thread(receiver.wait_for, 8, "/slow")
        worker.stop()
        await running
    assert receiver.most_in_flight["/slow"] <= 2


async def test_an_endpoint_failing_for_days_is_disabled_and_says_why(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    receiver: Receiver,
    make_worker: Callable[..., Worker],
    clock: Clock,
) -> None:
    worker = make_worker(clock, webhook_retry_schedule="1d,1d,1d,1d", webhook_disable_after="2d")
    hook = await add_endpoint(client, auth, receiver.url(), "customer.created")
    receiver.respond("/hook", 500, 500, 500)
    await send(client, auth)
    for _ in range(3):
        assert await worker.run_once() == 1
        clock.advance(1.3 * 86400)
    shown = (await client.get(f"{HOOKS}/{hook['id']}", headers=auth)).json()
    assert shown["active"] is False and shown["failingSince"] is not None
    assert "no successful delivery since" in shown["disabledReason"]
    assert "HTTP 500" in shown["disabledReason"]
    assert await worker.run_once() == 0  # a disabled endpoint's messages wait
    enabled = await client.patch(f"{HOOKS}/{hook['id']}", json={"active": True}, headers=auth)
    assert enabled.json()["disabledReason"] is None and enabled.json()["active"] is True
    assert await worker.run_once() == 1
    assert (await messages(client, auth, hook["id"]))[0]["state"] == "delivered"


async def test_an_unreachable_endpoint_is_a_failed_attempt_with_the_error(
    client: httpx.AsyncClient, auth: dict[str, str], worker: Worker
) -> None:
    from tests.conftest import free_port

    hook = await add_endpoint(client, auth, f"http://127.0.0.1:{free_port()}/", "customer.created")
    await send(client, auth)
    assert await worker.run_once() == 1
    [attempt] = await deliveries(client, auth, hook["id"])
    assert attempt["statusCode"] is None and attempt["outcome"] == "pending"
    assert attempt["error"] == NO_ANSWER  # the same text for every port, open or closed


async def test_finished_messages_are_purged_after_the_retention_pending_ones_stay(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    receiver: Receiver,
    worker: Worker,
    runtime: Runtime,
) -> None:
    from datetime import timedelta

    from kudos.domain.model import iso_at
    from kudos.services import maintenance
    from kudos.storage.writer import Call

    delivered = await add_endpoint(client, auth, receiver.url(), "customer.created")
    await send(client, auth, "a")
    assert await worker.run_once() == 1
    paused = await add_endpoint(client, auth, receiver.url("/paused"), "customer.created")
    await client.patch(f"{HOOKS}/{paused['id']}", json={"active": False}, headers=auth)
    await send(client, auth, "b")  # pending for the first endpoint, nothing for the paused one
    await client.patch(f"{HOOKS}/{delivered['id']}", json={"active": False}, headers=auth)

    def purge(days: float) -> Call:
        later = iso_at(worker.clock() + days * 86400)
        return maintenance.purge_finished_webhooks(now=later, retention=timedelta(days=30))

    assert await runtime.writer.submit(purge(29)) == 0
    assert await runtime.writer.submit(purge(31)) == 1
    left = await messages(client, auth, delivered["id"])
    assert [(m["state"], m["attempts"]) for m in left] == [("pending", 0)]
    assert await deliveries(client, auth, delivered["id"]) == []
    assert await messages(client, auth, paused["id"]) == []


async def test_messages_and_the_delivery_log_page_newest_first(
    client: httpx.AsyncClient, auth: dict[str, str], receiver: Receiver, worker: Worker
) -> None:
    hook = await add_endpoint(client, auth, receiver.url(), "customer.created")
    for customer in ("a", "b", "c"):
        await send(client, auth, customer)
    assert await worker.run_once() == 3
    for kind in ("messages", "deliveries"):
        path = f"{HOOKS}/{hook['id']}/{kind}"
        first = (await client.get(path, params={"limit": 2}, headers=auth)).json()
        assert len(first["items"]) == 2 and first["nextBefore"] == first["items"][1]["id"]
        rest = await client.get(
            path, params={"limit": 2, "before": first["nextBefore"]}, headers=auth
        )
        ids = [item["id"] for item in first["items"] + rest.json()["items"]]
        assert len(ids) == 3 and ids == sorted(ids, reverse=True)
        assert rest.json()["nextBefore"] is None
