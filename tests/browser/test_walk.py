"""Every page in Chromium on a desktop (1400×1000) and a phone (390×844), in English and in Chinese.

On each page: no exception, nothing wider than the screen, no widget label cut short, and, on the phone, the
distance matrix as wide as the screen allows and every image strip of an episode labelled. Screenshots of every
page go to artifacts/walk/<width>-<language>/. The server has a trained ProtoNet and a first-order MAML run, made
from the command line before it starts (runs nobody owns: every visitor may use them).

Run it:  .venv/bin/python -m pytest tests/browser/test_walk.py -m browser -v
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.browser.test_journey import (
    CHROMIUM,
    ROOT,
    STEP_TIMEOUT_S,
    browser,
    dashboard_server,
    key,
    no_exception,
    open_tab,
    settle,
    wait_until,
)

__all__ = ["browser"]  # the journey's Chromium, on this module's own server

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Chromium not found at {CHROMIUM}; install it with `apt-get install -y chromium`"),
]

SIZES = {"desktop": (1400, 1000), "phone": (390, 844)}
PAGES = ["episodes", "train", "embeddings", "distances", "compare", "tasks", "runs", "learn", ""]  # "": Home, last
LESSONS = ["metric", "protonet", "matching", "maml", "tasks"]  # the first, episodes, opens with the Learn page
TRAIN = {  # in this order: the ProtoNet run is the newest, first in the Runs page's list
    "fomaml": ["--recipe", "fomaml", "--episodes", "10"],
    "protonet": ["--recipe", "protonet", "--episodes", "60", "--n-way", "10"],
}
LAYOUT = """() => {
  const shown = e => e.offsetParent !== null;
  const cut = [...document.querySelectorAll('[data-testid="stWidgetLabel"] p, [data-testid="stMetricLabel"] p, button p, label p')]
    .filter(e => shown(e) && e.scrollWidth > e.clientWidth + 1).map(e => e.innerText.slice(0, 60));
  return {width: document.documentElement.scrollWidth, cut};
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("walk")
    env = {**os.environ, "METASCOPE_CACHE": str(tmp / "cache")}
    for flags in TRAIN.values():  # from the command line, as a teacher would prepare a class
        command = [sys.executable, "-m", "core", "train", "--dataset", "glyphs", *flags, "--val-every", "0"]
        subprocess.run([*command, "--runs-dir", str(tmp / "runs")], cwd=ROOT, env=env, check=True, capture_output=True, timeout=900)
    with dashboard_server(tmp) as url:
        yield url


def navigate(tab, path: str) -> None:
    """Open a page through the sidebar (the session, and the learner chosen in it, carry over); on a phone the
    sidebar is folded away and opens first."""
    link = tab.locator(f'[data-testid="stSidebarNav"] a[href$="/{path}"]').first
    box = link.bounding_box()
    if box is None or box["x"] + box["width"] <= 0:  # folded away (moved off the screen)
        tab.locator('[data-testid="stExpandSidebarButton"]').click()
        wait_until(lambda: link.bounding_box()["x"] >= 0, 10, "the sidebar to open")
    link.click()
    settle(tab)
    time.sleep(1.0)  # charts lay out after the script has finished
    settle(tab)


def shoot_whole(tab, path) -> None:
    """The whole page (the viewport grows to the content), then the viewport as it was."""
    size = tab.viewport_size
    height = tab.evaluate("""() => document.querySelector('[data-testid="stMain"]').scrollHeight""")
    tab.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(height) + 80, 9000))})
    time.sleep(0.5)
    path.parent.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(path))
    tab.set_viewport_size(size)


def check_layout(tab, where: str) -> None:
    width = tab.viewport_size["width"]
    layout = tab.evaluate(LAYOUT)
    assert layout["width"] <= width + 1, f"{where}: the page is {layout['width']} px wide on a {width} px screen"
    assert not layout["cut"], f"{where}: labels cut short: {layout['cut']}"
    no_exception(tab, where)


def chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("device", list(SIZES))
def test_every_page_on_a_desktop_and_a_phone_in_both_languages(server: str, browser, device: str, lang: str) -> None:
    shots = ROOT / "artifacts" / "walk" / f"{SIZES[device][0]}-{lang}"
    tab = open_tab(browser, f"{server}/runs{'?lang=zh' if lang == 'zh' else ''}", SIZES[device])
    settle(tab)
    tab.locator(f"{key('rn_use')} button").click()  # the ProtoNet run (the newest) becomes the current learner
    settle(tab)
    for path in PAGES:
        navigate(tab, path)
        name = path or "home"
        title = tab.locator("h1").first.inner_text()
        assert lang == "en" or path == "" or chinese(title), f"{name}: the title '{title}' is not in Chinese"
        check_layout(tab, f"{device} {lang} {name}")
        if device == "phone" and path == "distances":
            width = tab.locator(".st-key-di_query_class .js-plotly-plot").first.bounding_box()["width"]
            assert width >= 300, f"the distance matrix is {width:.0f} px wide on a 390 px screen"
        if device == "phone" and path == "episodes":
            spec_rows = tab.locator('[data-testid="stImageCaption"]').all_inner_texts()
            labels = {"support", "query"} if lang == "en" else {"支持", "查询"}
            assert {c.strip() for c in spec_rows} >= labels  # a stacked row still says which strip is which
        shoot_whole(tab, shots / f"{name}.png")
    for lesson in LESSONS:
        tab.goto(f"{server}/learn?lesson={lesson}{'&lang=zh' if lang == 'zh' else ''}")
        settle(tab)
        wait_until(lambda: tab.locator("h2").count() > 0, STEP_TIMEOUT_S, f"the {lesson} lesson")
        check_layout(tab, f"{device} {lang} lesson {lesson}")
        shoot_whole(tab, shots / f"learn-{lesson}.png")
    tab.context.close()
