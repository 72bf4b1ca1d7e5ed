"""Channel merging by email or mobile: linking, merging into the older profile, placeholders."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kudos.bootstrap import Runtime
from kudos.services import identity
from tests.conftest import configure_account

EVENTS = "/api/v4.0/integrations/events"
CUSTOMERS = "/api/v4.0/integrations/customers"


async def send(
    client: httpx.AsyncClient, auth: dict[str, str], customer_id: str, **extra: Any
) -> None:
    body = {"customerId": customer_id, "events": {f"seen_{customer_id}": {}}, **extra}
    response = await client.post(EVENTS, json=body, headers=auth)
    assert response.status_code == 200, response.text


async def profile(
    client: httpx.AsyncClient, auth: dict[str, str], customer_id: str
) -> dict[str, Any]:
    response = await client.get(f"{CUSTOMERS}/{customer_id}", headers=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def event_names(
    client: httpx.AsyncClient, auth: dict[str, str], customer_id: str
) -> set[str]:
    response = await client.get(
        f"{CUSTOMERS}/{customer_id}/events", params={"limit": 1000}, headers=auth
    )
    return {e["name"] for e in response.json()["events"]}


async def test_with_merging_off_email_is_only_an_attribute(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await send(client, auth, "web-1", email="jane@x.io")
    await send(client, auth, "pos-1", email="jane@x.io")
    assert (await profile(client, auth, "web-1"))["gameballId"] != (
        await profile(client, auth, "pos-1")
    )["gameballId"]
    assert (await profile(client, auth, "pos-1"))["customerAttributes"]["email"] == "jane@x.io"


async def test_ids_sharing_a_normalised_email_resolve_to_one_profile(
    client: httpx.AsyncClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    configure_account(runtime, channel_merging="email")
    await send(client, auth, "web-1", email="Jane@X.io")
    await send(client, auth, "pos-1", email="  jane@x.IO ")
    await send(client, auth, "app-1", email="jane@x.io")
    ids = {(await profile(client, auth, c))["gameballId"] for c in ("web-1", "pos-1", "app-1")}
    assert len(ids) == 1
    assert await event_names(client, auth, "pos-1") == {"seen_web-1", "seen_pos-1", "seen_app-1"}
    assert (await profile(client, auth, "app-1"))["linkedCustomerIds"] == [
        "web-1",
        "pos-1",
        "app-1",
    ]


async def test_mobile_merging_normalises_to_plus_and_digits(
    client: httpx.AsyncClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    configure_account(runtime, channel_merging="mobile")
    await send(client, auth, "a", mobile="+20 (100) 555-1234")
    await send(client, auth, "b", mobile="+201005551234")
    await send(client, auth, "c", mobile="201005551234")  # no +: a different identifier
    assert (await profile(client, auth, "a"))["gameballId"] == (await profile(client, auth, "b"))[
        "gameballId"
    ]
    assert (await profile(client, auth, "c"))["gameballId"] != (await profile(client, auth, "a"))[
        "gameballId"
    ]


async def test_placeholders_never_link_profiles(
    client: httpx.AsyncClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    configure_account(runtime, channel_merging="email")
    for n, placeholder in enumerate(["", "null", "None", "N/A", "undefined", " - "]):
        await send(client, auth, f"guest-{n}", email=placeholder)
    ids = {(await profile(client, auth, f"guest-{n}"))["gameballId"] for n in range(6)}
    assert len(ids) == 6


async def test_linking_two_existing_profiles_merges_into_the_older(
    client: httpx.AsyncClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    configure_account(runtime, channel_merging="email")
    await send(client, auth, "old", email="a@x.io")
    await client.post(
        CUSTOMERS,
        json={
            "customerId": "old",
            "customerAttributes": {"displayName": "Old", "custom": {"o": 1}},
        },
        headers=auth,
    )
    await send(client, auth, "new", email="b@x.io")
    await client.post(
        CUSTOMERS,
        json={"customerId": "new", "customerAttributes": {"city": "Giza", "custom": {"n": 2}}},
        headers=auth,
    )
    older = (await profile(client, auth, "old"))["gameballId"]
    # "new" now presents the email that "old" holds: the two profiles become one.
    await send(client, auth, "new", email="a@x.io")
    merged_old, merged_new = await profile(client, auth, "old"), await profile(client, auth, "new")
    assert merged_old["gameballId"] == merged_new["gameballId"] == older
    attributes = merged_new["customerAttributes"]
    assert attributes["displayName"] == "Old" and attributes["city"] == "Giza"
    assert attributes["custom"] == {"o": 1, "n": 2}
    assert await event_names(client, auth, "old") == {"seen_old", "seen_new"}
    assert len(await _history(client, auth, "old")) == 3  # nothing lost: all three events


async def _history(client: httpx.AsyncClient, auth: dict[str, str], customer_id: str) -> list[Any]:
    response = await client.get(
        f"{CUSTOMERS}/{customer_id}/events", params={"limit": 1000}, headers=auth
    )
    events: list[Any] = response.json()["events"]
    return events


async def test_merges_are_recorded(
    client: httpx.AsyncClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    configure_account(runtime, channel_merging="email")
    await send(client, auth, "one", email="a@x.io")
    await send(client, auth, "two", email="b@x.io")
    await send(client, auth, "two", email="a@x.io")
    winner = (await profile(client, auth, "one"))["gameballId"]

    def read(tx: Any) -> list[Any]:
        from kudos.storage import accounts, profiles

        shop = accounts.by_name(tx, "shop")
        assert shop is not None
        return profiles.merges_into(tx, shop.id, winner)

    records = await runtime.reader.run(read)
    assert len(records) == 1
    loser_id, kind, identifier, moved, merged_at = records[0]
    assert (kind, identifier) == ("email", "a@x.io")
    assert loser_id != winner
    assert "two" in str(moved)
    assert merged_at


async def _refused(
    client: httpx.AsyncClient, auth: dict[str, str], customer_id: str, **extra: Any
) -> dict[str, Any]:
    body = {"customerId": customer_id, "events": {f"seen_{customer_id}": {}}, **extra}
    response = await client.post(EVENTS, json=body, headers=auth)
    assert response.status_code == 422, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_a_profile_links_at_most_its_share_of_customer_ids(
    client: httpx.AsyncClient,
    runtime: Runtime,
    auth: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client that sends endless customerIds with one email cannot grow one profile (and
    every read of it) without bound: past the cap the link is refused, nothing written."""
    monkeypatch.setattr(identity, "MAX_LINKED_CUSTOMER_IDS", 3)
    configure_account(runtime, channel_merging="email")
    for n in range(3):
        await send(client, auth, f"device-{n}", email="jane@x.io")
    refused = await _refused(client, auth, "device-3", email="jane@x.io")
    assert refused["code"] == 3003 and "more than 3 customerIds" in refused["message"]
    linked = (await profile(client, auth, "device-0"))["linkedCustomerIds"]
    assert linked == ["device-0", "device-1", "device-2"]
    missing = await client.get(f"{CUSTOMERS}/device-3", headers=auth)
    assert missing.status_code == 404


