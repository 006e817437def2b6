"""Dashboard figures in a real browser, printed as JSON: start-up, page switches, memory with a run and a big projection.

    .venv/bin/python scripts/bench_dashboard.py [--points 5000] [--episodes 3000]

- start_to_usable_s: from launching `python -m dashboard` (scripts/start.sh) to the Home page drawn and idle in headless Chromium;
- page_switch_s: per page, the seconds from a click in the sidebar to that page drawn and idle (a second visit:
  data and learners cached, as when a user goes back and forth); first_visit_s: the first time each page opens;
- train_eps: the episodes/s of a run started on the Train page while that page stays open and polls, against the
  same run with no browser attached, in alternating phases (the goal: the dashboard costs at most 10%); and the
  same configuration trained from the command line (core's train_run in a process of its own) afterwards;
- cpu_cores_while_polling: the cores used meanwhile by the server, the run's training process and Chromium;
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


class CpuShares:
    """CPU time used from now on by the server, its training child and Chromium, in cores (1.0 = one core busy)."""

    def __init__(self, server_pid: int):
        server = psutil.Process(server_pid)
        self.groups = {"server": [server], "training_process": server.children(recursive=True)}
        self.groups["chromium"] = [q for q in psutil.process_iter(["name"]) if "chrom" in (q.info["name"] or "")]
        self.start, self.used = time.perf_counter(), {name: self._cpu(procs) for name, procs in self.groups.items()}

    @staticmethod
    def _cpu(procs: list[psutil.Process]) -> float:
        total = 0.0
        for proc in procs:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total

    def cores(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self.start
        return {name: round((self._cpu(procs) - self.used[name]) / elapsed, 2) for name, procs in self.groups.items()}


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
    parser.add_argument("--poll-s", type=float, default=15.0, help="seconds of each phase: the Train page polling, then no browser")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of phases")
    parser.add_argument("--start-only", action="store_true", help="measure the start-up alone, then stop")
    parser.add_argument("--cold", action="store_true", help="an empty dataset cache too (the glyphs are generated)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="metascope-bench-"))
    env = {**os.environ, "METASCOPE_RUNS_DIR": str(tmp / "runs"), "PYTHONUNBUFFERED": "1"}
    if args.cold:
        env["METASCOPE_CACHE"] = str(tmp / "cache")
    port = free_port()
    command = [sys.executable, "-m", "dashboard", "--server.headless", "true", "--server.port", str(port)]
    command += ["--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    figures: dict = {"load_average_1min": os.getloadavg()[0], "cpu_count": os.cpu_count()}
    server = None
    try:
        with sync_playwright() as p:
            # the browser is open before the server starts, as a user's is: its own start is not the dashboard's
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            tab = browser.new_page(viewport={"width": 1440, "height": 1000})
            tab.set_default_timeout(300_000)
            tab.goto("about:blank")
            started = time.perf_counter()
            server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=(tmp / "server.log").open("w"), stderr=subprocess.STDOUT)
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: tab.goto(url) and True, 120, "the server", every_s=0.1)
            tab.wait_for_selector('h1:has-text("MetaScope")')
            settle(tab)
            figures["start_to_usable_s"] = round(time.perf_counter() - started - 0.5, 2)
            if args.start_only:
                browser.close()
                print(json.dumps(figures))
                return
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
            run_dir = next((tmp / "runs").iterdir())
            figures["train_eps"] = alternate_phases(tab, url, server.pid, run_dir / "metrics.jsonl", args.poll_s, args.rounds)
            figures["cpu_cores_while_polling"] = figures["train_eps"].pop("cpu_cores_while_polling")
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
        if server is not None:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
    if "train_eps" in figures:  # for reference: the same configuration from the command line, minutes later
        figures["train_eps"]["command_line"] = train_alone(run_dir, tmp / "alone")
    print(json.dumps(figures, indent=2))


def alternate_phases(tab, url: str, server_pid: int, metrics: Path, phase_s: float, rounds: int) -> dict:
    """Episodes/s of the dashboard's run with the Train page open and polling, and with no browser attached,
    in alternating phases of `phase_s` seconds (the first 3 s of each skipped: a page load is not polling).

    Alternating, because this machine's speed drifts by 20% or more over minutes: the same 600 episodes
    trained alone ran at 13.7 to 19.2 episodes/s in six back-to-back runs.
    """
    polling, detached, cpu = [], [], {}
    for _ in range(rounds):
        start = time.time()
        shares = CpuShares(server_pid)
        time.sleep(phase_s)  # the Train page stays open, its fragment polling the run
        cpu = shares.cores()
        polling.append(steady_eps(metrics, start + 3, time.time()))
        tab.goto("about:blank")  # the session ends; the run goes on in the server
        start = time.time()
        time.sleep(phase_s)
        detached.append(steady_eps(metrics, start + 3, time.time()))
        tab.goto(f"{url}/train")  # as a refresh: the page finds the run
        tab.get_by_text("Episodes / s").wait_for()
    polled, alone = statistics.median(polling), statistics.median(detached)
    return {
        "dashboard_polling": polled,
        "no_browser": alone,
        "dashboard_cost": round(1 - polled / alone, 3),
        "phases": {"polling": polling, "no_browser": detached},
        "cpu_cores_while_polling": cpu,
    }


def steady_eps(metrics: Path, t_from: float, t_to: float) -> float:
    """The median episodes/s of the training records written in [t_from, t_to] (validation pauses excluded)."""
    records = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    inside = [r["episodes_per_s"] for r in records if r.get("kind") == "train" and t_from <= r["time"] <= t_to]
    if len(inside) < 3:
        raise RuntimeError(f"{metrics}: fewer than three training records in the {t_to - t_from:.0f} s window")
    return round(statistics.median(inside), 2)


def train_alone(run_dir: Path, runs: Path, episodes: int = 600) -> float:
    """Episodes/s of the dashboard run's configuration trained without the dashboard (warm-up records skipped)."""
    code = (
        "import dataclasses, sys\n"
        "from core.store import RunDir, RunStore\n"
        "from core.training.run import train_run\n"
        "c = RunDir(sys.argv[1]).config()\n"
        f"c = dataclasses.replace(c, train=dataclasses.replace(c.train, episodes={episodes}))\n"
        "run = RunStore(sys.argv[2]).create(c)\n"
        "train_run(c, run)\n"
        "print(run.path)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(run_dir), str(runs)], cwd=ROOT, capture_output=True, text=True, check=True)
    metrics = Path(done.stdout.strip().splitlines()[-1]) / "metrics.jsonl"
    times = [json.loads(line)["time"] for line in metrics.read_text().splitlines() if '"train"' in line]
    return steady_eps(metrics, times[min(2, len(times) - 2)], times[-1])


if __name__ == "__main__":
    main()
