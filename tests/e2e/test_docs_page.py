"""``/docs`` in a real browser: Swagger UI from the local bundle renders kudos' operations.

Debian's ``chromium`` driven by Playwright (no browser download). Without it the test is
skipped, unless ``CI=true``, where it fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Locator, Page, expect, sync_playwright

from tests.conftest import LiveServer, start_server, stop_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SEND_EVENTS = "/api/v4.0/integrations/events"
CUSTOMER_OPERATIONS = {
    ("post", "/api/v4.0/integrations/customers"): "Create or update a customer",
    ("get", "/api/v4.0/integrations/customers/{customerId}"): "Get a customer",
    ("get", "/api/v4.0/integrations/customers/{customerId}/events"): "List a customer's events",
}
TIMEOUT_MS = 20_000

pytestmark = [
    pytest.mark.slow,
    # conftest.start_server leaves its handle on the server log open (the child has its own).
    pytest.mark.filterwarnings(
        r"ignore:unclosed file <_io.BufferedWriter name='[^']*server\.log'>:ResourceWarning"
    ),
]


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true needs {CHROMIUM} (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed")
    return CHROMIUM


@pytest.fixture
def docs_server(chromium: Path, tmp_path: Path) -> Iterator[LiveServer]:
    """A live server on SQLite only: the page does not depend on the store.

    Not the ``database_url`` fixture: a skipped PostgreSQL run fails the session under CI.
    """
    server = start_server(f"sqlite:///{tmp_path}/kudos.db", tmp_path / "server.log")
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture
def page(chromium: Path) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 2000})
            try:
                yield context.new_page()
            finally:
                context.close()
        finally:
            browser.close()


def test_docs_render_the_operations_from_local_assets_only(
    docs_server: LiveServer, page: Page, tmp_path: Path
) -> None:
    requested: list[str] = []
    errors: list[str] = []
    page.on("request", lambda req: requested.append(req.url))
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    response = page.goto(f"{docs_server.url}/docs", wait_until="networkidle")
    assert response is not None
    assert response.status == 200

    # Swagger UI has fetched /openapi.json and rendered one block per operation.
    send_events = operation_block(page, "post", SEND_EVENTS)
    expect(send_events).to_have_count(1, timeout=TIMEOUT_MS)
    expect(send_events.locator(".opblock-summary-description")).to_have_text("Send events")
    for (method, path), summary in CUSTOMER_OPERATIONS.items():
        block = operation_block(page, method, path)
        expect(block).to_be_visible()
        expect(block.locator(".opblock-summary-description")).to_have_text(summary)

    # Expanded, the operation shows its request body's schema, with customerId.
    send_events.locator(".opblock-summary").first.click()
    body = send_events.locator(".opblock-section-request-body")
    expect(body).to_be_visible(timeout=TIMEOUT_MS)
    body.get_by_text("Schema", exact=True).click()
    expect(body.locator(".model-box")).to_contain_text("customerId", timeout=TIMEOUT_MS)
    expect(body.locator(".model-box")).to_contain_text("EventsCreate")

    page.screenshot(path=str(tmp_path / "docs.png"), full_page=True)
    send_events.screenshot(path=str(tmp_path / "send-events.png"))
    page.wait_for_load_state("networkidle")

    assert errors == []
    assert f"{docs_server.url}/openapi.json" in requested
    elsewhere = [url for url in requested if not _local(url)]
    assert elsewhere == [], "the page must not reach any host but 127.0.0.1"


def operation_block(page: Page, method: str, path: str) -> Locator:
    return page.locator(f'.opblock-{method}:has(.opblock-summary-path[data-path="{path}"])')


def _local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.scheme in ("http", "https", "ws") and parts.hostname == "127.0.0.1"
