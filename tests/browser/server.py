"""A real `jwt-auth serve` (SQLite, in a temporary directory) and headless Chromium driven by
Debian's chromedriver, for the browser tests and the screenshot script."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

PASSWORD = "correct horse battery staple"
ADMIN_EMAIL = "admin@example.com"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`jwt-auth serve` on 127.0.0.1 with an admin account; stopped by `stop()`."""

    def __init__(self, binary: str | None = None, env: dict[str, str] | None = None):
        self.binary = binary or os.environ["JWT_AUTH_BIN"]
        self.dir = Path(tempfile.mkdtemp(prefix="jwt-auth-browser-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            "PATH": os.environ.get("PATH", ""),
            "BIND_ADDRESS": f"127.0.0.1:{self.port}",
            "DATABASE_URL": f"sqlite://{self.dir / 'jwt-auth.db'}",
            "DATA_DIR": str(self.dir),
            "PUBLIC_URL": self.url,
            "ADMIN_EMAIL": ADMIN_EMAIL,
            "ADMIN_PASSWORD": PASSWORD,
            # The browser talks plain HTTP to 127.0.0.1: a Secure cookie would not come back.
            "COOKIE_SECURE": "false",
            "LOGIN_RATE_LIMIT": "0",
            "LOG_FORMAT": "json",
            **(env or {}),
        }
        self.log = open(self.dir / "server.log", "w")
        self.process = subprocess.Popen([self.binary, "serve"], env=env, cwd=self.dir,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            assert self.process.poll() is None, f"jwt-auth exited: {self.read_log()}"
            try:
                with urllib.request.urlopen(f"{self.url}/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"jwt-auth was not ready in 60 s: {self.read_log()}")

    def read_log(self) -> str:
        return (self.dir / "server.log").read_text(errors="replace")

    def json(self, path: str):
        with urllib.request.urlopen(f"{self.url}{path}", timeout=10) as answer:
            return json.load(answer)

    def post(self, path: str, body: dict, token: str | None = None):
        """POSTs `body` as JSON, with the bearer `token` if any; the status and the JSON answer."""
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(f"{self.url}{path}", data=json.dumps(body).encode(),
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.load(answer)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def chromium(width: int = 1280, height: int = 900, arguments: tuple[str, ...] = ()) -> webdriver.Chrome:
    """Headless Chromium with its network and console logs kept (`get_log`), started with the
    command-line `arguments` given besides its own."""
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", shutil.which("chromium") or "chromium")
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", *arguments]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def requested_urls(browser: webdriver.Chrome) -> list[str]:
    """Every URL the page asked for so far, from Chromium's network log."""
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls
