"""The live page in Debian's chromium, headless, driven by selenium, while `coachd run`
coaches the synthetic runner in the retro program: the cadence and a cue appear, STOP ends
the drill, and the page comes back by itself after a daemon restart.

Set COACHD_SCREENSHOT_DIR to keep screenshots of the page (docs/img/ has them).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
from daemon_harness import (
    RETRO_AT_ONCE,
    RUNNER,
    STARTUP_S,
    DaemonProcess,
    require_synthetic,
    start_daemon,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
if CHROMIUM is None or not Path(CHROMEDRIVER).is_file():
    pytest.skip(
        "chromium and chromium-driver are not installed (scripts/setup-system.sh installs them)",
        allow_module_level=True,
    )
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (dev)")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SEEN_WITHIN_S = 60.0  # a busy shared machine: pose at a few frames a second


@pytest.fixture()
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1280,800",
    ):
        options.add_argument(flag)
    # The system driver, never selenium-manager's download.
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def _text(browser: WebDriver, element_id: str) -> str:
    return str(browser.find_element(By.ID, element_id).text)


def _attribute(browser: WebDriver, element_id: str, name: str) -> str:
    return str(browser.find_element(By.ID, element_id).get_attribute(name) or "")


def _wait(
    browser: WebDriver, what: str, check: Callable[[Any], bool], daemon: DaemonProcess
) -> None:
    try:
        WebDriverWait(browser, SEEN_WITHIN_S, poll_frequency=0.2).until(check)
    except Exception:
        pytest.fail(
            f"the page never showed {what}; status {_text(browser, 'status')!r}, "
            f"cue {_text(browser, 'cue')!r}, program {_text(browser, 'program')!r}\n"
            + daemon.output()[-2000:]
        )


def _screenshot(browser: WebDriver, name: str) -> None:
    folder = os.environ.get("COACHD_SCREENSHOT_DIR")
    if folder:
        browser.save_screenshot(str(Path(folder) / name))


def test_the_live_page_coaches_stops_a_drill_and_comes_back(
    tmp_path: Path, browser: WebDriver
) -> None:
    require_synthetic()
    daemon = start_daemon(tmp_path / "first", RUNNER, RETRO_AT_ONCE)
    try:
        daemon.wait_ready(STARTUP_S)
        url = f"http://127.0.0.1:{daemon.port}/"
        browser.get(url)
        _wait(browser, "a cadence", lambda b: _text(b, "cadence").isdigit(), daemon)
        _wait(browser, "a cue", lambda b: _text(b, "cue") != "", daemon)
        _wait(
            browser,
            "the retro drill",
            lambda b: _attribute(b, "program", "data-step") in ("prepare", "drill"),
            daemon,
        )
        assert "Retro drill" in _text(browser, "program")
        _wait(browser, "coaching", lambda b: _text(b, "status") == "Coaching", daemon)
        _screenshot(browser, "live-page.png")

        browser.find_element(By.ID, "stop").click()
        _wait(
            browser, "STOP's answer", lambda b: _text(b, "stop-result") == "Drill stopped", daemon
        )
        _wait(browser, "the drill's end", lambda b: "Stop the drill" in _text(b, "cue"), daemon)
        _wait(
            browser,
            "no drill any more",
            lambda b: _attribute(b, "program", "data-step") == "",
            daemon,
        )
        assert _text(browser, "program") == "No more drills this session"
        assert daemon.stop() == 0
        _wait(
            browser,
            "the daemon gone",
            lambda b: _attribute(b, "status", "data-state") == "disconnected",
            daemon,
        )
    finally:
        daemon.cleanup()

    again = start_daemon(tmp_path / "again", RUNNER, RETRO_AT_ONCE, port=daemon.port)
    try:
        again.wait_ready(STARTUP_S)
        # EventSource reconnects by itself to the new daemon's snapshot ...
        _wait(
            browser,
            "the page reconnected",
            lambda b: _attribute(b, "status", "data-state") != "disconnected",
            again,
        )
        # ... and a reload shows it coaching again.
        browser.refresh()
        _wait(
            browser, "a cadence after the restart", lambda b: _text(b, "cadence").isdigit(), again
        )
    finally:
        again.stop()
        again.cleanup()
