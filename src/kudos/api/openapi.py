"""The OpenAPI document: FastAPI's, plus the ingest routes and one error model everywhere."""

from __future__ import annotations

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

REF = "#/components/schemas/{model}"

ERROR_STATUSES = {
    "400": "Malformed JSON (3016) or missing arguments (3000)",
    "401": "Missing or unknown apikey (1000), secret key required (1001)",
    "404": "Not found (4004)",
    "405": "Method not allowed (4005)",
    "413": "Body over 1 MiB (3014)",
    "415": "Content type other than JSON (3013)",
    "422": "Null arguments (3001), invalid value (3003), idempotency key reused (2002)",
    "429": "Over the account's rate limit (2003); see Retry-After",
    "503": "Overloaded (5003); see Retry-After",
}

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
            for model in [*models, *_INGEST_DOCS]:
                _add_model(schemas, model)
            for path, route in ingest.ROUTES.items():
                schema["paths"][path] = {"post": _ingest_operation(path, route)}
            for path, item in schema["paths"].items():
                for operation in item.values():
                    _document_errors(operation, legacy=path in _LEGACY_PATHS)
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            api.openapi_schema = schema
        return api.openapi_schema

    api.openapi = build  # type: ignore[method-assign]


_LEGACY_PATHS = {path for path, route in ingest.ROUTES.items() if route.legacy}


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
    security: list[dict[str, list[str]]] = [{"apikey": [], "secretkey": []}]
    if not route.secret_required:
        security.append({"apikey": []})
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
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
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
        "security": security,
    }


def _document_errors(operation: dict[str, Any], *, legacy: bool) -> None:
    model = "LegacyError" if legacy else "ErrorEnvelope"
    responses = operation.setdefault("responses", {})
    for status, description in ERROR_STATUSES.items():
        responses[status] = {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=model)}}},
        }
