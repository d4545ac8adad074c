"""The dashboard in a real headless Chromium (Debian's, driven by Selenium through its
chromedriver) over the whole suite started by `singularity run`: what a person sees and does.
Each page's screenshot goes to the screenshots directory (SINGULARITY_SCREENSHOTS, or tmp)."""
from __future__ import annotations

import re

import pytest
from selenium.common.exceptions import StaleElementReferenceException

from tests.dashboard.conftest import TOKEN
from tests.scan_helpers import make_tree
from tests.wait import wait_until_sync

PROVIDER = "f01000"
# Every page and live part; with api_token set, none answers without the session cookie.
PAGES = ("/preparations", "/preparation/{prep}", "/deals", "/deals?provider=f01000", "/replications",
         "/replication/{rep}", "/providers", "/provider/f01000", "/workers", "/charts")


def css(browser, selector: str):
    return browser.find_elements("css selector", selector)


def shows(browser, selector: str, what: str, text: str | None = None, budget: float | None = None) -> str:
    """Waits, without reloading, for the live page to show `selector` (holding `text`); its text.
    The page replaces its live part every few seconds, so elements are looked up afresh each time."""
    def found():
        try:
            for element in css(browser, selector):
                if text is None or text in element.text:
                    return element.text or " "
        except StaleElementReferenceException:
            pass
        return None
    return wait_until_sync(found, timeout=budget, interval=0.2, what=what)


def click(browser, selector: str, what: str) -> None:
    """Clicks the first element matching `selector` once it is there."""
    def clicked():
        try:
            elements = css(browser, selector)
            if elements:
                elements[0].click()
                return True
        except StaleElementReferenceException:
            pass
        return False
    wait_until_sync(clicked, interval=0.2, what=what)


def attributes(browser, selector: str, name: str) -> list[str]:
    """`name` of every element matching `selector`, read in one go (no stale element in between)."""
    return browser.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.getAttribute(arguments[1]))",
        selector, name)


def screenshot(browser, screenshots, name: str) -> None:
    path = screenshots / f"{name}.png"
    assert browser.save_screenshot(str(path)), path
    assert path.stat().st_size > 10_000, f"{path}: an empty page?"


def log_in(browser, suite, page: str = "/preparations") -> None:
    browser.get(suite.dashboard + page)
    if css(browser, "#login-form"):
        css(browser, "#token")[0].send_keys(TOKEN)
        css(browser, "#login-form button")[0].click()
        wait_until_sync(lambda: not css(browser, "#login-form"), interval=0.2, what="the login to go through")


@pytest.fixture(scope="module")
def seeded(suite, tmp_path_factory):
    """A prepared dataset, a deal from the fake boost and a replication request, through the APIs."""
    root = suite.root
    make_tree(root / "dataset", {f"dir{i}/file{j}.bin": 2500 + 97 * i + j for i in range(4) for j in range(3)})
    prep = suite.api("preparation", "POST", "/preparation", {"name": "dataset", "path": str(root / "dataset"),
                                                              "dealSize": "8KiB"})["id"]
    deal = suite.api("dealmaking", "POST", "/deal", {
        "wallet": suite.fakes.wallet, "keyPath": str(suite.fakes.key), "provider": PROVIDER,
        "pieceCid": "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq", "pieceSize": 2**35,
        "dataCid": "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", "verified": False})  # offline
    assert deal["state"] == "proposed", deal
    rep = suite.api("replication", "POST", "/replication", {
        "datasetId": prep, "minReplicas": 1, "criteria": f"provider in ({PROVIDER})", "client": suite.fakes.wallet,
        "keyPath": str(suite.fakes.key)})["id"]
    return {"prep": prep, "deal": deal["id"], "rep": rep}


