"""The kudos error tree.

Every error a client can see is a ``KudosError`` with a stable numeric ``code`` (Gameball's v4
codes where Gameball has one), an HTTP ``status`` and a ``type`` label. Services raise these;
the API renders them in one envelope (``kudos.api.errors``). ``docs/errors.md`` documents every
code, and a test fails when a code exists here that the document does not list.

    KudosError
    ├── AuthError                  1000 Unauthorized (401)
    │   └── SecretKeyRequired      1001 (401)
    ├── ConflictError
    │   └── IdempotencyKeyReused   2002 (422)
    ├── RateLimited                2003 (429, Retry-After)
    ├── PayloadError
    │   ├── MissingArguments       3000 (400)
    │   ├── NullArguments          3001 (422)
    │   ├── InvalidValue           3003 (422)
    │   ├── UnsupportedMediaType   3013 (415)
    │   ├── PayloadTooLarge        3014 (413)
    │   ├── InvalidPayload         3016 (400)
    │   ├── RequestTimeout         3020 (408)
    │   ├── HeadersTooLarge        3021 (431)
    │   ├── QueryInvalid           3030 (422)
    │   ├── QueryTooLarge          3031 (422)
    │   ├── QueryTimeout           3032 (422)
    │   └── ProgramInvalid         3100 (422)
    ├── RedemptionDisabled         6002 (422)
    ├── TransactionError
    │   ├── NotReversible          9000 (422)
    │   ├── AlreadyCancelled       9001 (422)
    │   ├── TransactionNotFound    9002 (404)
    │   ├── TransactionIdExists    9004 (422)
    │   ├── ReversedNotFound       9005 (404)
    │   ├── HoldNotFound           9006 (404)
    │   ├── InsufficientPoints     9008 (422)
    │   └── HoldNotActive          9009 (422)
    ├── NotFound                   4004 (404)
    │   ├── CustomerNotFound       4004 (404)
    │   ├── AccountNotFound        4004 (404)
    │   ├── WebhookNotFound        4004 (404)
    │   └── MessageNotFound        4004 (404)
    ├── MethodNotAllowed           4005 (405)
    ├── InternalError              5000 (500)
    │   └── ProgramUnavailable     5001 (500)
    ├── Unavailable                5003 (503, Retry-After)
    └── StorageFull                5004 (507, Retry-After)
"""

from __future__ import annotations

from typing import Any, ClassVar


class KudosError(Exception):
    """Base of every error with a client-visible code."""

    code: ClassVar[int] = 4500
    status: ClassVar[int] = 400
    type: ClassVar[str] = "General Error"
    default_message: ClassVar[str] = "Something went wrong."

    def __init__(self, message: str | None = None, *, retry_after: int | None = None) -> None:
        self.message = message or self.default_message
        self.retry_after = retry_after
        super().__init__(self.message)

    def headers(self) -> dict[str, str]:
        """HTTP headers the answer must carry."""
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}

    def details(self) -> dict[str, Any]:
        """Fields the error body carries besides code, type and message (most have none)."""
        return {}


class AuthError(KudosError):
    code = 1000
    status = 401
    type = "Authentication Error"
    default_message = "Unauthorized: a valid apikey header is required."


class SecretKeyRequired(AuthError):
    code = 1001
    default_message = "Secret key required: send a valid secretkey header."


class ConflictError(KudosError):
    type = "Request Error"


class IdempotencyKeyReused(ConflictError):
    code = 2002
    status = 422
    default_message = "This Idempotency-Key was already used with a different request body."


class RateLimited(KudosError):
    code = 2003
    status = 429
    type = "Request Error"
    default_message = "Too many requests: the account's rate limit is exceeded."


class PayloadError(KudosError):
    type = "Payload Error"


class MissingArguments(PayloadError):
    code = 3000
    status = 400
    default_message = "Missing arguments."


class NullArguments(PayloadError):
    code = 3001
    status = 422
    default_message = "Null arguments."


class InvalidValue(PayloadError):
    code = 3003
    status = 422
    default_message = "Invalid value."


class UnsupportedMediaType(PayloadError):
    code = 3013
    status = 415
    default_message = (
        "Not supported: the request body must be JSON (Content-Type: application/json)."
    )


class PayloadTooLarge(PayloadError):
    code = 3014
    status = 413
    default_message = "Payload too large: the request body exceeds 1 MiB."


class InvalidPayload(PayloadError):
    code = 3016
    status = 400
    default_message = "Invalid payload: the body is not valid JSON."


