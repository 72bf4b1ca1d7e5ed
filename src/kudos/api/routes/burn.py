"""Gameball's Transactions and Orders APIs (v4): hold, redeem, refund, cashback, manual,
activate, orders and their cashback, and the redemption and cashback configuration.

Every write needs the apikey and the secretkey; each runs as writer work
(``services.burn``) and answers 200 (Gameball's clients treat any other success as a
failure). A repeated ``transactionId``/``orderId`` with the same body, or a repeated
``Idempotency-Key``, answers what the first did.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request

from kudos import errors
from kudos.api import ingest as api_ingest
from kudos.api import schemas_burn as schemas
from kudos.api.deps import ApiKeyAuth, RuntimeDep, SecretKeyAuth, credentials_for, read
from kudos.api.routing import KudosRoute
from kudos.bootstrap import Runtime
from kudos.domain import money, payload
from kudos.domain.model import Credentials
from kudos.domain.payload import MAX_ID_LENGTH
from kudos.services.burn import config, earn, holds, manual, orders, redeem, refunds
from kudos.services.burn.work import ShopWork, body_hash

router = APIRouter(tags=["transactions"], route_class=KudosRoute)

ShopIdPath = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="A repeat within 24 hours answers what the first request did.",
    ),
]


def one_of(body: Any, *names: str) -> str:
    """The one field of ``names`` the body gives (``null`` counts as absent)."""
    given = [name for name in names if getattr(body, name) is not None]
    if not given:
        raise errors.MissingArguments(
            f"Missing arguments: one of {', '.join(repr(n) for n in names)} is required."
        )
    if len(given) > 1:
        raise errors.InvalidValue(
            f"Invalid value: give only one of {', '.join(repr(n) for n in names)}."
        )
    return given[0]


async def shop_fields(
    request: Request, body: schemas.Customer, credentials: Credentials, key: str | None
) -> dict[str, Any]:
    """What every burn-side work takes from a request: the customer, the keys, the body's
    fingerprint and the ``Idempotency-Key``."""
    payload.check_customer_id(body.customerId, "customerId")
    return {
        "customer_id": body.customerId,
        "email": body.email,
        "mobile": body.mobile,
        "credentials": credentials_for(request, credentials),
        "request_hash": body_hash(await request.json()),
        "idempotency_key": None if key is None else api_ingest.idempotency_key(key.encode()),
    }


async def submit(runtime: Runtime, work: ShopWork) -> Any:
    return await runtime.writer.submit(work)


@router.post("/transactions/hold", response_model=schemas.HoldPublic, summary="Hold points")
async def hold_points(
    body: schemas.HoldCreate,
    request: Request,
    runtime: RuntimeDep,
    credentials: SecretKeyAuth,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Reserve points for a checkout (``pointsToHold``, or ``amountToHold`` in money): they
    leave the available balance until the hold is redeemed, released or runs out."""
    if body.ruleId is not None:
        raise errors.InvalidValue("Invalid value: 'ruleId': redemption rules are not supported.")
    one_of(body, "pointsToHold", "amountToHold")
    fields = await shop_fields(request, body, credentials, idempotency_key)
    work = holds.PlaceHold(
        context=runtime.context, points=body.pointsToHold, amount=body.amountToHold, **fields
    )
    return await submit(runtime, work)


@router.get(
    "/transactions/hold/{holdReference}",
    response_model=schemas.HoldState,
    summary="A hold and its state",
)
async def get_hold(
    holdReference: ShopIdPath, runtime: RuntimeDep, credentials: SecretKeyAuth
) -> Any:
    return await read(runtime, credentials, holds.hold_view, holdReference)


