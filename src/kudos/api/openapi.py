"""The OpenAPI document: FastAPI's, plus the ingest routes and one error model everywhere.

Each operation documents the error statuses it can really answer (``_error_statuses``), and
the security requirements kudos enforces: the apikey always, the secretkey too on v4.1 paths,
the management API and for high-security accounts (FastAPI alone would list the two headers
as alternatives).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from kudos.api import ingest
from kudos.api.schemas import (
    ErrorEnvelope,
    EventsAccepted,
    EventsCreate,
    LegacyError,
    LegacyEventCreate,
    LegacyV2EventCreate,
)
from kudos.api.schemas_analytics import QUERY_MODELS

REF = "#/components/schemas/{model}"

ERROR_STATUSES = {
    "400": "Malformed JSON (3016) or missing arguments (3000)",
    "401": "Missing or unknown apikey (1000), secret key required (1001)",
    "404": "Not found (4004); a transaction (9002), reversed transaction (9005) or hold"
    " reference (9006) not found",
    "413": "Body over 1 MiB (3014)",
    "415": "Content type other than JSON (3013)",
    "422": "Null arguments (3001), invalid value (3003), idempotency key reused (2002),"
    " invalid analytics query (3030), query too large (3031) or past its time budget (3032),"
    " invalid program (3100), redemption not configured (6002), not reversible (9000), already"
    " cancelled (9001), transaction id exists (9004), insufficient balance (9008), hold not"
    " active (9009)",
    "429": "Over the account's rate limit (2003); see Retry-After",
    "503": "Overloaded (5003); see Retry-After",
}
"""Every error status an operation may document; 405 (4005) answers a method a path does not
serve, so it belongs to no operation."""

# Query parameters whose limits a route checks by hand, so FastAPI cannot document them.
_INGEST_DOCS: dict[type[BaseModel], tuple[str, str]] = {
    EventsCreate: (
        "Send events",
        "Record customer actions. Unknown customers are created. 200 only after COMMIT. "
        "Optional Idempotency-Key header: a repeat within 24 h returns the first answer.",
    ),
    LegacyEventCreate: ("Send an event (v3, legacy)", "The body the official Python SDK sends."),
    LegacyV2EventCreate: ("Send an event (v2, legacy)", "May carry playerAttributes."),
}


def install_openapi(api: FastAPI) -> None:
    """Replace ``api.openapi`` with a builder that documents every route kudos serves."""

    def build() -> dict[str, Any]:
        if api.openapi_schema is None:
            schema = get_openapi(
                title=api.title, version=api.version, description=api.description, routes=api.routes
            )
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            models: list[type[BaseModel]] = [ErrorEnvelope, LegacyError, EventsAccepted]
            for model in [*models, *_INGEST_DOCS, *QUERY_MODELS]:
                _add_model(schemas, model)
            for path, route in ingest.ROUTES.items():
                schema["paths"][path] = {"post": _ingest_operation(path, route)}
            for path, item in schema["paths"].items():
                for method, operation in item.items():
                    if path not in ingest.ROUTES and "security" in operation:
                        operation["security"] = _security(secret_required=_secret_required(path))
                    _document_errors(operation, path=path, writes=method != "get")
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            api.openapi_schema = schema
        return api.openapi_schema

    api.openapi = build  # type: ignore[method-assign]


_BURN_PATH = re.compile(r"/integrations/(transactions/|orders|transaction/|order\b|player/)")
_LEGACY_PATHS = {path for path, route in ingest.ROUTES.items() if route.legacy}


def _secret_required(path: str) -> bool:
    """v4.1 paths, the management API and the burn side (but for the cashback quote) need the
    secret key for every account."""
    if _BURN_PATH.search(path) and not path.endswith("/orders/cashback"):
        return True
    return path.startswith(("/api/v4.1/", "/api/kudos/"))


def _security(*, secret_required: bool) -> list[dict[str, list[str]]]:
    """Both keys; or the apikey alone, which high-security accounts refuse (1001)."""
    both: dict[str, list[str]] = {"apikey": [], "secretkey": []}
    return [both] if secret_required else [both, {"apikey": []}]


def _add_model(schemas: dict[str, Any], model: type[BaseModel]) -> None:
    definition = model.model_json_schema(ref_template=REF)
    schemas.update(definition.pop("$defs", {}))
    schemas[model.__name__] = definition


def _ingest_operation(path: str, route: ingest.EventRoute) -> dict[str, Any]:
    model: type[BaseModel] = EventsCreate
    if route.attributes_field:
        model = LegacyV2EventCreate
    elif route.legacy:
        model = LegacyEventCreate
    summary, description = _INGEST_DOCS[model]
    return {
        "tags": ["events"],
        "summary": summary,
        "description": description,
        "operationId": "send_events_" + path.strip("/").replace("/", "_").replace(".", "_"),
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"\S"},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}},
        },
        "responses": {
            "200": {
                "description": "Events stored",
                "content": {
                    "application/json": {"schema": {"$ref": REF.format(model="EventsAccepted")}}
                },
            }
        },
        "security": _security(secret_required=route.secret_required),
    }


def _error_statuses(path: str, operation: dict[str, Any], *, writes: bool) -> set[str]:
    """The error statuses kudos can answer to this operation."""
    statuses: set[str] = {"503"} if writes else set()  # the writer's queue is full
    if "requestBody" in operation:
        # The outer ASGI layer (413, 415), decoding and validation (400, 422).
        statuses |= {"400", "413", "415", "422"}
    if path in ingest.ROUTES:
        statuses.add("429")
    if _BURN_PATH.search(path):
        # The burn side: its own rate limit, and the customer, hold, order or transaction the
        # body or path names may not exist (4004, 9002, 9005, 9006).
        statuses |= {"404", "429"} if writes else {"404"}
    if operation.get("security"):
        statuses.add("401")
    parameters = operation.get("parameters", [])
    names_customer = any(p["in"] == "path" or p["name"] == "customerId" for p in parameters)
    if names_customer or path.endswith("/reward-preview"):
        statuses.add("404")  # the customer (in the path, the query or the body) is unknown
    if any(p["in"] == "query" and p.get("required") for p in parameters):
        statuses.add("400")  # a required query parameter is missing (3000)
    if parameters:
        statuses.add("422")  # a parameter out of range or of the wrong type (3003)
    return statuses


def _document_errors(operation: dict[str, Any], *, path: str, writes: bool) -> None:
    model = "LegacyError" if path in _LEGACY_PATHS else "ErrorEnvelope"
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)  # FastAPI's HTTPValidationError: kudos answers its own envelope
    for status in sorted(_error_statuses(path, operation, writes=writes)):
        responses[status] = {
            "description": ERROR_STATUSES[status],
            "content": {"application/json": {"schema": {"$ref": REF.format(model=model)}}},
        }
