"""The running suite and a logged-out headless Chromium, shared by the module's tests."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.dashboard.suite import Suite, browser_missing, chromium, quit_browser

TOKEN = "dashboard-test-token"


@pytest.fixture(scope="module")
def suite(mongo_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("dashboard")
    running = Suite(root, f"{mongo_server.url}/dash{uuid.uuid4().hex[:8]}", TOKEN)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    """SINGULARITY_SCREENSHOTS names a directory to keep them in; else the test's own tmp dir."""
    chosen = os.environ.get("SINGULARITY_SCREENSHOTS")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    missing = browser_missing()
    if missing:
        pytest.skip(missing)
    driver = chromium(tmp_path_factory.mktemp("browser"))
    driver.set_page_load_timeout(60)
    yield driver
    quit_browser(driver)
