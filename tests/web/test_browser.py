"""The page in a real browser: Debian's headless Chromium driven by selenium, against a real
uvicorn server whose core is fed with node frames over (real) time by the bench.

Skipped when chromium or chromedriver is missing (`.ci/install-browser` installs them;
`make test` runs it). Waits are WebDriverWait polls of a condition, never fixed sleeps.

Screenshots: test-output/web.png and web-phone.png always; the one in the docs with
    MOAT_BMS_SCREENSHOT=docs/web-screenshot.png .venv/bin/pytest tests/web/test_browser.py
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import yaml
from anyio.from_thread import BlockingPortal, start_blocking_portal

from gateway.config.root import dump, load_config
from gateway.contracts.snapshot import ProtectionKind
from gateway.web.server import serve
from tests.common import ROOT
from tests.web.bench import Bench, BenchHost

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
OUTPUT = ROOT / "test-output"
STEP_S = 0.2  # how often the bench catches up with the wall clock (in 1 s node cycles)
WAIT_S = 15.0
UNKNOWN = "\N{EN DASH}"  # what the page shows for a value it does not have

AVAILABLE = CHROMIUM.exists() and CHROMEDRIVER.exists()
if not AVAILABLE and os.environ.get("MOAT_BMS_REQUIRE_BROWSER"):
    # CI sets this: there a missing browser is a failure, not a skip.
    raise RuntimeError(
        f"MOAT_BMS_REQUIRE_BROWSER is set but {CHROMIUM} or {CHROMEDRIVER} is missing"
    )

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not AVAILABLE,
        reason=f"needs {CHROMIUM} and {CHROMEDRIVER}: run .ci/install-browser (make test does)",
    ),
]

if AVAILABLE:
    from selenium import webdriver
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait


@dataclass
class Live:
    """A running page: its URL, the token, the bench and the loop that drives it."""

    url: str
    token: str
    bench: Bench
    portal: BlockingPortal
    config_path: Path

    def call(self, fn: Any, *args: Any) -> Any:
        """Run fn(*args) in the server's event loop (where the core lives)."""

        async def run() -> Any:
            return fn(*args)

        return self.portal.call(run)

    def api(self, path: str) -> Any:
        return httpx.get(self.url.rstrip("/") + path, timeout=5).json()


async def drive(bench: Bench) -> None:
    """Feed the core in real time, as the nodes would."""
    while True:
        bench.step(time.time())
        await anyio.sleep(STEP_S)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("web")
    now = time.time()
    bench = Bench(now=now - 3 * 3600, soc=0.45, soc_spread=0.015)
    bench.run(now, 10.0)  # three hours of history, then live
    web = bench.settings.web.model_copy(update={"port": 0, "token_file": tmp / "token"})
    config = tmp / "moat-bms.yaml"
    config.write_text(yaml.safe_dump(dump(bench.settings)))
    host = BenchHost(
        bench, config_path=config, settings_override=bench.settings.model_copy(update={"web": web})
    )
    with start_blocking_portal(backend="asyncio") as portal:
        url = portal.start_task(serve, host)[1]
        portal.start_task_soon(drive, bench)
        try:
            yield Live(url, (tmp / "token").read_text().strip(), bench, portal, config)
        finally:
            portal.call(portal.stop, True)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
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
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
        "--window-size=1360,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver, condition: Any, message: str) -> Any:
    return WebDriverWait(driver, WAIT_S, poll_frequency=0.1).until(condition, message)


def text(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


# True when the element's centre is on top, not under the sticky header or a toast that is
# still fading out (the first save's toast covered the second save's button once in CI).
ON_TOP = """
const r = arguments[0].getBoundingClientRect();
const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
return hit !== null && (hit === arguments[0] || arguments[0].contains(hit));
"""


def click(driver: WebDriver, selector: str) -> None:
    """Click an element after scrolling it to the middle, once nothing covers it."""
    element = driver.find_element(By.CSS_SELECTOR, selector)
    driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", element
    )
    wait(driver, lambda d: d.execute_script(ON_TOP, element), f"{selector} stays covered")
    element.click()


def unlock(driver: WebDriver, token: str) -> None:
    """Give the page the token through its dialog (it keeps it in the browser)."""
    wait(
        driver,
        lambda d: d.find_element(By.ID, "conn").get_attribute("data-state") == "live",
        "the live stream did not connect",
    )
    if "unlocked" in (driver.find_element(By.TAG_NAME, "body").get_attribute("class") or ""):
        return
    click(driver, "#unlock")
    field = driver.find_element(By.ID, "token-input")
    field.clear()
    field.send_keys(token)
    click(driver, "#token-save")
    wait(driver, lambda d: d.find_element(By.ID, "full-charge").is_enabled(), "not unlocked")


