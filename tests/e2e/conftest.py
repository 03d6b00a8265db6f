"""Browser tests: the studio served on 127.0.0.1 with the embedded model,
driven by Playwright in Debian's headless Chromium. Screenshots go to the
folder printed at the start of the run (test-artifacts/screenshots)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def screenshots(pytestconfig) -> Path:
    """The folder for screenshots; the run's summary prints where it is."""
    from tests.conftest import SCREENSHOTS_KEY

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pytestconfig.stash[SCREENSHOTS_KEY] = SCREENSHOTS
    return SCREENSHOTS


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    """The served studio's store: a fresh SQLite file (the demo dataset loads on start)."""
    return f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'studio.db'}"


# name -> (role, password): the accounts the served studio is started with
ACCOUNTS = {
    "root": ("admin", "root-password"),
    "kim": ("annotator", "kim-password"),
    "vic": ("viewer", "vic-password"),
}


@pytest.fixture(scope="session")
def studio_url(tmp_path_factory, database_url):
    """`grm-studio serve` on a free loopback port, with a fresh SQLite store that
    has the ACCOUNTS."""
    from core.store.accounts import set_account
    from core.store.db import make_engine, upgrade

    engine = make_engine(database_url)
    upgrade(engine)
    for name, (role, password) in ACCOUNTS.items():
        set_account(engine, name, role, password)
    engine.dispose()
    yield from served_studio(database_url, tmp_path_factory.getbasetemp() / "serve.log")


def served_studio(database_url: str, log_path: Path, *options: str) -> Iterator[str]:
    """`grm-studio serve *options` on a free loopback port and `database_url`, its
    output in `log_path`: yields its URL once it answers, stops it after."""
    port = _free_port()
    env = {
        **os.environ,
        "GRM_STUDIO_DATABASE_URL": database_url,
        "GRM_STUDIO_MAX_NEW_TOKENS": "32",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", *options, "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if server.poll() is not None:
                pytest.fail(f"the studio exited: see {log_path}")
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail(f"the studio did not answer on {url} within 120 s")
    yield url
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="session")
def browser():
    playwright_sync = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with playwright_sync.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield context.new_page()
    context.close()


def sign_in(page, studio_url: str, name: str) -> None:
    """Sign in through the login page as one of ACCOUNTS and wait for the studio."""
    page.goto(studio_url)
    page.locator("#login-name").fill(name)
    page.locator("#login-password").fill(ACCOUNTS[name][1])
    page.locator("#login-submit").click()
    page.locator("#account-banner").wait_for(timeout=60_000)
