"""Saves screenshots of the server's pages, made in headless Chromium against a real
`jwt-auth serve` with a few users, into the directory given (docs/screenshots/ by
scripts/screenshots.sh):

- api-reference.png: `GET /docs`, the API reference rendered from `/openapi.json`;
- console-signin.png, console-users.png, console-user.png, console-keys.png,
  console-events.png: the operator console at `/console` (docs/console.md).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

from server import ADMIN_EMAIL, PASSWORD, Server, chromium

KEK = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
USERS = ["ada@example.com", "grace@example.com", "alan@example.com", "edsger@example.com",
         "barbara@example.com", "ken@example.com"]


def visible(browser, css: str):
    return WebDriverWait(browser, 30).until(ready.visibility_of_element_located((By.CSS_SELECTOR, css)))


def api_reference(server: Server, out: Path) -> list[Path]:
    browser = chromium(1280, 1400)
    try:
        browser.get(f"{server.url}/docs")
        visible(browser, ".opblock")
        path = out / "api-reference.png"
        browser.save_screenshot(str(path))
        return [path]
    finally:
        browser.quit()


def console(server: Server, out: Path) -> list[Path]:
    # Some life in the trail: logins from two clients, a wrong password, a rotation.
    for email in USERS:
        server.post("/auth/register", {"email": email, "password": PASSWORD})
        server.post("/auth/login", {"username": email, "password": PASSWORD})
    server.post("/auth/login", {"username": "ada@example.com", "password": "wrong password"})
    shots = []
    browser = chromium(1280, 860)
    try:
        def shot(name: str) -> None:
            time.sleep(0.3)  # let the table settle
            path = out / f"console-{name}.png"
            browser.save_screenshot(str(path))
            shots.append(path)

        browser.get(f"{server.url}/console")
        form = visible(browser, "#signin-form")
        shot("signin")
        form.find_element(By.NAME, "username").send_keys(ADMIN_EMAIL)
        form.find_element(By.NAME, "password").send_keys(PASSWORD)
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        visible(browser, "#user-rows tr")
        shot("users")
        browser.find_element(By.XPATH, "//tbody[@id='user-rows']/tr[td='ada@example.com']").click()
        visible(browser, "#session-rows tr")
        shot("user")
        browser.find_element(By.CSS_SELECTOR, 'nav a[data-view="keys"]').click()
        visible(browser, "#key-rows tr")
        browser.find_element(By.ID, "rotate").click()
        visible(browser, "dialog#confirm[open]")
        shot("rotate-confirm")
        browser.find_element(By.ID, "confirm-ok").click()
        WebDriverWait(browser, 10).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#key-rows tr")) == 2)
        shot("keys")
        browser.find_element(By.CSS_SELECTOR, 'nav a[data-view="events"]').click()
        visible(browser, "#event-rows tr")
        shot("events")
        return shots
    finally:
        browser.quit()


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots").resolve()
    out.mkdir(parents=True, exist_ok=True)
    server = Server(env={"KEY_ENCRYPTION_KEY": KEK})
    try:
        for take in [api_reference, console]:
            for path in take(server, out):
                print(f"saved {path}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