def test_without_logging_in_no_page_or_data_request_works(browser, suite, seeded, screenshots):
    for path in (p.format(**seeded) for p in PAGES):
        status, answer = suite.call(suite.dashboard + path)
        assert status == 303, (path, status)  # to the login page, with nothing of the page
        status, answer = suite.call(suite.dashboard + "/live" + path)
        assert status == 401 and answer["error"] == "log in first", (path, status, answer)
        # A cookie that is not the session's opens nothing either.
        status, _ = suite.call(suite.dashboard + "/live" + path, headers={"Cookie": "singularity_session=" + TOKEN})
        assert status == 401, path
    for path, body in ((f"/action/preparation/{seeded['prep']}", {"state": "paused"}),
                       (f"/action/replication/{seeded['rep']}", {"state": "removed"}),
                       ("/live/lookup", {"criteria": ""})):
        status, answer = suite.call(suite.dashboard + path, "POST", body, {"Origin": suite.dashboard})
        assert status == 401, (path, status, answer)
    assert suite.api("preparation", "GET", f"/preparation/{seeded['prep']}")["state"] == "active"
    status, text = suite.call(suite.dashboard + "/login")
    assert status == 200 and "API token" in text

    browser.get(suite.dashboard + "/deals")
    assert css(browser, "#login-form"), "a page opened without logging in shows the login form"
    screenshot(browser, screenshots, "login")
    css(browser, "#token")[0].send_keys("wrong")
    css(browser, "#login-form button")[0].click()
    shows(browser, "#login-error", "the login error", "wrong token")
    assert not browser.get_cookies()
    css(browser, "#token")[0].clear()
    css(browser, "#token")[0].send_keys(TOKEN)
    css(browser, "#login-form button")[0].click()
    shows(browser, "h1", "the deals page after the login", "Deals by provider")
    assert browser.current_url.endswith("/deals")
    (cookie,) = browser.get_cookies()
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict", cookie
    assert TOKEN not in cookie["value"]
    assert browser.execute_script("return document.cookie") == "", "scripts must not read the session"


def test_a_preparation_created_through_the_api_appears_with_its_progress(browser, suite, seeded, screenshots):
    log_in(browser, suite)
    row = f'tr[data-preparation="{seeded["prep"]}"]'
    shows(browser, row, "the preparation's row")
    total = lambda: suite.api("preparation", "GET", f"/preparation/{seeded['prep']}")  # noqa: E731
    # The page updates itself: no reload while the worker packs the chunks.
    shows(browser, f"{row} [data-car-percent]", "the CAR progress to reach 100 %", "100.0")
    summary = total()
    assert summary["generationCompleted"] == summary["generationTotal"] > 1
    cells = shows(browser, row, "the row")
    assert "dataset" in cells and f"{summary['generationTotal']} / {summary['generationTotal']} done" in cells
    assert "12 files" in cells and "completed" in cells
    screenshot(browser, screenshots, "preparations")

    click(browser, f"{row} a", "the preparation's link")
    shows(browser, "tr[data-chunk]", "the chunk table")
    chunks = css(browser, "tr[data-chunk]")
    assert len(chunks) == summary["generationTotal"]
    assert summary["generationRequests"][0]["pieceCid"] in chunks[0].text
    search = css(browser, 'input[name="path"]')[0]
    search.send_keys("dir2/")
    search.submit()
    shows(browser, "tr[data-file]", "the file mapping")
    files = attributes(browser, "tr[data-file]", "data-file")
    assert files == ["dir2/file0.bin", "dir2/file1.bin", "dir2/file2.bin"], files
    mapped = suite.api("preparation", "GET", f"/preparation/{seeded['prep']}/files?path=dir2/")["files"][0]
    shows(browser, "tr[data-file]", "the first file's CID", mapped["cid"])
    screenshot(browser, screenshots, "preparation")


def test_a_deal_from_the_fake_boost_appears_under_its_provider(browser, suite, seeded, screenshots):
    log_in(browser, suite, "/deals")
    cells = f'tr[data-provider="{PROVIDER}"]'
    shows(browser, cells, "the provider's row")

    def agree() -> bool:
        """The page's counts by state add up to the API's deals of the provider (the replicator
        may be adding some: the live page catches up)."""
        shown = browser.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent)",
            f"{cells} a[data-count]")
        expected = suite.api("dealmaking", "GET", f"/deals?provider={PROVIDER}&limit=1")["total"]
        return expected >= 1 and sum(map(int, shown)) == expected
    wait_until_sync(agree, interval=0.5, what="the page's deal counts to match the API's")
    click(browser, f"{cells} a", "the provider's link")
    shows(browser, f'tr[data-deal="{seeded["deal"]}"]', "the deal in the provider's list", PROVIDER)
    screenshot(browser, screenshots, "deals")


