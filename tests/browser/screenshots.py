"""Saves screenshots of the server's pages, made in headless Chromium against a real
`jwt-auth serve`, into the directory given (docs/screenshots/ by scripts/screenshots.sh):

- api-reference.png: `GET /docs`, the API reference rendered from `/openapi.json`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

from server import Server, chromium


def api_reference(server: Server, out: Path) -> Path:
    browser = chromium(1280, 1400)
    try:
        browser.get(f"{server.url}/docs")
        WebDriverWait(browser, 30).until(ready.presence_of_element_located((By.CSS_SELECTOR, ".opblock")))
        path = out / "api-reference.png"
        browser.save_screenshot(str(path))
        return path
    finally:
        browser.quit()


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots").resolve()
    out.mkdir(parents=True, exist_ok=True)
    server = Server()
    try:
        for shot in [api_reference]:
            print(f"saved {shot(server, out)}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
