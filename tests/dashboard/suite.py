"""The whole suite as `singularity run` starts it (every module, the dashboard included) on a
test database, with the local fake network of `make run REPLICATE=1` (the fake boost and Lotus of
scripts/fakes), and a headless Debian Chromium driven by Selenium through its chromedriver."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from scripts.run_sample import FakeNetwork
from shared import config as config_module
from tests.conftest import free_port
from tests.processes import stop
from tests.wait import wait_until_sync

REPO = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# What this machine's closed network needs (.library/env/machines/python.md): no background
# connections, no sandbox as root, a fresh profile each run.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1400,1000")


def browser_missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            return (f"{path} is missing: `make test` installs Debian's chromium and chromium-driver "
                    "with apt-get where it can (as root); install them to run this test")
    return None


class Suite:
    def __init__(self, root: Path, db_url: str, token: str):
        self.root, self.token = root, token
        self.fakes = FakeNetwork.start(root / "fake-network")
        ports = {name: free_port() for name in ("preparation", "dealmaking", "replication", "ranking", "hosting",
                                                 "dashboard")}
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        data = {
            "connection": {"database": db_url, "api_token": token,
                           "deal_preparation_service": self.urls["preparation"],
                           "deal_making_service": self.urls["dealmaking"],
                           "replication_service": self.urls["replication"],
                           "ranking_service": self.urls["ranking"],
                           "http_hosting_service": self.urls["hosting"],
                           "dashboard": self.urls["dashboard"], "ipni_api": ""},
            "database": {"enabled": False},
            "deal_preparation_service": {"port": ports["preparation"], "dataset_roots": [str(root)],
                                         "worker_timeout": 10.0, "maintenance_interval": 1.0},
            "deal_preparation_worker": {"out_dir": str(root / "cars"), "heartbeat_interval": 1.0,
                                        "poll_interval": 0.2},
            "deal_making_service": {"port": ports["dealmaking"]},
            "replication_service": {"port": ports["replication"]},
            "ranking_service": {"port": ports["ranking"]},
            "http_hosting_service": {"port": ports["hosting"], "car_dir": str(root / "cars")},
            "dashboard": {"enabled": True, "port": ports["dashboard"]},
        }
        self.fakes.configure(data)
        self.config = root / "config.toml"
        self.config.write_text(config_module.to_toml(data))
        self.log = root / "run.log"
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "cli", "--config", str(self.config), "run"],
                                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until_sync(lambda: self._answers("dashboard", "/static/dashboard.css")
                            and self._answers("preparation", "/preparations"), interval=0.2,
                            what="the suite and its dashboard to answer")
        except BaseException:
            self.stop()
            raise

    @property
    def dashboard(self) -> str:
        return self.urls["dashboard"]

    def _answers(self, service: str, path: str) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"singularity run exited {self.process.returncode}: {self.log.read_text()[-3000:]}")
        try:
            self.api(service, "GET", path)
            return True
        except OSError:
            return False

    def api(self, service: str, method: str, path: str, body: dict | None = None) -> dict:
        """A call of the suite's API as the CLI makes it (the Bearer token, no browser)."""
        status, answer = self.call(self.urls[service] + path, method, body, {"Authorization": f"Bearer {self.token}"})
        if status >= 400:
            raise AssertionError(f"{method} {path}: HTTP {status} {answer}")
        return answer

    @staticmethod
    def call(url: str, method: str = "GET", body: dict | None = None, headers: dict | None = None):
        """(status, parsed JSON or text); no redirect is followed."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method, headers={
            **({"Content-Type": "application/json"} if data is not None else {}), **(headers or {})})
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=30) as response:
                status, raw, kind = response.status, response.read(), response.headers.get_content_type()
        except urllib.error.HTTPError as exc:
            status, raw, kind = exc.code, exc.read(), exc.headers.get_content_type()
        return status, (json.loads(raw) if kind == "application/json" else raw.decode("utf-8", "replace"))

    def stop(self) -> None:
        stop(self.process)
        self.fakes.stop()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def chromium(downloads: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="chromium-", dir=downloads)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.profile_dir = profile
    return driver


def quit_browser(driver) -> None:
    driver.quit()
    shutil.rmtree(driver.profile_dir, ignore_errors=True)
