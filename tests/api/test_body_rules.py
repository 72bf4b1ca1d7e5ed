"""The rules every request body follows, on every route that takes one, on both stores:
strict JSON, bounded nesting, no NUL, a documented 4xx for each refusal, and nothing stored."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from kudos.api.app import KudosApp
from kudos.api.ingest import ROUTES
from kudos.api.routing import KudosRoute
from kudos.bootstrap import Runtime, run_in_transaction
from kudos.domain.payload import MAX_JSON_DEPTH
from kudos.storage.db import Tx

BODY_METHODS = {"POST", "PUT", "PATCH"}
PARAMETER = re.compile(r"\{(\w+)(:\w+)?\}")
SAMPLE_PARAMETERS = {"customerId": "cust-1", "endpointId": "1", "messageId": "m-1"}


def body_routes(app: KudosApp) -> list[tuple[str, str, bool]]:
    """Every (method, path, reads a JSON body) the app serves with a body method: the ingest
    paths and every FastAPI route, path parameters filled in."""
    found = [("POST", path, True) for path in ROUTES]
    for route, path in api_routes(app):
        for method in sorted((route.methods or set()) & BODY_METHODS):
            path = PARAMETER.sub(lambda m: SAMPLE_PARAMETERS.get(m[1], "1"), path)
            found.append((method, path, route.body_field is not None))
    assert len(found) > len(ROUTES) + 10, found  # the FastAPI routes were found too
    return found


def api_routes(app: KudosApp) -> list[tuple[APIRoute, str]]:
    """Every FastAPI route with its full path (included routers' prefixes too)."""
    return [
        (context.original_route, context.path or "")
        for context in iter_route_contexts(app.api.routes)
        if isinstance(context.original_route, APIRoute)
    ]


def table_counts(runtime: Runtime) -> dict[str, int]:
    """Rows in every table of the store (what a refused request must leave as it was)."""

    def count(tx: Tx) -> dict[str, int]:
        if runtime.db.dialect == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
        else:
            sql = (
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema()"
            )
        names = [row[0] for row in tx.all(sql) if row[0] != "schema_migrations"]
        return {name: tx.one(f"SELECT count(*) FROM {name}")[0] for name in names}  # type: ignore[index]

    return run_in_transaction(runtime.db, count)


def deep_array(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def in_metadata(value: bytes) -> bytes:
    """A Send Events body (for every version) with ``value`` in its metadata."""
    return b'{"customerId": "c", "playerUniqueId": "c", "events": {"a": {"k": ' + value + b"}}}"


REFUSED_BODIES = {
    "1,000 levels": (deep_array(1_000), 3003),
    "100,000 levels": (deep_array(100_000), 3003),
    "100,000 levels of objects": (b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, 3003),
    "1,000 levels in metadata": (in_metadata(deep_array(1_000)), 3003),
    f"{MAX_JSON_DEPTH} levels in metadata": (in_metadata(deep_array(MAX_JSON_DEPTH)), 3003),
    "NUL": (in_metadata(b'"v\\u0000"'), 3003),
    "NUL in a key": (in_metadata(b'{"k\\u0000": 1}'), 3003),
    "1e400": (in_metadata(b"1e400"), 3003),
    "lone surrogate": (in_metadata(b'"\\ud800"'), 3016),  # not JSON text for msgspec
    "NaN": (in_metadata(b"NaN"), 3016),
}
LEGACY = {3003: 7}


@pytest.mark.parametrize("case", list(REFUSED_BODIES))
async def test_every_route_with_a_body_refuses_it_with_a_documented_4xx_and_stores_nothing(
    app: KudosApp,
    client: httpx.AsyncClient,
    runtime: Runtime,
    auth: dict[str, str],
    case: str,
) -> None:
    raw, code = REFUSED_BODIES[case]
    assert len(raw) <= 1024 * 1024
    before = table_counts(runtime)
    headers = {**auth, "content-type": "application/json"}
    for method, path, reads_body in body_routes(app):
        response = await client.request(method, path, content=raw, headers=headers)
        where = f"{method} {path}"
        assert 400 <= response.status_code < 500, f"{where}: {response.text}"
        if reads_body:
            # The legacy event routes answer legacy codes; the v3.0 burn routes Gameball's v4.
            legacy = path in ROUTES and ROUTES[path].legacy
            expected = LEGACY.get(code, code) if legacy else code
            assert response.json()["code"] == expected, f"{where}: {response.text}"
    assert table_counts(runtime) == before


def test_every_fastapi_route_with_a_body_decodes_it_through_kudos_route(app: KudosApp) -> None:
    routes = api_routes(app)
    with_body = [path for route, path in routes if route.body_field is not None]
    assert len(with_body) >= 5, routes
    loose = [
        path
        for route, path in routes
        if route.body_field is not None and not isinstance(route, KudosRoute)
    ]
    assert loose == []


async def test_a_body_nested_to_the_limit_is_accepted(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """The limit is a depth kudos names, not wherever the parser gives up."""
    nested: Any = {}
    for _ in range(MAX_JSON_DEPTH - 3):  # the body, customerAttributes and custom are 3
        nested = {"k": nested}
    body = {"customerId": "deep-ok", "customerAttributes": {"custom": {}}}
    raw = json.dumps(body).replace('"custom": {}', '"custom": ' + json.dumps(nested))
    response = await client.post(
        "/api/v4.0/integrations/customers",
        content=raw,
        headers={**auth, "content-type": "application/json"},
    )
    # Accepted by the JSON rules; the attributes' own 10-level limit then refuses it.
    assert (response.status_code, response.json()["code"]) == (422, 3003)
    assert "nests deeper than 10" in response.json()["message"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/kudos/v1/program", {"pointsExpiryDays": 1e400}),
        ("/api/v4.0/integrations/customers", {"customerId": "f", "customerAttributes": {"x": 1}}),
    ],
)
async def test_non_finite_numbers_are_refused_not_stored_as_null(
    client: httpx.AsyncClient, runtime: Runtime, auth: dict[str, str], path: str, body: Any
) -> None:
    raw = json.dumps(body).replace("Infinity", "1e400").replace('"x": 1', '"x": 1e400')
    before = table_counts(runtime)
    method = "PUT" if path.endswith("program") else "POST"
    response = await client.request(
        method, path, content=raw, headers={**auth, "content-type": "application/json"}
    )
    assert (response.status_code, response.json()["code"]) == (422, 3003)
    assert "out of range" in response.json()["message"]
    assert table_counts(runtime) == before
