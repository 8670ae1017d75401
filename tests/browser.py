"""A headless Chromium driven by selenium, for the tests that check pages in a real browser.

``scripts/test.sh`` installs Debian's ``chromium`` and ``chromium-driver`` and selenium; where
either cannot be had the tests that need them skip, saying which.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest


def chromium_paths() -> tuple[str, str] | str:
    """(browser, driver), or the reason there is none."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        return "no chromium/chromedriver on PATH (scripts/test.sh installs Debian's)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (scripts/test.sh installs it)"
    return browser, driver


@contextmanager
def chromium(*, offline: bool = False, width: int = 1400, height: int = 1000) -> Iterator[Any]:
    """A headless Chromium; ``offline``: every network request fails (a proxy that does not
    exist, and the DevTools network emulation set to offline)."""
    found = chromium_paths()
    if isinstance(found, str):
        pytest.skip(found)
    browser, driver_path = found
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(arg)
    if offline:
        options.add_argument("--proxy-server=http://127.0.0.1:9")
        options.add_argument("--proxy-bypass-list=<-loopback>")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Chromium leaves its singleton-socket directory (``org.chromium.Chromium.*``) in TMPDIR
    # after it quits: one per test, never removed. Give it a TMPDIR of its own, removed here.
    scratch = tempfile.TemporaryDirectory(prefix="recompyle-chromium-")
    service = Service(driver_path, env={**os.environ, "TMPDIR": scratch.name})
    try:
        driver = webdriver.Chrome(service=service, options=options)
    except BaseException:
        scratch.cleanup()
        raise
    try:
        if offline:
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd(
                "Network.emulateNetworkConditions",
                {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
            )
        yield driver
    finally:
        driver.quit()
        scratch.cleanup()


def console_errors(driver: Any) -> list[str]:
    """The page's console messages at level SEVERE (errors, uncaught exceptions)."""
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
