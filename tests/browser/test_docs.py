"""`GET /docs` in headless Chromium: the API reference renders every operation of
`/openapi.json`, with nothing loaded from another host and no Content-Security-Policy
violation."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

from server import Server, chromium, requested_urls


def test_docs_lists_every_operation_of_the_openapi_document(server, browser):
    document = server.json("/openapi.json")
    expected = {(method.upper(), path) for path, item in document["paths"].items()
                for method in item if method in {"get", "post", "put", "patch", "delete"}}
    assert len(expected) >= 20

    browser.get(f"{server.url}/docs")
    WebDriverWait(browser, 30).until(ready.presence_of_element_located((By.CSS_SELECTOR, ".opblock")))
    shown = set()
    for block in browser.find_elements(By.CSS_SELECTOR, ".opblock"):
        method = block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text.strip()
        path = block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path")
        shown.add((method, path))
    assert shown == expected
    assert "jwt-auth" in browser.find_element(By.CSS_SELECTOR, ".info .title").text

    # Everything the page loaded came from the server itself.
    urls = requested_urls(browser)
    assert any(url.endswith("/openapi.json") for url in urls), urls
    others = [url for url in urls if not url.startswith(server.url + "/") and not url.startswith("data:")]
    assert others == [], others

    # No script error and no policy violation in the console.
    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == [], severe


def test_an_operation_opens_with_its_responses(server, browser):
    browser.get(f"{server.url}/docs#/auth")
    WebDriverWait(browser, 30).until(ready.presence_of_element_located((By.CSS_SELECTOR, ".opblock")))
    login = next(block for block in browser.find_elements(By.CSS_SELECTOR, ".opblock")
                 if block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path") == "/auth/login")
    login.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    WebDriverWait(browser, 10).until(
        lambda _: login.find_elements(By.CSS_SELECTOR, ".responses-table .response-col_status"))
    statuses = {cell.text.strip() for cell in login.find_elements(By.CSS_SELECTOR, ".responses-table .response-col_status")}
    assert {"200", "401", "429"} <= statuses, statuses
