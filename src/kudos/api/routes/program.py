"""kudos management API: the account's program (campaigns, tiers, points expiry)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from kudos.api.deps import RuntimeDep, SecretKeyAuth, read
from kudos.api.schemas import ProgramVersion
from kudos.services import program

router = APIRouter(tags=["management"])


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
    program in force stays."""
    work = program.ApplyProgram(context=runtime.context, credentials=credentials, document=document)
    result: dict[str, Any] = await runtime.writer.submit(work)
    return result
