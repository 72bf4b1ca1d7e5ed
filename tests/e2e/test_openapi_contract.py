"""Schemathesis against a live ``kudos serve``: every operation ``/openapi.json`` documents.

For each operation, positive and negative data (Hypothesis, derandomized, a bounded number
of examples), every request with the account's valid keys so that it reaches the real logic.
Checks: no 5xx, documented status codes, response bodies and content types as documented, and
schema-invalid data rejected (the document is not stricter than kudos).

Not checked: that every schema-valid request is accepted (``positive_data_acceptance``). Two
refusals are by design and JSON Schema cannot express them: an Idempotency-Key reused with
another body (422, 2002), and a NUL character anywhere in a free-form metadata value (422).

Schemathesis' pytest integration (``schemathesis.pytest.from_fixture``) fails on pytest 9
(``'Function' object has no attribute '_nodeid'``), so the operations are driven by hand with
``operation.as_strategy()``; every failing operation is reported, each with a curl command.

``test_edge_cases_honour_the_contract`` sends, through the same checks, requests that a small
fuzzing budget does not reliably reach: 64-bit limits and NUL characters on the customer routes.
"""

from __future__ import annotations

import itertools
import re
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import LiveServer, events_body, kudos_command, server_env

pytestmark = [
    pytest.mark.slow,
    # conftest.start_server leaves its handle on the server log open (the child has its own).
    pytest.mark.filterwarnings(
        r"ignore:unclosed file <_io.BufferedWriter name='[^']*server\.log'>:ResourceWarning"
    ),
]

SEED = 20240601  # Hypothesis' seed for every operation (it overrides derandomize)
MAX_EXAMPLES = 30
OPERATIONS = 106  # what /openapi.json documents today; fewer means routes went missing
KNOWN_CUSTOMER = "contract-1"
WEBHOOKS = "/api/kudos/v1/webhooks"
KNOWN: dict[str, Any] = {}  # ids the contract server was given: endpoints, a message
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
    negative_data_rejection,
]
CUSTOMERS = "/api/v4.0/integrations/customers"
CUSTOMER = CUSTOMERS + "/{customerId}"
CUSTOMER_EVENTS = CUSTOMER + "/events"
EDGE_CASES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "startAfter past 64 bits": (
        "GET",
        CUSTOMER_EVENTS,
        {"path_parameters": {"customerId": KNOWN_CUSTOMER}, "query": {"startAfter": 2**63}},
    ),
    "startAfter at the 64-bit limit": (
        "GET",
        CUSTOMER_EVENTS,
        {"path_parameters": {"customerId": KNOWN_CUSTOMER}, "query": {"startAfter": 2**63 - 1}},
    ),
    "NUL in a customerId path": ("GET", CUSTOMER, {"path_parameters": {"customerId": "a\x00b"}}),
    "NUL in a customerId path (events)": (
        "GET",
        CUSTOMER_EVENTS,
        {"path_parameters": {"customerId": "a\x00b"}},
    ),
    "NUL in an upserted customerId": ("POST", CUSTOMERS, {"body": {"customerId": "a\x00b"}}),
    "NUL in an upserted email": (
        "POST",
        CUSTOMERS,
        {"body": {"customerId": "nul-email", "email": "a\x00b@example.com"}},
    ),
    "NUL in an upserted mobile": (
        "POST",
        CUSTOMERS,
        {"body": {"customerId": "nul-mobile", "mobile": "+20\x00100123456"}},
    ),
    "NUL in a sent customerId": (
        "POST",
        "/api/v4.0/integrations/events",
        {"body": {"customerId": "a\x00b", "events": {"e": {}}}},
    ),
}
SETTINGS = hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    # No shrinking: against a live server it costs many requests, and the curl command in the
    # report reproduces the request as it was found.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


@pytest.fixture
def contract_server(live_server: LiveServer) -> LiveServer:
    """The live server: no rate limit (every request reaches the logic), one known customer."""
    subprocess.run(
        kudos_command(
            "accounts", "set", "live", "--rate-limit", "off", "--db", live_server.database_url
        ),
        env=server_env(),
        check=True,
        capture_output=True,
    )
    headers = live_server.headers()
    for name in ("known", "doomed"):  # "doomed" is the one the DELETE cases remove
        hook = {"url": "http://127.0.0.1:9/hook", "topics": ["customer.created"]}
        response = httpx.post(f"{live_server.url}{WEBHOOKS}", json=hook, headers=headers)
        assert response.status_code == 201, response.text
        KNOWN[f"{name}-endpoint"] = response.json()["id"]
    body = events_body(KNOWN_CUSTOMER, email="contract@example.com")
    for path in ("/api/v4.0/integrations/events", "/api/v4.0/integrations/customers"):
        response = httpx.post(live_server.url + path, json=body, headers=headers)
        assert response.status_code == 200, response.text
    listed = httpx.get(
        f"{live_server.url}{WEBHOOKS}/{KNOWN['known-endpoint']}/messages", headers=headers
    )
    KNOWN["message"] = listed.json()["items"][0]["messageId"]  # customer.created
    _prepare_burn(live_server)
    return live_server


