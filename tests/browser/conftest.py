"""The fixtures most browser tests share: a real `jwt-auth serve` per module (a module may
define its own `server` with other settings), and a fresh headless Chromium per test."""

from __future__ import annotations

import pytest

from server import Server, chromium


@pytest.fixture(scope="module")
def server():
    running = Server()
    yield running
    running.stop()


@pytest.fixture()
def browser():
    driver = chromium()
    yield driver
    driver.quit()