async def test_a_merge_past_the_share_of_customer_ids_is_refused_and_changes_nothing(
    client: httpx.AsyncClient,
    runtime: Runtime,
    auth: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(identity, "MAX_LINKED_CUSTOMER_IDS", 2)
    configure_account(runtime, channel_merging="email")
    await send(client, auth, "web-1", email="jane@x.io")
    await send(client, auth, "web-2", email="jane@x.io")
    await send(client, auth, "pos-1")  # a profile of its own, for now
    refused = await _refused(client, auth, "pos-1", email="jane@x.io")  # would merge: 3 ids
    assert refused["code"] == 3003
    assert (await profile(client, auth, "pos-1"))["linkedCustomerIds"] == ["pos-1"]
    assert (await profile(client, auth, "web-1"))["linkedCustomerIds"] == ["web-1", "web-2"]
    assert await event_names(client, auth, "pos-1") == {"seen_pos-1"}


async def test_a_profile_s_attributes_are_bounded_however_many_updates_add_to_them(
    client: httpx.AsyncClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(identity, "MAX_ATTRIBUTES_BYTES", 400)
    for n in range(4):  # each update alone is small; together they would pass the bound
        body = {"customerId": "grow", "customerAttributes": {"custom": {f"k{n}": "v" * 60}}}
        assert (await client.post(CUSTOMERS, json=body, headers=auth)).status_code == 200
    body = {"customerId": "grow", "customerAttributes": {"custom": {"k9": "v" * 300}}}
    refused = await client.post(CUSTOMERS, json=body, headers=auth)
    assert (refused.status_code, refused.json()["code"]) == (422, 3003)
    custom = (await profile(client, auth, "grow"))["customerAttributes"]["custom"]
    assert sorted(custom) == ["k0", "k1", "k2", "k3"]  # the refused update changed nothing
