"""CORS from a real browser: headless Chromium loads a page from the frontend's origin
(http://localhost:3000, in the default CORS_ORIGINS), and that page registers, logs in,
submits and follows the submission's event stream to its grade with plain `fetch`, the
bearer token in the Authorization header, so every call passes a CORS preflight. The same
page from an origin the API does not allow gets nothing it can read.

Chromium maps the origins' host names to a page server on a free port
(--host-resolver-rules): the browser sends the real Origin, and the test needs no fixed
port. `make test` installs Chromium (`make browser-deps`); without it this test fails."""

from __future__ import annotations

import functools
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests

from cloudemy_dev.demo_data import DEMO_INSTRUCTOR
from cloudemy_dev.devstack import DevStack
from tests.integration.conftest import demo_class_join_code, signed_in
from tests.integration.test_pipeline import SLOW_SUM, create_assignment
from webapp.settings import DEFAULT_CORS_ORIGINS

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PAGES = Path(__file__).parent.parent / "browser_pages"
FRONTEND_ORIGIN = "http://localhost:3000"
FOREIGN_ORIGIN = "http://foreign.example"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # as root, and in containers without user namespaces
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-proxy-server",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """The page server's access log would only clutter the test output."""


@pytest.fixture(scope="module")
def page_port() -> Iterator[int]:
    """The static pages, from a threaded server on a free loopback port."""
    handler = functools.partial(_QuietHandler, directory=str(PAGES))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield server.server_address[1]
        server.shutdown()
        thread.join()


@pytest.fixture(scope="module")
def browser(page_port: int, tmp_path_factory):
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.fail(
            f"the browser test needs {' and '.join(missing)}: run `make browser-deps` "
            "(apt-get install chromium chromium-driver)",
            pytrace=False,
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    # Both paths are given, so Selenium Manager (which would download them) never runs.
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    hosts = {FRONTEND_ORIGIN.removeprefix("http://"), FOREIGN_ORIGIN.removeprefix("http://")}
    rules = ", ".join(f"MAP {host} 127.0.0.1:{page_port}" for host in sorted(hosts))
    options.add_argument(f"--host-resolver-rules={rules}")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _configured_origins(stack: DevStack) -> list[str]:
    configured = stack.env.get("CORS_ORIGINS")
    if configured is None:
        return list(DEFAULT_CORS_ORIGINS)
    return [origin.strip() for origin in configured.split(",") if origin.strip()]


def _run_page(browser, origin: str, stack: DevStack, **params: str) -> dict:
    """Load the page from `origin` and wait for what it reports in window.cloudemyResult."""
    from selenium.webdriver.support.ui import WebDriverWait

    query = urlencode({"api": stack.api_url, **params})
    browser.get(f"{origin}/cors_client.html?{query}")
    WebDriverWait(browser, 60, poll_frequency=0.1).until(
        lambda driver: driver.execute_script("return window.cloudemyResult !== undefined")
    )
    result = browser.execute_script("return window.cloudemyResult")
    assert "unexpected" not in result, json.dumps(result, indent=2)
    return result


def test_a_frontend_origin_registers_submits_and_follows_the_grade(browser, stack):
    assert FRONTEND_ORIGIN in _configured_origins(stack)
    instructor = signed_in(stack, DEMO_INSTRUCTOR["email"], DEMO_INSTRUCTOR["password"])
    assignment = create_assignment(instructor)
    email = f"browser-{uuid.uuid4().hex[:8]}@example.org"

    seen = _run_page(
        browser,
        FRONTEND_ORIGIN,
        stack,
        scenario="student",
        email=email,
        assignment=assignment["id"],
        join_code=demo_class_join_code(stack),
        code=SLOW_SUM,
    )

    assert (seen["register"], seen["login"], seen["join"], seen["submit"]) == (
        201,
        200,
        200,
        202,
    ), seen
    stream = seen["stream"]
    assert stream["status"] == 200
    assert stream["contentType"].startswith("text/event-stream")
    statuses = [event["data"]["status"] for event in stream["events"] if event["event"] == "status"]
    assert statuses[-1] == "graded", statuses
    assert stream["events"][-1] == {"event": "end", "data": {"status": "graded"}}
    final = [event["data"] for event in stream["events"] if event["event"] == "status"][-1]
    assert final["score"] == 100


def test_a_page_from_an_origin_not_allowed_can_read_nothing(browser, stack):
    assert FOREIGN_ORIGIN not in _configured_origins(stack)
    email = f"foreign-{uuid.uuid4().hex[:8]}@example.org"

    seen = _run_page(browser, FOREIGN_ORIGIN, stack, scenario="foreign", email=email)

    assert seen["register"]["readable"] is False, seen
    assert seen["register"]["error"].startswith("TypeError"), seen
    assert seen["read"]["readable"] is False, seen
    # The refused preflight kept the browser from sending the registration at all.
    login = requests.post(
        f"{stack.api_url}/api/auth/login",
        json={"email": email, "password": "correct horse"},
        timeout=15,
    )
    assert login.status_code == 401, login.text
