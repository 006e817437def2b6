"""One real-browser journey through the dashboard: headless Chromium driving `python -m dashboard`.

Home -> Episodes (draw, save an episode) -> Train (start, watch the loss curve grow, stop, use the
learner) -> Embeddings -> Distances -> Runs (load the run back). A screenshot of each page goes to
artifacts/screenshots/; any Streamlit exception box on any page fails the test.

Run it:  .venv/bin/python -m pytest tests/browser -m browser -v
(needs Chromium at /usr/bin/chromium: `apt-get install -y chromium`)
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
START_TIMEOUT_S = 120
STEP_TIMEOUT_S = 180  # one page's work on a busy 2-core machine (first dataset generation included)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Chromium not found at {CHROMIUM}; install it with `apt-get install -y chromium`"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition: Callable[[], object], timeout_s: float, what: str, every_s: float = 0.25) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if value := condition():
                return value
        except Exception:  # a page mid-redraw, a server still starting: look again
            pass
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


@contextmanager
def dashboard_server(tmp: Path, env: dict[str, str] | None = None, address: str | None = "127.0.0.1") -> Iterator[str]:
    """`python -m dashboard` (what scripts/start.sh runs) on a free port, its cache and runs under `tmp`; yields its URL.

    address None: none given (neither flag nor environment), so the server binds what the project's config says."""
    port = free_port()
    places = {"METASCOPE_CACHE": str(tmp / "cache"), "METASCOPE_RUNS_DIR": str(tmp / "runs"), "PYTHONUNBUFFERED": "1"}
    env = {**os.environ, **places, **(env or {})}
    command = [sys.executable, "-m", "dashboard", "--server.headless", "true", "--server.port", str(port)]
    command += ["--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    if address is None:
        env.pop("STREAMLIT_SERVER_ADDRESS", None)
    else:
        command += ["--server.address", address]
    log = (tmp / "server.log").open("w")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            assert process.poll() is None, f"streamlit exited: {(tmp / 'server.log').read_text()}"
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                return response.read() == b"ok"

        wait_until(healthy, START_TIMEOUT_S, "the streamlit health endpoint")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The dashboard with an empty runs folder, for this module's tests."""
    with dashboard_server(tmp_path_factory.mktemp("journey")) as url:
        yield url


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator:
    """Headless Chromium for the module's server (each browser test module has a `server` fixture)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(browser, server: str):
    return open_tab(browser, server)


def open_tab(opener, url: str, viewport: tuple[int, int] = (1440, 1100)):
    """A new tab (a new Streamlit session) on `url`, patient enough for a busy machine. `opener` is a browser (a new
    context: another visitor, with cookies of its own) or a browser context (another tab of the same visitor)."""
    size = {"width": viewport[0], "height": viewport[1]}
    context = opener.new_context(viewport=size) if hasattr(opener, "new_context") else opener  # a page's own context cannot open tabs
    tab = context.new_page()
    tab.set_viewport_size(size)
    tab.set_default_timeout(STEP_TIMEOUT_S * 1000)
    tab.set_default_navigation_timeout(STEP_TIMEOUT_S * 1000)
    tab.goto(url)
    return tab


def settle(page) -> None:
    """Wait until the script has finished running: the app reports 'notRunning' twice, half a second apart."""
    page.wait_for_selector('[data-testid="stApp"]')

    def script_state() -> str | None:
        return page.locator('[data-testid="stApp"]').get_attribute("data-test-script-state")

    def idle() -> bool:
        if script_state() != "notRunning":
            return False
        time.sleep(0.5)
        return script_state() == "notRunning"

    wait_until(idle, STEP_TIMEOUT_S, "the app to finish running")


def no_exception(page, name: str) -> None:
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, f"{name} shows a Streamlit exception: {boxes.first.inner_text()[:2000]}"


TIMINGS: dict[str, float] = {}  # screenshot name -> seconds since the journey opened the app


def shoot(page, name: str) -> None:
    """Screenshot of the whole page: the viewport grows to the content (Streamlit scrolls inside its own container).

    Also notes when the page was reached; artifacts/screenshots/timings.json gets them all at the end."""
    TIMINGS[name] = round(time.monotonic() - TIMINGS.setdefault("_start", time.monotonic()), 1)
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    height = page.evaluate(
        """() => Math.max(...['[data-testid="stMain"]', '[data-testid="stAppViewContainer"]', '[data-testid="stMainBlockContainer"]']
            .map(s => document.querySelector(s)).filter(Boolean).map(e => e.scrollHeight))"""
    )
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(height) + 80, 6000))})
    time.sleep(0.5)  # charts re-layout to the new size
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    page.set_viewport_size(size)
    no_exception(page, name)


def main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def go(page, title: str) -> None:
    """Open a page through the sidebar navigation (same session: the state carries over)."""
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
    page.wait_for_selector(f'h1:has-text("{title}")')
    settle(page)


def key(name: str) -> str:
    """CSS selector of the widget with Streamlit key `name`."""
    return f".st-key-{name}"


def fill_number(page, name: str, value: int) -> None:
    box = page.locator(f"{key(name)} input")
    box.fill(str(value))
    box.press("Enter")
    settle(page)


def loss_points(page) -> int:
    """Points of the live 'training loss' trace, read from the plotly graph in the page."""
    return page.evaluate(
        """() => {
            const plots = [...document.querySelectorAll('.st-key-tr_curves .js-plotly-plot')];
            const trace = plots.length ? (plots[0].data || []).find(t => t.name === 'training loss') : null;
            return trace ? trace.x.length : 0;
        }"""
    )


def sidebar(page) -> str:
    return page.locator('[data-testid="stSidebarUserContent"]').inner_text()


def hover_first_point(page) -> None:
    """Move the real mouse onto the chart's first point and wait for that point's image to show beside it."""
    page.wait_for_selector(f"{key('em_chart')} .js-plotly-plot .scatterlayer .point")
    x, y = page.evaluate(
        """() => {
            const gd = document.querySelector('.st-key-em_chart .js-plotly-plot');
            const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, trace = gd.data[0], box = gd.getBoundingClientRect();
            return [box.left + xa._offset + xa.l2p(trace.x[0]), box.top + ya._offset + ya.l2p(trace.y[0])];
        }"""
    )
    page.mouse.move(x - 30, y - 30)
    page.mouse.move(x, y, steps=5)
    tip = page.locator("#metascope-hover-image")
    tip.wait_for(state="visible", timeout=10_000)
    assert tip.get_attribute("src").startswith("data:image/png;base64,")


def inspector_agrees(page) -> None:
    """The inspector's box and the caption under its picture name the same point (class and image)."""

    seen: dict[str, str] = {}

    def agree() -> bool:
        box = " ".join(page.locator('[class*="st-key-em_point_"] input').input_value().split())  # the box is a combobox
        captions = page.locator('[data-testid="stImageCaption"]').all_inner_texts()
        pictures = [" ".join(c.split()) for c in captions if c.startswith("#")]  # the inspector's, and the other views'
        seen.update(box=box, pictures=" | ".join(pictures))
        return bool(box) and any(p.split(" · ")[:3] == box.split(" · ")[:3] for p in pictures)  # number, class and image

    try:
        wait_until(agree, 30, "the inspector's box and picture to name the same point")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen: {seen}") from None


def test_journey(page, server: str) -> None:
    try:
        journey(page, server)
    except BaseException:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "failure.png"))  # what the page showed when the journey broke
        raise


