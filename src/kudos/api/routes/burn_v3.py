"""The burn side in the v3 dialect of Gameball's official Python SDK (``gb-alpha`` 3.0.0),
mounted under ``/api/v3.0``: hold, redeem, release, refund, cashback, manual, the
transaction list and orders; ``router`` also carries the player read-backs
(``routes.players_v3``), so the whole dialect mounts at once.

Each route maps its v3 body onto the v4 work (``api.routes.burn``): the rules, error codes
and replays of a repeated ``transactionId``/``orderId`` are v4's, and the answer is v4's with
``customerId`` named ``playerUniqueId``. Every success is 200 (the SDK takes any other status
for a failure), every error carries ``code`` and ``message`` (v4's envelope), and both keys
are required (the SDK always sends ``APIKey`` and ``secretKey``). Where v3 asks for more:

- an order's ``redeemedAmount`` is refused (3003) unless null or 0: kudos burns points on an
  order only through a hold, in the order's own transaction; hold the amount first
  (``transaction/hold``) and pass its ``holdReference``;
- ``transaction/list`` names no customer in the SDK: it pages (by number) through the
  account's ledger, newest first; ``playerUniqueId`` (kudos' own) narrows it to a customer.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from kudos import errors
from kudos.api import schemas_burn as v4
from kudos.api import schemas_burn_v3 as v3
from kudos.api.deps import RuntimeDep, SecretKeyAuth, read
from kudos.api.routes import burn, players_v3
from kudos.api.routes.burn import IdempotencyKey, ShopIdPath, one_of, shop_fields, submit
from kudos.api.routing import KudosRoute
from kudos.domain import payload
from kudos.domain.model import Credentials
from kudos.services import ledger, loyalty
from kudos.services.burn import holds, redeem, refunds

router = APIRouter(tags=["v3 (Python SDK)"], route_class=KudosRoute)
router.include_router(players_v3.router)


def as_player(answer: dict[str, Any]) -> dict[str, Any]:
    """A v4 answer in v3's words: its ``customerId`` is ``playerUniqueId``."""
    found = dict(answer)
    if "customerId" in found:
        return {"playerUniqueId": found.pop("customerId"), **found}
    return found


async def player_fields(
    request: Request, body: v3.Player, credentials: Credentials, key: str | None
) -> dict[str, Any]:
    """``shop_fields`` of a v3 body (its customer refused under its v3 name)."""
    payload.check_customer_id(body.customerId, "playerUniqueId")
    return await shop_fields(request, body, credentials, key)


