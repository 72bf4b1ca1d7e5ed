"""One place that turns a ``KudosError`` into a response body: v4 envelope or legacy shape.

v4 (every route but the legacy ones): ``{"code", "type", "message", "requestId"}``.
Legacy v2/v3 event routes: ``{"code", "message"}`` with Gameball's legacy payload codes
(4 missing arguments, 5 null arguments, 7 invalid value); other codes stay as in v4.
"""

from __future__ import annotations

import uuid

import msgspec

from kudos import errors

LEGACY_CODES = {
    errors.MissingArguments.code: 4,
    errors.NullArguments.code: 5,
    errors.InvalidValue.code: 7,
}

_encode = msgspec.json.Encoder().encode


def envelope(error: errors.KudosError) -> dict[str, object]:
    """The v4 error body."""
    return {
        "code": error.code,
        "type": error.type,
        "message": error.message,
        "requestId": uuid.uuid4().hex,
        **error.details(),
    }


def legacy_body(error: errors.KudosError) -> dict[str, object]:
    """The v2/v3 error body."""
    return {"code": LEGACY_CODES.get(error.code, error.code), "message": error.message}


# Answered before the rest of the request was read: the connection cannot carry another one.
_CLOSES_CONNECTION = (errors.PayloadTooLarge, errors.RequestTimeout, errors.HeadersTooLarge)


def headers(error: errors.KudosError) -> dict[str, str]:
    """The HTTP headers an error's answer carries."""
    extra = error.headers()
    if isinstance(error, _CLOSES_CONNECTION):
        return {**extra, "Connection": "close"}
    return extra


def render(
    error: errors.KudosError, *, legacy: bool = False
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, extra headers and body bytes for an error."""
    body = _encode(legacy_body(error) if legacy else envelope(error))
    extra = [(name.lower().encode(), value.encode()) for name, value in headers(error).items()]
    return error.status, extra, body
