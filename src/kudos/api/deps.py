"""Dependencies shared by the FastAPI routes: the runtime, credentials and read helper."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from kudos.bootstrap import Runtime
from kudos.domain.model import Account, Credentials
from kudos.services import accounts
from kudos.storage.db import Tx

T = TypeVar("T")

api_key_header = APIKeyHeader(
    name="apikey", scheme_name="apikey", auto_error=False, description="The account's API key."
)
secret_key_header = APIKeyHeader(
    name="secretkey",
    scheme_name="secretkey",
    auto_error=False,
    description="The account's secret key (v4.1, management API, high-security accounts).",
)


# Dependencies are coroutines: FastAPI runs a plain function in a worker thread, a hop that
# cost a request more than the function does.
async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def _credentials(secret_required: bool) -> Callable[..., Awaitable[Credentials]]:
    async def dependency(
        api_key: Annotated[str | None, Depends(api_key_header)],
        secret_key: Annotated[str | None, Depends(secret_key_header)],
    ) -> Credentials:
        return Credentials(api_key=api_key, secret_key=secret_key, secret_required=secret_required)

    return dependency


ApiKeyAuth = Annotated[Credentials, Depends(_credentials(secret_required=False))]
SecretKeyAuth = Annotated[Credentials, Depends(_credentials(secret_required=True))]


def credentials_for(request: Request, credentials: Credentials) -> Credentials:
    """v4.1 paths require the secret key even where v4.0 does not."""
    if request.url.path.startswith("/api/v4.1/") and not credentials.secret_required:
        return Credentials(credentials.api_key, credentials.secret_key, secret_required=True)
    return credentials


async def read(runtime: Runtime, credentials: Credentials, fn: Callable[..., T], *args: Any) -> T:
    """Authenticate and run ``fn(tx, account, *args)`` in one trip to a read thread, in the
    turn of the key's account (an unknown key is refused before it takes a turn)."""
    keyring = runtime.context.keyring
    account_id = await runtime.keys.account_id(credentials.api_key)

    def call(tx: Tx) -> T:
        account: Account = accounts.authenticate(tx, keyring, credentials)
        return fn(tx, account, *args)

    return await runtime.reader.run(call, account=account_id)