class RequestTimeout(PayloadError):
    code = 3020
    status = 408
    default_message = "Request timeout: the request body did not arrive in time."


class HeadersTooLarge(PayloadError):
    code = 3021
    status = 431
    default_message = "Request header fields too large."


class QueryInvalid(PayloadError):
    """An analytics query that cannot be run; ``problems`` names each by its path."""

    code = 3030
    status = 422
    default_message = "Invalid query: see problems."

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"Invalid query: {len(problems)} problem(s): " + "; ".join(problems))
        self.problems = problems

    def details(self) -> dict[str, Any]:
        return {"problems": self.problems}


class QueryTooLarge(PayloadError):
    """An analytics query whose range, buckets or breakdown pass what kudos answers."""

    code = 3031
    status = 422
    default_message = "Query too large: narrow its range or breakdown."


class QueryTimeout(PayloadError):
    """An analytics query stopped when it ran past its time budget."""

    code = 3032
    status = 422
    default_message = "Query timeout: it ran past its time budget; narrow its range or filters."


class ProgramInvalid(PayloadError):
    """A program document that cannot be applied; ``problems`` names each by its path."""

    code = 3100
    status = 422
    default_message = "Invalid program: see problems."

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"Invalid program: {len(problems)} problem(s): " + "; ".join(problems))
        self.problems = problems

    def details(self) -> dict[str, Any]:
        return {"problems": self.problems}


class RedemptionDisabled(KudosError):
    code = 6002
    status = 422
    type = "Configuration Error"
    default_message = (
        "Redemption is not configured: the account's program has no 'redemption' section"
        " (its pointValue), so points cannot be held or redeemed."
    )


class TransactionError(KudosError):
    """The burn side's refusals (Gameball's 9xxx codes)."""

    status = 422
    type = "Transaction Error"


class NotReversible(TransactionError):
    code = 9000
    default_message = "Transaction type is not reversible."


class AlreadyCancelled(TransactionError):
    code = 9001
    default_message = "Transaction already cancelled: nothing is left to refund."


class TransactionNotFound(TransactionError):
    code = 9002
    status = 404
    default_message = "Transaction not found."


class TransactionIdExists(TransactionError):
    code = 9004
    default_message = "Transaction ID already exists, with another request."


class ReversedNotFound(TransactionError):
    code = 9005
    status = 404
    default_message = "Reversed transaction not found."


class HoldNotFound(TransactionError):
    code = 9006
    status = 404
    default_message = "Hold reference not found."


class InsufficientPoints(TransactionError):
    code = 9008
    default_message = "Insufficient balance: the available points are fewer than needed."


class HoldNotActive(TransactionError):
    code = 9009
    default_message = "The hold is no longer active: it was used, released or has expired."


class NotFound(KudosError):
    code = 4004
    status = 404
    type = "General Error"
    default_message = "Not found."


class CustomerNotFound(NotFound):
    default_message = "Customer not found."


class AccountNotFound(NotFound):
    default_message = "Account not found."


class WebhookNotFound(NotFound):
    default_message = "Webhook endpoint not found."


class MessageNotFound(NotFound):
    default_message = "Webhook message not found."


class MethodNotAllowed(KudosError):
    code = 4005
    status = 405
    type = "General Error"
    default_message = "Method not allowed."

    def __init__(self, message: str | None = None, *, allow: str) -> None:
        super().__init__(message)
        self.allow = allow

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "Allow": self.allow}


class InternalError(KudosError):
    code = 5000
    status = 500
    type = "Server Error"
    default_message = "Internal server error."


class ProgramUnavailable(InternalError):
    """The account's stored program cannot be loaded by this version of kudos: the requests
    it concerns are refused (alone) until a valid program is applied."""

    code = 5001
    default_message = (
        "The account's program in force cannot be loaded; apply a valid program"
        " (PUT /api/kudos/v1/program or kudos program apply)."
    )


class Unavailable(KudosError):
    code = 5003
    status = 503
    type = "Server Error"
    default_message = "Service unavailable: the server is overloaded, retry later."


class StorageFull(KudosError):
    code = 5004
    status = 507
    type = "Server Error"
    default_message = (
        "Insufficient storage: the database has no space left; nothing was written, retry later."
    )


def all_error_classes() -> list[type[KudosError]]:
    """Every error class, for the docs-drift test and the OpenAPI description."""
    found: list[type[KudosError]] = []
    pending: list[type[KudosError]] = [KudosError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found
