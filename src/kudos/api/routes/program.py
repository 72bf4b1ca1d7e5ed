"""kudos management API: the account's program, and points credited or debited by hand."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path

from kudos.api.deps import RuntimeDep, SecretKeyAuth, read
from kudos.api.routing import KudosRoute
from kudos.api.schemas import PointsAdjusted, PointsAdjustment, ProgramVersion
from kudos.domain.payload import MAX_ID_LENGTH
from kudos.services import loyalty, program

router = APIRouter(tags=["management"], route_class=KudosRoute)


@router.get("/program", response_model=ProgramVersion, summary="The program in force")
async def get_program(runtime: RuntimeDep, credentials: SecretKeyAuth) -> dict[str, Any]:
    """The current program document and its version."""
    return await read(runtime, credentials, program.get_program)


@router.put("/program", response_model=ProgramVersion, summary="Replace the program")
async def put_program(
    document: Annotated[dict[str, Any], Body(description="The program document (JSON).")],
    runtime: RuntimeDep,
    credentials: SecretKeyAuth,
) -> dict[str, Any]:
    """Validate and apply a new version; an invalid document is refused whole (3100) and the
    program in force stays. At most 10 applies a minute per account (429, code 2003)."""
    account = await read(runtime, credentials, lambda tx, found: found)  # keys before CPU
    # Validating and compiling the largest program takes tens of milliseconds: in a thread,
    # not on the event loop every request shares (nor in the writer, which runs on it).
    checked, compiled = await asyncio.to_thread(program.prepared, document)
    work = program.ApplyProgram(context=runtime.context, credentials=credentials, program=checked)
    result: dict[str, Any] = await runtime.writer.submit(work)
    compiled = replace(compiled, version=result["version"])
    runtime.context.programs.prime(account.id, compiled, result["createdAt"])
    return result


@router.post(
    "/customers/{customerId}/points",
    response_model=PointsAdjusted,
    summary="Credit or debit points by hand",
)
async def adjust_points(
    customerId: Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)],
    body: PointsAdjustment,
    runtime: RuntimeDep,
    credentials: SecretKeyAuth,
) -> dict[str, Any]:
    """Positive points credit (kind Manual, expiring like earned points); negative points
    debit the credits that expire first, never beyond the available balance (9008)."""
    work = loyalty.AdjustPoints(
        context=runtime.context,
        credentials=credentials,
        customer_id=customerId,
        points=body.points,
        reason=body.reason,
    )
    result: dict[str, Any] = await runtime.writer.submit(work)
    return result