@router.delete(
    "/transactions/hold/{holdReference}", response_model=schemas.Released, summary="Release a hold"
)
async def release_hold(
    holdReference: ShopIdPath, request: Request, runtime: RuntimeDep, credentials: SecretKeyAuth
) -> Any:
    """The held points go back to the available balance (a used hold cannot be released)."""
    work = holds.ReleaseHold(
        context=runtime.context,
        credentials=credentials_for(request, credentials),
        customer_id="",  # the hold's own, found by ``prepare``
        request_hash=body_hash(holdReference),
        reference=holdReference,
    )
    return await submit(runtime, work)


@router.post("/transactions/redeem", response_model=schemas.Redeemed, summary="Redeem points")
async def redeem_points(
    body: schemas.RedeemCreate,
    request: Request,
    runtime: RuntimeDep,
    credentials: SecretKeyAuth,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Spend a hold (``holdReference``), or ``points``, or ``amount`` in money."""
    one_of(body, "holdReference", "points", "amount")
    fields = await shop_fields(request, body, credentials, idempotency_key)
    work = redeem.Redeem(
        context=runtime.context,
        transaction_id=body.transactionId,
        hold_reference=body.holdReference,
        points=body.points,
        amount=body.amount,
        reason=body.reason,
        **fields,
    )
    return await submit(runtime, work)


@router.post(
    "/transactions/refund", response_model=schemas.Refunded, summary="Refund an order or redeem"
)
async def refund(
    body: schemas.RefundCreate,
    request: Request,
    runtime: RuntimeDep,
    credentials: SecretKeyAuth,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Reverse an order, cashback or redeem (``reverseTransactionId``), in full or for
    ``refundAmount``: earned points are clawed back, redeemed ones given back."""
    if body.refundAmount is not None and body.refundAmount <= 0:
        raise errors.InvalidValue("Invalid value: 'refundAmount' must be more than zero.")
    fields = await shop_fields(request, body, credentials, idempotency_key)
    work = refunds.Refund(
        context=runtime.context,
        refund_id=body.refundTransactionId,
        reverse_id=body.reverseTransactionId,
        amount=body.refundAmount,
        **fields,
    )
    return await submit(runtime, work)


@router.post(
    "/transactions/cashback",
    response_model=schemas.CashbackRewarded,
    summary="Points for an amount paid",
)
async def cashback(
    body: schemas.CashbackCreate,
    request: Request,
    runtime: RuntimeDep,
    credentials: SecretKeyAuth,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    fields = await shop_fields(request, body, credentials, idempotency_key)
    window = body.configurations.returnWindow if body.configurations else None
    work = earn.Cashback(
        context=runtime.context,
        transaction_id=body.transactionId,
        amount=body.amount,
        return_window=window,
        **fields,
    )
    return await submit(runtime, work)


@router.post(
    "/transactions/manual", response_model=schemas.ManualDone, summary="Credit or debit by hand"
)
async def manual_transaction(
    body: schemas.ManualCreate,
    request: Request,
    runtime: RuntimeDep,
    credentials: SecretKeyAuth,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """``points`` or ``amount``: positive credits (expiring after ``expiryAfter`` days when
    given), negative debits (never beyond the available balance: 9008)."""
    one_of(body, "points", "amount")
    if body.amount is not None and body.amount == 0:
        raise errors.InvalidValue("Invalid value: 'amount' must not be zero.")
    fields = await shop_fields(request, body, credentials, idempotency_key)
    work = manual.Manual(
        context=runtime.context,
        transaction_id=body.transactionId,
        username=body.username,
        reason=body.reason,
        points=body.points,
        amount=body.amount,
        expiry_after=body.expiryAfter,
        **fields,
    )
    return await submit(runtime, work)


@router.put(
    "/transactions/{transactionId}/activate",
    response_model=schemas.Activated,
    summary="End a return window now",
)
async def activate(
    transactionId: ShopIdPath, request: Request, runtime: RuntimeDep, credentials: SecretKeyAuth
) -> Any:
    """The pending points of a transaction or order become available at once."""
    work = earn.Activate(
        context=runtime.context,
        credentials=credentials_for(request, credentials),
        customer_id="",  # the transaction's customer, found by ``prepare``
        request_hash=body_hash(transactionId),
        transaction_id=transactionId,
    )
    return await submit(runtime, work)


def order_of(body: schemas.OrderAmounts) -> orders.Order:
    """The amounts and lines of an order the routes decoded, as the service takes them."""
    totals = {
        name: getattr(body, name)
        for name in ("totalPrice", "totalDiscount", "totalShipping", "totalTax")
        if getattr(body, name) is not None
    }
    lines = [
        orders.LineItem(
            product_id=line.productId,
            quantity=line.quantity if line.quantity is not None else money.decimal(1),
            price=line.price,
            fields=line.model_dump(
                include={"sku", "title", "vendor", "tags", "category", "collection", "weight"},
                exclude_none=True,
                mode="json",
            ),
        )
        for line in body.lineItems or []
    ]
    return orders.Order("", None, body.totalPaid, totals, lines, {})


@router.post("/orders", response_model=schemas.OrderPlaced, summary="Track an order")
async def place_order(
    body: schemas.OrderCreate,
    request: Request,
    runtime: RuntimeDep,
    credentials: SecretKeyAuth,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Record the order, fire ``place_order`` (campaigns run once per order id), burn
    ``redemption.pointsHoldReference`` and earn cashback on ``totalPaid``, all at once."""
    if body.redemption is not None and (
        body.redemption.couponsLockReference is not None or body.redemption.couponCodes
    ):
        raise errors.InvalidValue("Invalid value: 'redemption': coupons are not supported.")
    fields = await shop_fields(request, body, credentials, idempotency_key)
    order = replace(
        order_of(body),
        order_id=body.orderId,
        order_date=body.orderDate,
        extra=dict(body.extra or {}),
        hold_reference=body.redemption.pointsHoldReference if body.redemption else None,
        return_window=(
            body.cashbackConfigurations.returnWindow if body.cashbackConfigurations else None
        ),
        channel=body.channel,
        guest=bool(body.guest),
    )
    work = orders.PlaceOrder(context=runtime.context, order=order, **fields)
    return await submit(runtime, work)


@router.post(
    "/orders/cashback", response_model=schemas.CashbackQuote, summary="What an order would earn"
)
async def order_cashback(
    body: schemas.CashbackQuoteCreate,
    request: Request,
    runtime: RuntimeDep,
    credentials: ApiKeyAuth,
) -> Any:
    """Computed as ``POST /orders`` would (at the customer's tier when ``customerId`` is a
    known customer), writing nothing."""
    cache = runtime.context.programs
    order = order_of(body)
    return await read(
        runtime,
        credentials_for(request, credentials),
        lambda tx, a: orders.cashback_quote(tx, a, cache.get(tx, a.id), order, body.customerId),
    )


@router.get(
    "/orders/{orderId}/transactions",
    response_model=schemas.OrderTransactions,
    summary="What an order earned and burned",
)
async def order_transactions(
    orderId: ShopIdPath, runtime: RuntimeDep, credentials: SecretKeyAuth
) -> Any:
    return await read(runtime, credentials, orders.order_transactions, orderId)


@router.get(
    "/configurations/redemption",
    response_model=schemas.RedemptionConfiguration,
    summary="What a point is worth",
)
async def redemption_configuration(
    request: Request, runtime: RuntimeDep, credentials: ApiKeyAuth
) -> Any:
    cache = runtime.context.programs
    return await read(
        runtime,
        credentials_for(request, credentials),
        lambda tx, a: config.redemption(cache.get(tx, a.id)),
    )


@router.get(
    "/configurations/cashback",
    response_model=schemas.CashbackConfiguration,
    summary="What paying earns",
)
async def cashback_configuration(
    request: Request, runtime: RuntimeDep, credentials: ApiKeyAuth
) -> Any:
    cache = runtime.context.programs
    return await read(
        runtime,
        credentials_for(request, credentials),
        lambda tx, a: config.cashback(cache.get(tx, a.id)),
    )