def alert_text(driver: WebDriver) -> str | bool:
    try:
        return str(driver.switch_to.alert.text)
    except NoAlertPresentException:
        return False


def layout(driver: WebDriver) -> Any:
    """Boxes of the parts that update every second (to catch layout jumps)."""
    return driver.execute_script(
        "return ['.summary', '#node-list', '.charts', '#node-0 .cells']"
        ".map(s => { const r = document.querySelector(s).getBoundingClientRect();"
        " return [r.x, r.y, r.width, r.height]; });"
    )


def test_the_page_shows_the_live_battery_and_acts_with_the_token(
    live: Live, browser: WebDriver
) -> None:
    driver = browser
    driver.get(live.url)
    wait(
        driver,
        lambda d: d.find_element(By.ID, "conn").get_attribute("data-state") == "live",
        "the live stream did not connect",
    )
    wait(driver, lambda d: text(d, "soc-value") != UNKNOWN, "no state of charge shown")
    wait(
        driver,
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#node-list .node")) == 4,
        "not every node is shown",
    )

    # Shown values match the API.
    api = live.api("/api/status")
    assert float(text(driver, "soc-value")) == pytest.approx(api["soc"], abs=0.2)
    # A fresh gateway's SoC is a rough estimate: the page says so, with what is sent.
    assert api["soc_trusted"] is False
    assert "not calibrated" in text(driver, "soc-source")
    sent = re.search(r"inverter sent ([0-9.]+) %", text(driver, "soc-source"))
    assert sent is not None and float(sent.group(1)) == pytest.approx(api["soc_sent"], abs=0.6)
    assert float(text(driver, "voltage-value")) == pytest.approx(api["voltage"], abs=1.0)
    assert text(driver, "limit-cvl") == f"{api['limits']['sent']['cvl']:.1f}"
    assert text(driver, "limit-ccl") == f"{api['limits']['sent']['ccl']:.1f}" or api["phase"]
    assert text(driver, "phase-value") == api["phase"].replace("_", " ")
    assert text(driver, "strings-value") == "2 of 2 strings online"
    assert text(driver, "inverter-keepalive") == "ok"
    bars = driver.find_elements(By.CSS_SELECTOR, "#node-0 .cells .cell")
    assert len(bars) == 16
    node0 = live.api("/api/nodes")["nodes"][0]
    low = driver.find_element(By.CSS_SELECTOR, "#node-0 .cell.min")
    assert low.get_attribute("title").startswith(f"cell {node0['min_cell']['cell']}:")
    wait(
        driver,
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#chart-voltage path.series")) == 2,
        "no voltage chart",
    )
    assert driver.find_element(By.CSS_SELECTOR, "#chart-soc path.series").get_attribute("d")
    rows = driver.find_elements(By.CSS_SELECTOR, "#event-rows tr")
    assert any("gateway started" in r.text for r in rows)
    wait(
        driver,
        lambda d: d.find_elements(By.CSS_SELECTOR, "#config-sections details"),
        "no setup shown",
    )

    # It updates by itself: a flag raised on node 1 (an info: the firmware raises a warning
    # with its info, two badges) appears without a reload, and the boxes that update every
    # second stay where they are.
    OUTPUT.mkdir(exist_ok=True)
    screenshot(driver, OUTPUT / "web.png")
    before = layout(driver)
    live.call(setattr, live.bench.flags[1], "infos", frozenset({ProtectionKind.CHARGE_OVER_TEMP}))
    wait(
        driver,
        lambda d: "info: ChargeOverTemp" in d.find_element(By.ID, "node-1").text,
        "the node's info never appeared",
    )
    assert layout(driver) == before

    # Without the token the controls are disabled and the API refuses the action.
    full = driver.find_element(By.ID, "full-charge")
    assert not full.is_enabled()
    assert "Read-only" in text(driver, "lock-hint")
    refused = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/api/actions/full-charge', {method: 'POST', headers: {'Content-Type':"
        " 'application/json'}, body: '{}'}).then(r => done(r.status));"
    )
    assert refused == 401
    count = live.api("/api/events")["count"]
    assert not any(
        e["message"] == "full charge requested" for e in live.api("/api/events")["events"]
    )

    # With the token it succeeds.
    unlock(driver, live.token)
    click(driver, "#full-charge")
    wait(driver, alert_text, "no confirmation asked")
    driver.switch_to.alert.accept()
    wait(driver, lambda d: "full charge requested" in text(d, "toast"), "no confirmation shown")
    wait(
        driver,
        lambda d: "full charge requested" in d.find_element(By.ID, "event-rows").text,
        "the action is not in the event log",
    )
    events = live.api(f"/api/events?since={count}")["events"]
    assert [e["message"] for e in events if e["kind"] == "user"] == ["full charge requested"]

    soc = driver.find_element(By.ID, "soc-input")
    soc.send_keys("55")
    click(driver, "#soc-set")
    wait(driver, lambda d: "SoC set to 55.0 %" in text(d, "toast"), "no confirmation shown")
    wait(
        driver,
        lambda d: "not calibrated" not in text(d, "soc-source"),
        "the SoC set by hand is still shown as not calibrated",
    )
    wait(
        driver,
        lambda d: "SoC set to 55.0 %" in d.find_element(By.ID, "event-rows").text,
        "the SoC action is not in the event log",
    )