def journey(page, server: str) -> None:
    TIMINGS["_start"] = time.monotonic()
    settle(page)
    page.wait_for_selector('h1:has-text("MetaScope")')
    assert "Device" in sidebar(page)
    shoot(page, "01-home")

    go(page, "Episodes")
    page.wait_for_selector('[data-testid="stImage"]')
    page.locator(f"{key('ep_new')} button").click()
    settle(page)
    assert page.locator(f"{key('ep_seed')} input").input_value() == "1"
    page.get_by_text("Swap one image").click()
    before = page.get_by_text("now: image #").inner_text()
    page.locator('[class*="st-key-ep_swap_"] button').first.click()
    wait_until(lambda: page.get_by_text("now: image #").inner_text() != before, 60, "the swapped image")
    settle(page)
    shoot(page, "02b-episodes-swap")
    page.locator(f"{key('ep_name')} input").fill("journey")
    page.locator(f"{key('ep_name')} input").press("Enter")
    settle(page)
    page.locator(f"{key('ep_save')} button").click()
    settle(page)
    wait_until(lambda: "journey (5-way 1-shot)" in sidebar(page), 30, "the saved episode in the sidebar")
    wait_until(lambda: "saved as “journey”" in main_text(page), 30, "the page to say the episode is saved")
    assert page.locator('[data-testid="stImage"]').count() >= 10
    shoot(page, "02-episodes")

    go(page, "Train")
    for name, value in (("tr_episodes", 1000), ("tr_n_way", 5), ("tr_q_query", 5)):
        fill_number(page, name, value)
    page.locator(f"{key('tr_start')} button").click()
    first = wait_until(lambda: loss_points(page), STEP_TIMEOUT_S, "the first points of the loss curve")
    wait_until(lambda: loss_points(page) > first, STEP_TIMEOUT_S, "the loss curve to grow while training")
    shoot(page, "03-train-live")
    run_id = re.search(r"\d{8}-\d{6}-protonet-glyphs", main_text(page)).group(0)
    # a refreshed browser is a new session of the same visitor (its cookie): it must find the run, not start another
    refreshed = open_tab(page.context, f"{server}/train")
    refreshed.get_by_text("Your run is training or waiting").wait_for()
    wait_until(lambda: run_id in refreshed.locator('[data-testid="stMain"]').inner_text(), 60, "the new session to show the run")
    assert refreshed.locator(f"{key('tr_start')} button").is_disabled()
    no_exception(refreshed, "train (second session)")
    refreshed.close()
    page.locator(f"{key('tr_stop')} button").click()
    page.get_by_text("stopped at episode").wait_for(timeout=STEP_TIMEOUT_S * 1000)
    # the page redraws once when a run ends (the settings unlock): wait for that before the next click
    wait_until(lambda: page.locator(f"{key('tr_start')} button").is_enabled(), STEP_TIMEOUT_S, "the settings to unlock")
    settle(page)  # the run the visitor trained is the current learner once it ends: nothing to click
    wait_until(lambda: "protonet-glyphs" in sidebar(page), 30, "the learner in the sidebar")
    wait_until(lambda: "This is the current learner" in main_text(page), 30, "the page to confirm the learner")
    shoot(page, "04-train-done")

    go(page, "Embeddings")
    hover_first_point(page)  # its image appears beside the cursor
    page.mouse.down()
    page.mouse.up()  # a click on that point: the inspector shows it
    settle(page)
    inspector_agrees(page)
    page.locator(key("em_source")).get_by_text("a sample of splits").click()  # other points: the box and the picture still agree
    settle(page)
    inspector_agrees(page)
    page.locator(key("em_source")).get_by_text("the current episode").click()
    settle(page)
    inspector_agrees(page)
    shoot(page, "05-embeddings")
    go(page, "Distances")
    shoot(page, "06-distances")

    go(page, "Runs")
    page.wait_for_selector('[data-testid="stDataFrame"]')
    page.locator(f"{key('rn_use')} button").click()
    settle(page)
    wait_until(lambda: "This is the current learner" in main_text(page), 30, "the run to be the current learner")
    fill_number(page, "rn_eval_episodes", 100)
    page.locator(f"{key('rn_eval')} button").click()
    page.get_by_text("Test accuracy").wait_for()
    settle(page)
    assert "±" in main_text(page)
    shoot(page, "07-runs")
    TIMINGS.pop("_start")
    (SHOTS / "timings.json").write_text(json.dumps(TIMINGS, indent=1))