@router.post(
    "/integrations/transaction/hold", response_model=v3.V3HoldPlaced, summary="Hold points (v3)"
)
async def hold_points(
    body: v3.V3HoldCreate,
    request: Request,
    runtime: RuntimeDep,
    credentials: SecretKeyAuth,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Reserve the points ``amount`` (money) covers, as v4's ``amountToHold``."""
    fields = await player_fields(request, body, credentials, idempotency_key)
    work = holds.PlaceHold(context=runtime.context, amount=body.amount, **fields)
    return as_player(await submit(runtime, work))


@router.delete(
    "/integrations/transaction/hold/{holdReference}",
    response_model=v4.Released,
    summary="Release a hold (v3)",
)
async def release_hold(
    holdReference: ShopIdPath, request: Request, runtime: RuntimeDep, credentials: SecretKeyAuth
) -> Any:
    """The held points go back to the available balance (a used hold cannot be released)."""
    return await burn.release_hold(holdReference, request, runtime, credentials)


@router.post(
    "/integrations/transaction/redeem", response_model=v3.V3Redeemed, summary="Redeem points (v3)"
)
async def redeem_points(
    body: v3.V3RedeemCreate,
    request: Request,
    runtime: RuntimeDep,
    credentials: SecretKeyAuth,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Spend a hold (``holdReference``) or the points ``redeemedAmount`` (money) covers."""
    one_of(body, "holdReference", "redeemedAmount")
    fields = await player_fields(request, body, credentials, idempotency_key)
    work = redeem.Redeem(
        context=runtime.context,
        transaction_id=body.transactionId,
        hold_reference=body.holdReference,
        amount=body.redeemedAmount,
        **fields,
    )
    return as_player(await submit(runtime, work))


@router.post(
    "/integrations/transaction/refund",
    response_model=v3.V3Refunded,
    summary="Refund an order or redeem (v3)",
)
async def refund(
    body: v3.V3RefundCreate,
    request: Request,
    runtime: RuntimeDep,
    credentials: SecretKeyAuth,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Reverse ``reverseTransactionId`` (an order, cashback or redeem) in full, or for
    ``amount``; ``transactionId`` is the refund's own id."""
    if body.amount is not None and body.amount <= 0:
        raise errors.InvalidValue("Invalid value: 'amount' must be more than zero.")
    fields = await player_fields(request, body, credentials, idempotency_key)
    work = refunds.Refund(
        context=runtime.context,
        refund_id=body.transactionId,
        reverse_id=body.reverseTransactionId,
        amount=body.amount,
        **fields,
    )
    return as_player(await submit(runtime, work))


@router.post(
    "/integrations/transaction/cashback",
    response_model=v3.V3CashbackRewarded,
    summary="Points for an amount paid (v3)",
)
async def cashback(
    body: v3.V3CashbackCreate,
    request: Request,
    runtime: RuntimeDep,
    credentials: SecretKeyAuth,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Unknown players are created; ``rewardedPoints`` is v3's name of the points."""
    payload.check_customer_id(body.customerId, "playerUniqueId")
    answer = as_player(await burn.cashback(body, request, runtime, credentials, idempotency_key))
    return {**answer, "rewardedPoints": answer["rewardEquivalentPoints"]}


@router.post(
    "/integrations/transaction/manual",
    response_model=v3.V3ManualDone,
    summary="Credit or debit by hand (v3)",
)
async def manual_transaction(
    body: v3.V3ManualCreate,
    request: Request,
    runtime: RuntimeDep,
    credentials: SecretKeyAuth,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """``points`` or ``amount`` (the other null): positive credits, negative debits."""
    payload.check_customer_id(body.customerId, "playerUniqueId")
    return as_player(
        await burn.manual_transaction(body, request, runtime, credentials, idempotency_key)
    )


@router.post("/integrations/order", response_model=v3.V3OrderPlaced, summary="Track an order (v3)")
async def place_order(
    body: v3.V3OrderCreate,
    request: Request,
    runtime: RuntimeDep,
    credentials: SecretKeyAuth,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """As v4's ``POST /orders``, the hold to burn in ``holdReference``; ``redeemedAmount``
    must be null or 0 and ``discountCodes`` empty."""
    if body.redeemedAmount:
        raise errors.InvalidValue(
            "Invalid value: 'redeemedAmount': an order burns points only through a hold;"
            " hold the amount (transaction/hold) and send its 'holdReference'."
        )
    if body.discountCodes:
        raise errors.InvalidValue("Invalid value: 'discountCodes': coupons are not supported.")
    if body.holdReference is not None:
        given = body.redemption or v4.OrderRedemption()
        if given.pointsHoldReference not in (None, body.holdReference):
            raise errors.InvalidValue(
                "Invalid value: give only one of 'holdReference' and"
                " 'redemption.pointsHoldReference'."
            )
        body.redemption = given.model_copy(update={"pointsHoldReference": body.holdReference})
    payload.check_customer_id(body.customerId, "playerUniqueId")
    return as_player(await burn.place_order(body, request, runtime, credentials, idempotency_key))


@router.get(
    "/integrations/transaction/list",
    response_model=v3.V3TransactionsPage,
    summary="The points ledger, by page (v3)",
)
async def list_transactions(
    runtime: RuntimeDep,
    credentials: SecretKeyAuth,
    page: Annotated[int, Query(ge=1, le=ledger.MAX_PAGE_NUMBER)] = 1,
    limit: Annotated[int, Query(ge=1, le=loyalty.MAX_PAGE)] = loyalty.DEFAULT_PAGE,
    direction: Annotated[
        str | None, Query(max_length=1, description="+ or - (a space, an unencoded +, is +)")
    ] = None,
    since: Annotated[
        str | None,
        Query(alias="from", max_length=64, description="ISO 8601 date or time (UTC if no offset)"),
    ] = None,
    until: Annotated[
        str | None,
        Query(alias="to", max_length=64, description="Inclusive; a date means its whole day"),
    ] = None,
    transactionId: Annotated[str | None, Query(max_length=payload.MAX_ID_LENGTH)] = None,
    status: Annotated[
        str | None, Query(max_length=20, description="Active, Pending or Expired")
    ] = None,
    playerUniqueId: Annotated[
        str | None,
        Query(
            max_length=payload.MAX_ID_LENGTH,
            description="kudos' own: one player's entries (else the whole account's)",
        ),
    ] = None,
) -> Any:
    """The account's ledger (one player's with ``playerUniqueId``), newest first. The SDK
    does not URL-encode its query: ``direction=+`` reads as a space, and so does the ``+``
    of a time's offset; both are read as ``+``. Empty values count as absent."""
    if direction == " ":
        direction = "+"
    status = status.strip().capitalize() if status and status.strip() else None
    start = _moment(since, "from", end=False) if since and since.strip() else None
    end = _moment(until, "to", end=True) if until and until.strip() else None
    found = await read(
        runtime,
        credentials,
        lambda tx, a: ledger.transactions_page(
            tx,
            a,
            customer_id=playerUniqueId or None,
            page=page,
            limit=limit,
            direction=direction or None,
            status=status,
            transaction_id=transactionId or None,
            since=start,
            until=end,
        ),
    )
    return {**found, "transactions": [as_player(t) for t in found["transactions"]]}


# A time's ``+HH:MM`` offset sent unencoded arrives as `` HH:MM``.
_SPACED_OFFSET = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")


def _moment(value: str, name: str, *, end: bool) -> str:
    """A ``from``/``to`` value as a stored timestamp: a bound that counts entries from it
    (``end`` false), or up to and including it (``end``: the next microsecond, or day)."""
    text = _SPACED_OFFSET.sub(r"\1+\2", value.strip())
    try:
        if len(text) == len("2024-01-31"):
            found = datetime.combine(date.fromisoformat(text), time(), UTC)
            step = timedelta(days=1)
        else:
            found = datetime.fromisoformat(text)
            found = found if found.tzinfo else found.replace(tzinfo=UTC)
            step = timedelta(microseconds=1)
    except ValueError:
        raise errors.InvalidValue(
            f"Invalid value: '{name}' is an ISO 8601 date or time (2024-01-31T10:00:00Z)."
        ) from None
    try:
        found = (found + step if end else found).astimezone(UTC)
    except OverflowError:  # past an end of the calendar: nothing lies beyond it
        found = (datetime.max if found.year > 1 else datetime.min).replace(tzinfo=UTC)
    return found.isoformat(timespec="microseconds").replace("+00:00", "Z")