def test_settings_are_edited_and_checked_on_the_page(live: Live, browser: WebDriver) -> None:
    driver = browser
    driver.get(live.url)
    unlock(driver, live.token)
    wait(
        driver,
        lambda d: d.find_elements(By.CSS_SELECTOR, 'details[data-section="strategy"]'),
        "no setup shown",
    )
    click(driver, 'details[data-section="strategy"] summary')
    field = driver.find_element(By.ID, "cfg-strategy.max_charge_current_a")
    field.clear()
    field.send_keys("-3")
    click(driver, "#config-save")
    wait(
        driver,
        lambda d: (
            "strategy.max_charge_current_a: Input should be greater than 0"
            in text(d, "config-errors")
        ),
        "the bad value was not refused with its key",
    )
    row = driver.find_element(By.CSS_SELECTOR, '[data-field="strategy.max_charge_current_a"]')
    assert "bad" in row.get_attribute("class")

    field = driver.find_element(By.ID, "cfg-strategy.max_charge_current_a")
    field.clear()
    field.send_keys("80")
    click(driver, "#config-save")
    wait(
        driver,
        lambda d: (
            "restart the gateway to apply strategy.max_charge_current_a" in text(d, "config-banner")
        ),
        "the saved change is not shown as pending",
    )
    assert load_config(live.config_path).strategy.max_charge_current_a == 80
    assert live.config_path.with_name("moat-bms.yaml.bak").exists()


def test_the_page_fits_a_phone(live: Live, browser: WebDriver) -> None:
    driver = browser
    driver.set_window_size(390, 844)
    try:
        driver.get(live.url)
        wait(
            driver,
            lambda d: d.find_element(By.ID, "conn").get_attribute("data-state") == "live",
            "the live stream did not connect",
        )
        wait(
            driver,
            lambda d: len(d.find_elements(By.CSS_SELECTOR, "#node-list .node")) == 4,
            "not every node is shown",
        )
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth;"
        )
        assert overflow <= 0, "the page scrolls sideways on a phone"
        OUTPUT.mkdir(exist_ok=True)
        driver.save_screenshot(str(OUTPUT / "web-phone.png"))
    finally:
        driver.set_window_size(1360, 900)


def screenshot(driver: WebDriver, path: Path) -> None:
    """The whole page (the headless window made as tall as the page), also to
    $MOAT_BMS_SCREENSHOT when set."""
    height = driver.execute_script("return document.documentElement.scrollHeight;")
    size = driver.get_window_size()
    driver.set_window_size(size["width"], min(int(height) + 40, 6000))
    try:
        driver.save_screenshot(str(path))
        extra = os.environ.get("MOAT_BMS_SCREENSHOT")
        if extra:
            shutil.copyfile(path, ROOT / extra)
    finally:
        driver.set_window_size(size["width"], size["height"])


def test_a_commercial_pack_is_drawn_beside_the_node(tmp_path: Path, browser: WebDriver) -> None:
    """A simulated JBD pack (its emulator read through the codec) in a string of its own: the
    page draws it from status.packs with its source, state, switches and cells."""
    now = time.time()
    jbd = {"source": "jbd", "port": "/dev/ttyUSB0"}
    bench = Bench(now=now - 60, strings=[[0], [1]], extra={"battery": {"packs": {1: jbd}}})
    bench.step(now)
    web = bench.settings.web.model_copy(update={"port": 0, "token_file": tmp_path / "token"})
    host = BenchHost(bench, settings_override=bench.settings.model_copy(update={"web": web}))
    with start_blocking_portal(backend="asyncio") as portal:
        url = portal.start_task(serve, host)[1]
        portal.start_task_soon(drive, bench)
        try:
            browser.get(url)
            wait(
                browser,
                lambda d: d.find_elements(By.CSS_SELECTOR, "#pack-1 .head .badge"),
                "the pack is not drawn",
            )
            card = browser.find_element(By.ID, "pack-1")
            wait(browser, lambda d: "active" in card.text, f"the pack is not active: {card.text}")
            assert "Pack 1" in card.text and "jbd" in card.text
            assert "charge on" in card.text and "discharge on" in card.text
            assert len(card.find_elements(By.CSS_SELECTOR, ".cells .cell")) == bench.cells
            assert browser.find_elements(By.ID, "node-0")  # the node beside it
        finally:
            portal.call(portal.stop, True)
