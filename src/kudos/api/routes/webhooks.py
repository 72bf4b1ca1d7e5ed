"""kudos management API: webhook endpoints, their messages and delivery log, redelivery."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response

from kudos.api.deps import RuntimeDep, SecretKeyAuth, read
from kudos.api.routing import KudosRoute
from kudos.api.schemas import (
    WebhookAttemptsPage,
    WebhookCreate,
    WebhookCreated,
    WebhookMessagesPage,
    WebhookPublic,
    WebhookRedelivered,
    WebhookReplayed,
    WebhookUpdate,
)
from kudos.bootstrap import Runtime
from kudos.domain.model import Account, Credentials
from kudos.services import webhooks
from kudos.storage.db import Tx

router = APIRouter(tags=["webhooks"], route_class=KudosRoute)

MAX_ID = 2**63 - 1
EndpointId = Annotated[int, Path(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=webhooks.MAX_PAGE)]
Before = Annotated[
    int | None, Query(ge=1, le=MAX_ID, description="The last id of the previous page")
]


# How long registration waits for DNS; a name not resolved by then passes (every delivery
# resolves and checks it again).
RESOLVE_SECONDS = 5.0


async def _write(
    runtime: Runtime, credentials: Credentials, fn: Callable[[Tx, Account], Any]
) -> Any:
    work = webhooks.ManageWebhooks(runtime.context.keyring, credentials, fn)
    return await runtime.writer.submit(work)


def _rules(runtime: Runtime) -> webhooks.EndpointRules:
    settings = runtime.settings
    return webhooks.EndpointRules(
        max_endpoints=settings.webhook_max_endpoints,
        allow_private=settings.webhook_allow_private,
    )


async def _check_target(
    runtime: Runtime, credentials: Credentials, url: Any, *, adding: bool = False
) -> None:
    """Check where a URL's host name resolves, before the write (the writer never waits on
    DNS): its shape first (nothing to resolve in a malformed URL), then the caller's keys
    (no lookups for strangers) and, when ``adding``, room for one more endpoint (no lookups
    past the limit), then the lookup, on the webhooks' resolver (bounded per account)."""
    allow_private = runtime.settings.webhook_allow_private
    checked = webhooks.check_url(url, allow_private=allow_private)
    rules = _rules(runtime)

    def keys_and_room(tx: Tx, account: Account) -> Account:
        if adding:
            webhooks.check_room(tx, account, rules)
        return account

    account = await read(runtime, credentials, keys_and_room)
    name = webhooks.name_to_resolve(checked)
    if name is None:
        return
    try:
        lookup = runtime.resolver.resolve(*name, who=account.id)
        addresses = await asyncio.wait_for(lookup, RESOLVE_SECONDS)
    except (TimeoutError, OSError, UnicodeError):
        return  # not resolved now: every delivery resolves and checks again
    webhooks.check_addresses(addresses, allow_private=allow_private)


@router.post("/webhooks", status_code=201, response_model=WebhookCreated, summary="Add an endpoint")
async def create(body: WebhookCreate, runtime: RuntimeDep, credentials: SecretKeyAuth) -> Any:
    """Register an endpoint; the answer's ``secret`` signs its deliveries and is shown once."""
    keyring, rules = runtime.context.keyring, _rules(runtime)
    await _check_target(runtime, credentials, body.url, adding=True)
    return await _write(
        runtime,
        credentials,
        lambda tx, a: webhooks.create_endpoint(
            tx, a, keyring, url=body.url, topics=body.topics, rules=rules
        ),
    )


@router.get("/webhooks", response_model=list[WebhookPublic], summary="List endpoints")
async def list_all(runtime: RuntimeDep, credentials: SecretKeyAuth) -> Any:
    return await read(runtime, credentials, webhooks.list_endpoints)


@router.get("/webhooks/{endpointId}", response_model=WebhookPublic, summary="One endpoint")
async def get_one(endpointId: EndpointId, runtime: RuntimeDep, credentials: SecretKeyAuth) -> Any:
    return await read(runtime, credentials, webhooks.get_endpoint, endpointId)


@router.patch("/webhooks/{endpointId}", response_model=WebhookPublic, summary="Change an endpoint")
async def update(
    endpointId: EndpointId, body: WebhookUpdate, runtime: RuntimeDep, credentials: SecretKeyAuth
) -> Any:
    """Change its url, topics or ``active``; setting ``active: true`` on a disabled endpoint
    clears its failure record, and its pending messages flow again."""
    changes, rules = body.model_dump(exclude_unset=True), _rules(runtime)
    if changes.get("url") is not None:
        await _check_target(runtime, credentials, changes["url"])
    return await _write(
        runtime,
        credentials,
        lambda tx, a: webhooks.update_endpoint(tx, a, endpointId, changes, rules=rules),
    )


@router.delete("/webhooks/{endpointId}", status_code=204, summary="Remove an endpoint")
async def delete(
    endpointId: EndpointId, runtime: RuntimeDep, credentials: SecretKeyAuth
) -> Response:
    """Remove the endpoint with its undelivered messages and its delivery log."""
    await _write(runtime, credentials, lambda tx, a: webhooks.delete_endpoint(tx, a, endpointId))
    return Response(status_code=204)


@router.get(
    "/webhooks/{endpointId}/deliveries",
    response_model=WebhookAttemptsPage,
    summary="The endpoint's delivery log",
)
async def deliveries(
    endpointId: EndpointId,
    runtime: RuntimeDep,
    credentials: SecretKeyAuth,
    limit: Limit = webhooks.DEFAULT_PAGE,
    before: Before = None,
) -> Any:
    """Every attempt, newest first: attempt number, time, status code, latency, error."""
    return await read(
        runtime,
        credentials,
        lambda tx, a: webhooks.deliveries(tx, a, endpointId, before=before, limit=limit),
    )


@router.get(
    "/webhooks/{endpointId}/messages",
    response_model=WebhookMessagesPage,
    summary="The endpoint's messages (state=dead: its dead letters)",
)
async def messages(
    endpointId: EndpointId,
    runtime: RuntimeDep,
    credentials: SecretKeyAuth,
    state: Literal["pending", "delivered", "dead"] | None = None,
    limit: Limit = webhooks.DEFAULT_PAGE,
    before: Before = None,
) -> Any:
    return await read(
        runtime,
        credentials,
        lambda tx, a: webhooks.messages(tx, a, endpointId, state=state, before=before, limit=limit),
    )


@router.post(
    "/webhooks/messages/{messageId}/redeliver",
    status_code=202,
    response_model=WebhookRedelivered,
    summary="Send a past message again",
)
async def redeliver(
    messageId: Annotated[str, Path(min_length=1, max_length=100)],
    runtime: RuntimeDep,
    credentials: SecretKeyAuth,
) -> Any:
    """Queue the message (delivered, dead or pending) for an attempt now, with a fresh retry
    schedule and the same ``webhook-id``."""
    return await _write(runtime, credentials, lambda tx, a: webhooks.redeliver(tx, a, messageId))


@router.post(
    "/webhooks/{endpointId}/dead-letters/redeliver",
    status_code=202,
    response_model=WebhookReplayed,
    summary="Send every dead letter of the endpoint again",
)
async def redeliver_dead(
    endpointId: EndpointId, runtime: RuntimeDep, credentials: SecretKeyAuth
) -> Any:
    return await _write(
        runtime, credentials, lambda tx, a: webhooks.redeliver_dead(tx, a, endpointId)
    )
