"""Dashboard figures in a real browser, printed as JSON: start-up, page switches, memory with a run and a big projection.

    .venv/bin/python scripts/bench_dashboard.py [--points 5000] [--episodes 3000]

- start_to_usable_s: from launching `streamlit run` to the Home page drawn and idle in headless Chromium;
- page_switch_s: per page, the seconds from a click in the sidebar to that page drawn and idle (a second visit:
  data and learners cached, as when a user goes back and forth); first_visit_s: the first time each page opens;
- rss_mb: the server's resident memory at start, with a run training, and at its peak while the Embeddings page
  embeds and projects `--points` images of the glyphs dataset (PCA) while that run goes on.
Uses Chromium at /usr/bin/chromium and the helpers of the browser journey test; runs and caches go to a temp folder
(the dataset cache stays the lasting one unless --cold).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.analysis.projection import METHOD_LABELS  # noqa: E402
from tests.browser.test_journey import CHROMIUM, CHROMIUM_ARGS, fill_number, free_port, key, settle, wait_until  # noqa: E402

PAGES = ("Episodes", "Train", "Embeddings", "Distances", "Runs", "Home")


class PeakRss:
    """Samples a process's resident memory every 0.1 s in a thread; .peak_mb is the largest seen."""

    def __init__(self, pid: int):
        self.process, self.peak_mb, self._stop = psutil.Process(pid), 0.0, threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def now_mb(self) -> float:
        return self.process.memory_info().rss / 2**20

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            self.peak_mb = max(self.peak_mb, self.now_mb())

    def stop(self) -> None:
        self._stop.set()


def open_page(tab, title: str) -> float:
    """Seconds from the sidebar click to the page drawn (its title shown) and the script idle."""
    start = time.perf_counter()
    tab.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
    tab.wait_for_selector(f'h1:has-text("{"MetaScope" if title == "Home" else title}")')
    settle(tab)
    return time.perf_counter() - start - 0.5  # settle() looks twice, 0.5 s apart, to be sure the script is idle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=5000, help="images projected on the Embeddings page")
    parser.add_argument("--episodes", type=int, default=3000, help="length of the run kept training meanwhile")
    parser.add_argument("--slow-method", default="umap", choices=("umap", "tsne", "none"), help="then this projection, in the background")
    parser.add_argument("--cold", action="store_true", help="an empty dataset cache too (the glyphs are generated)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="metascope-bench-"))
    env = {**os.environ, "METASCOPE_RUNS_DIR": str(tmp / "runs"), "PYTHONUNBUFFERED": "1"}
    if args.cold:
        env["METASCOPE_CACHE"] = str(tmp / "cache")
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.headless", "true", "--server.port", str(port)]
    command += ["--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    figures: dict = {"load_average_1min": os.getloadavg()[0], "cpu_count": os.cpu_count()}
    started = time.perf_counter()
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=(tmp / "server.log").open("w"), stderr=subprocess.STDOUT)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            tab = browser.new_page(viewport={"width": 1440, "height": 1000})
            tab.set_default_timeout(300_000)
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: tab.goto(url) and True, 120, "the server", every_s=0.1)
            tab.wait_for_selector('h1:has-text("MetaScope")')
            settle(tab)
            figures["start_to_usable_s"] = round(time.perf_counter() - started - 0.5, 2)
            rss = PeakRss(server.pid)
            figures["rss_mb"] = {"idle": round(rss.now_mb())}
            figures["first_visit_s"] = {title: round(open_page(tab, title), 2) for title in PAGES}
            again = {title: [open_page(tab, title) for _ in range(3)] for title in PAGES}
            figures["page_switch_s"] = {title: round(statistics.median(times), 2) for title, times in again.items()}

            open_page(tab, "Train")
            fill_number(tab, "tr_episodes", args.episodes)
            tab.locator(f"{key('tr_start')} button").click()
            tab.get_by_text("Episodes / s").wait_for()
            time.sleep(5)
            figures["rss_mb"]["run_training"] = round(rss.now_mb())
            open_page(tab, "Embeddings")
            tab.locator(key("em_source")).get_by_text("a sample of splits").click()
            settle(tab)
            start = time.perf_counter()
            fill_number(tab, "em_n", args.points)
            tab.locator(key("em_splits")).locator("input").click()  # add the train split: 5,000 needs more than one
            tab.get_by_role("option", name="train").click()
            settle(tab)
            figures["projection_s"] = {f"embed+pca_{args.points}_points": round(time.perf_counter() - start, 2)}
            time.sleep(2)
            figures["rss_mb"]["run_and_projection_now"] = round(rss.now_mb())
            figures["rss_mb"]["peak"] = round(rss.peak_mb)
            if args.slow_method != "none":  # the page must not wait for a slow projection: PCA stands in meanwhile
                start = time.perf_counter()
                tab.locator(key("em_method")).get_by_text(METHOD_LABELS[args.slow_method]).click()
                settle(tab)
                usable = time.perf_counter() - start - 0.5
                background = "computing in the background" in tab.locator('[data-testid="stMain"]').inner_text()
                wait_until(lambda: "computing in the background" not in tab.locator('[data-testid="stMain"]').inner_text(), 900, "it")
                settle(tab)
                figures["projection_s"][f"{args.slow_method}_{args.points}_points"] = {
                    "page_usable_after": round(usable, 2), "shown_in_background": background,
                    "result_drawn_after": round(time.perf_counter() - start - 0.5, 2),
                }  # fmt: skip
                figures["rss_mb"]["peak"] = round(rss.peak_mb)
            training = tab.locator('[data-testid="stSidebarUserContent"]').inner_text()
            figures["run_still_training"] = "running" in training
            rss.stop()
            browser.close()
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