def _prepare_burn(server: LiveServer) -> None:
    """A program that redeems and pays cashback, billions of points for the known customer,
    holds and orders to read, release, redeem and refund."""
    headers = server.headers()

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(server.url + path, json=body, headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    program = {"redemption": {"pointValue": 0.01}, "cashback": {"points": 1, "every": 1}}
    response = httpx.put(f"{server.url}/api/kudos/v1/program", json=program, headers=headers)
    assert response.status_code == 200, response.text
    for n in range(3):
        grant = {"customerId": KNOWN_CUSTOMER, "transactionId": f"grant-{n}", "points": 10**9}
        post(BURN + "/transactions/manual", {**grant, "username": "ops", "reason": "contract"})
    hold = {"customerId": KNOWN_CUSTOMER, "pointsToHold": 1}
    # Ten of the hundred active holds a customer may have: the rest are the fuzzer's.
    KNOWN["holds"] = [post(BURN + "/transactions/hold", hold)["holdReference"] for _ in range(10)]
    KNOWN["orders"] = [f"order-{n}" for n in range(90)]
    for order_id in KNOWN["orders"]:
        post(BURN + "/orders", {"customerId": KNOWN_CUSTOMER, "orderId": order_id, "totalPaid": 10})


BURN = "/api/v4.0/integrations"
V3 = "/api/v3.0/"
BURN_BODY = re.compile(r"/transactions?/|/orders?$")  # v4 and v3 (the SDK's) spellings


def _known_burn_case(case: Case) -> Case:
    """A burn-side body for the known customer: a redeem of one point (0.01), a refund of
    0.01 of a known order (each order can take a thousand)."""
    body = case.body
    if not isinstance(body, dict):
        return case
    v3 = case.operation.path.startswith(V3)
    body["playerUniqueId" if v3 else "customerId"] = KNOWN_CUSTOMER
    for name in ("transactionId", "refundTransactionId", "orderId"):
        if name in body:  # a fresh id: one a request of another route used would be 9004
            body[name] = f"contract-{next(_IDS)}"
    path = case.operation.path
    # Exactly one of the amounts, small enough for the known customer's balance.
    for ending, v3_amount, v4_amount in _AMOUNTS:
        if path.endswith(ending):
            for name in _AMOUNT_FIELDS:
                body.pop(name, None)
            body.update(v3_amount if v3 else v4_amount)
    if case.operation.path.endswith("/refund"):
        body["reverseTransactionId"] = next(_ORDERS)
        body["amount" if v3 else "refundAmount"] = 0.01
    return case


_AMOUNT_FIELDS = (
    "holdReference",
    "amount",
    "points",
    "redeemedAmount",
    "pointsToHold",
    "amountToHold",
)
_AMOUNTS = (
    ("/redeem", {"redeemedAmount": 0.01}, {"points": 1}),
    ("/hold", {"amount": 0.01}, {"pointsToHold": 1}),
    ("/manual", {"points": 1}, {"points": 1}),
    ("/cashback", {"amount": 1}, {"amount": 1}),
)
_IDS = itertools.count()
_ORDERS = itertools.cycle([f"order-{n}" for n in range(90)])


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def load_schema(server: LiveServer) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_dict(
        # Credentials are sent as headers with every call, not generated.
        {"generation": {"with-security-parameters": False}}
    )
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json", config=config, timeout=10)


Operation = schemathesis.APIOperation[Any, Any, Any, Any]
Case = schemathesis.Case[Any]


def cases(operation: Operation, mode: GenerationMode) -> st.SearchStrategy[Case]:
    """Generated cases; for a customer's routes (and the preview), half of them name a customer
    that exists."""
    generated = operation.as_strategy(generation_mode=mode)
    if mode is GenerationMode.POSITIVE and operation.get_parameter("customerId", "path"):
        known = operation.as_strategy(
            generation_mode=mode, path_parameters={"customerId": KNOWN_CUSTOMER}
        )
        return st.one_of(known, generated)
    if mode is GenerationMode.POSITIVE and operation.get_parameter("customerId", "query"):
        known = operation.as_strategy(generation_mode=mode, query={"customerId": KNOWN_CUSTOMER})
        return st.one_of(known, generated)
    if mode is GenerationMode.POSITIVE and operation.path.endswith("/reward-preview"):
        return st.one_of(generated.map(_for_known_customer), generated)
    burn_body = BURN_BODY.search(operation.path)
    if mode is GenerationMode.POSITIVE and burn_body and operation.method.upper() == "POST":
        return st.one_of(generated.map(_known_burn_case), generated)
    for name, pool in (("holdReference", "holds"), ("orderId", "orders")):
        if mode is GenerationMode.POSITIVE and operation.get_parameter(name, "path"):
            known = st.sampled_from(KNOWN[pool][:5]).flatmap(
                lambda value, name=name: operation.as_strategy(
                    generation_mode=mode, path_parameters={name: value}
                )
            )
            return st.one_of(known, generated)
    if mode is GenerationMode.POSITIVE and operation.get_parameter("transactionId", "path"):
        known = operation.as_strategy(
            generation_mode=mode, path_parameters={"transactionId": "grant-0"}
        )
        return st.one_of(known, generated)
    if mode is GenerationMode.POSITIVE and operation.get_parameter("endpointId", "path"):
        deletes = operation.method.upper() == "DELETE"
        name = "doomed-endpoint" if deletes else "known-endpoint"
        known = operation.as_strategy(
            generation_mode=mode, path_parameters={"endpointId": KNOWN[name]}
        )
        # Generated ids are small integers: a DELETE with one would remove the known endpoint.
        return known if deletes else st.one_of(known, generated)
    if mode is GenerationMode.POSITIVE and operation.get_parameter("messageId", "path"):
        known = operation.as_strategy(
            generation_mode=mode, path_parameters={"messageId": KNOWN["message"]}
        )
        return st.one_of(known, generated)
    return generated


def _for_known_customer(case: Case) -> Case:
    """The preview only answers 200 for a customer that exists."""
    if isinstance(case.body, dict):
        case.body["customerId"] = KNOWN_CUSTOMER
    return case


def run_operation(
    operation: Operation,
    mode: GenerationMode,
    server: LiveServer,
    http: requests.Session,
    statuses: set[int],
) -> None:
    """``MAX_EXAMPLES`` generated requests to one operation; raises on the first failure."""

    @hypothesis.seed(SEED)
    @SETTINGS
    @given(case=cases(operation, mode))
    def check(case: Case) -> None:
        response = case.call_and_validate(
            base_url=server.url, session=http, headers=server.headers(), checks=CHECKS, timeout=10
        )
        statuses.add(response.status_code)

    check()


def test_every_operation_honours_its_openapi_contract(
    contract_server: LiveServer, http: requests.Session
) -> None:
    schema = load_schema(contract_server)
    failures: list[str] = []
    statuses: dict[str, set[int]] = defaultdict(set)
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            failures.append(f"--- invalid operation ---\n{result.err()}")
            continue
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                run_operation(operation, mode, contract_server, http, statuses[operation.label])
            except Unsatisfiable:
                # Nothing to negate: no body, no constrained parameter.
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Exception, FailureGroup) as exc:
                failures.append(f"--- {operation.label} ({mode.value}) ---\n{exc}")
    fail_on(failures, contract_server)
    assert len(statuses) == OPERATIONS, sorted(statuses)
    # Valid keys, so every operation must have answered a success at least once: a run that
    # only ever met 401 (or 404) would conform to the document and prove nothing.
    unreached = {
        label: codes for label, codes in statuses.items() if not any(200 <= c < 300 for c in codes)
    }
    assert unreached == {}, sorted(unreached)


def test_edge_cases_honour_the_contract(
    contract_server: LiveServer, http: requests.Session
) -> None:
    schema = load_schema(contract_server)
    failures: list[str] = []
    for name, (method, path, data) in EDGE_CASES.items():
        case = schema[path][method].Case(**data)
        try:
            case.call_and_validate(
                base_url=contract_server.url,
                session=http,
                headers=contract_server.headers(),
                checks=CHECKS,
                timeout=10,
            )
        except FailureGroup as exc:
            failures.append(f"--- {name} ---\n{exc}")
    fail_on(failures, contract_server)


def fail_on(failures: list[str], server: LiveServer) -> None:
    """Fail with every report and the end of the server's log (tracebacks of any 500)."""
    if failures:
        log = server.log_path.read_text()[-6000:]
        pytest.fail("\n\n".join([*failures, f"--- server log (tail) ---\n{log}"]), pytrace=False)