def test_pause_resume_and_remove_from_the_pages_go_through_the_api(browser, suite, seeded, screenshots):
    root = suite.root
    make_tree(root / "other", {"a.bin": 5000, "b.bin": 7000})
    other = suite.api("preparation", "POST", "/preparation", {"name": "other", "path": str(root / "other"),
                                                               "dealSize": "8KiB"})["id"]
    log_in(browser, suite)
    row = f'tr[data-preparation="{seeded["prep"]}"]'
    click(browser, f'{row} button[data-state="paused"]', "Pause")
    wait_until_sync(lambda: suite.api("preparation", "GET", f"/preparation/{seeded['prep']}")["state"] == "paused",
                    interval=0.2, what="the API to say paused")
    click(browser, f'{row}[data-state="paused"] button[data-state="active"]', "Resume")
    wait_until_sync(lambda: suite.api("preparation", "GET", f"/preparation/{seeded['prep']}")["state"] == "active",
                    interval=0.2, what="the API to say active")

    # Remove asks first: dismissed, nothing happens; accepted, the preparation is gone.
    other_row = f'tr[data-preparation="{other}"]'
    click(browser, f'{other_row} button[data-state="removed"]', "Remove")
    alert = browser.switch_to.alert
    assert "Remove preparation other?" in alert.text
    alert.dismiss()
    assert suite.api("preparation", "GET", f"/preparation/{other}")["state"] != "removed"
    click(browser, f'{other_row} button[data-state="removed"]', "Remove")
    browser.switch_to.alert.accept()
    wait_until_sync(lambda: suite.call(f"{suite.urls['preparation']}/preparation/{other}",
                                       headers={"Authorization": f"Bearer {TOKEN}"})[0] == 404,
                    interval=0.2, what="the removed preparation to be gone from the API")
    wait_until_sync(lambda: not css(browser, other_row), interval=0.2, what="its row to go")

    # Replication requests the same way.
    log_in(browser, suite, "/replications")
    rep_row = f'tr[data-replication="{seeded["rep"]}"]'
    click(browser, f'{rep_row} button[data-state="paused"]', "Pause")
    wait_until_sync(lambda: suite.api("replication", "GET", f"/replication/{seeded['rep']}")["state"] == "paused",
                    interval=0.2, what="the request to be paused")
    shows(browser, f'{rep_row}[data-state="paused"]', "the paused request")
    screenshot(browser, screenshots, "replications")
    click(browser, f'{rep_row}[data-state="paused"] button[data-state="active"]', "Resume")
    wait_until_sync(lambda: suite.api("replication", "GET", f"/replication/{seeded['rep']}")["state"] == "active",
                    interval=0.2, what="the request to be active again")


def test_a_name_holding_markup_is_shown_as_text(browser, suite):
    root = suite.root
    make_tree(root / "markup", {"x.bin": 100})
    name = "<img src=x onerror=document.title='owned'>"
    prep = suite.api("preparation", "POST", "/preparation", {"name": name, "path": str(root / "markup"),
                                                              "dealSize": "8KiB"})["id"]
    log_in(browser, suite)
    assert name in shows(browser, f'tr[data-preparation="{prep}"]', "the row")
    assert not css(browser, "img") and browser.title != "owned"
    suite.api("preparation", "POST", f"/preparation/{prep}", {"state": "removed"})


def test_the_other_pages_render_with_the_suite_s_data(browser, suite, seeded, screenshots):
    log_in(browser, suite, f"/replication/{seeded['rep']}")
    shows(browser, "h1", "the request's page", seeded["rep"])
    # The replicator proposes the chunks to the provider through the fake boost.
    shows(browser, ".deal", "a chunk's deal", PROVIDER, budget=120)
    assert "Replication factor" in css(browser, "dl.facts")[0].text
    screenshot(browser, screenshots, "replication")

    log_in(browser, suite, "/providers")
    shows(browser, f'tr[data-provider="{PROVIDER}"]', "the tracked provider")
    criteria = css(browser, "#criteria")[0]
    criteria.send_keys("provider in (f01001, f01002)")
    css(browser, "#criteria-form button")[0].click()
    shows(browser, "#lookup h2", "the preview", "2 matching providers")
    assert sorted(attributes(browser, "tr[data-match]", "data-match")) == ["f01001", "f01002"]
    screenshot(browser, screenshots, "providers")
    criteria.clear()
    criteria.send_keys("nosuch.metric > 1")
    css(browser, "#criteria-form button")[0].click()
    shows(browser, "#lookup .notice", "the criteria error", "unknown metric")

    log_in(browser, suite, f"/provider/{PROVIDER}")
    shows(browser, "h1", "the provider's page", PROVIDER)
    screenshot(browser, screenshots, "provider")

    log_in(browser, suite, "/workers")
    worker = shows(browser, "tr[data-worker]", "a worker with its heartbeat")
    assert re.search(r"\d+ s ago", worker) and "alive" in worker, worker
    screenshot(browser, screenshots, "workers")

    log_in(browser, suite, "/charts")
    # The deals above and the chunks packed today, from the services' history APIs.
    shows(browser, "#deal-states .legend", "the deal states' legend", "active")
    assert css(browser, "#deal-states polyline")
    assert any(float(h) > 0 for h in attributes(browser, "#bytes-prepared rect.column", "height"))
    assert not css(browser, ".notice")
    screenshot(browser, screenshots, "charts")
