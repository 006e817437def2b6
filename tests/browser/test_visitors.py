"""Two visitors on one server, each in a browser context of their own (cookies apart): each has their own run, the
second one's waits in a visible queue and starts by itself, and Home follows the visitor's run to its end.

Run it:  .venv/bin/python -m pytest tests/browser/test_visitors.py -m browser -v
"""

from __future__ import annotations

import pytest

from tests.browser.test_journey import (
    CHROMIUM,
    STEP_TIMEOUT_S,
    browser,
    fill_number,
    key,
    loss_points,
    main_text,
    no_exception,
    open_tab,
    server,
    settle,
    shoot,
    sidebar,
    wait_until,
)

__all__ = ["browser", "server"]  # the journey's Chromium and server (METASCOPE_MAX_TRAINING unset: 1 run at a time)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Chromium not found at {CHROMIUM}; install it with `apt-get install -y chromium`"),
]


def start_run(tab, episodes: int) -> None:
    for name, value in (("tr_episodes", episodes), ("tr_n_way", 5), ("tr_q_query", 5)):
        fill_number(tab, name, value)
    tab.locator(f"{key('tr_start')} button").click()
    settle(tab)


def test_each_visitor_has_their_own_run_and_the_second_waits_in_the_queue(server: str, browser) -> None:
    ann = open_tab(browser, f"{server}/train")  # a browser context each: two visitors
    bob = open_tab(browser, f"{server}/train")
    settle(ann)
    start_run(ann, 100_000)
    wait_until(lambda: loss_points(ann), STEP_TIMEOUT_S, "ann's run to train")

    settle(bob)
    bob.reload()  # bob's page drawn again after ann started: still none of ann's run
    settle(bob)
    assert "No run yet" in main_text(bob) and bob.locator(key("tr_use")).count() == 0
    assert bob.locator(f"{key('tr_start')} button").is_enabled()
    assert "Other visitors' runs on this server (1 training or waiting)" in main_text(bob)
    start_run(bob, 40)
    bob.get_by_text("Your run is waiting: 1 of 1 in the queue").wait_for()
    shoot(bob, "visitors-1-bob-queued")

    again = open_tab(ann.context, f"{server}/train")  # ann again, in a second tab: her cookie names her
    again.get_by_text("Your run is training or waiting").wait_for()
    assert again.locator(f"{key('tr_stop')} button").is_enabled()
    no_exception(again, "ann's second tab")
    again.close()

    bob.locator('[data-testid="stSidebarNav"] a').filter(has_text="Home").first.click()
    bob.wait_for_selector('h1:has-text("MetaScope")')
    settle(bob)
    bob.get_by_text("is waiting in the queue").wait_for()
    ann.locator(f"{key('tr_stop')} button").click()  # ann's slot frees: bob's run starts by itself
    bob.get_by_text("is training in the background").wait_for(timeout=STEP_TIMEOUT_S * 1000)
    shoot(bob, "visitors-2-bob-home-training")
    # Home follows the run to its end, as the sidebar does: it never says "training" once the run has finished
    bob.get_by_text("has ended: finished").wait_for(timeout=STEP_TIMEOUT_S * 1000)
    wait_until(lambda: "finished" in sidebar(bob), 30, "the sidebar to say the run finished")
    assert "is training in the background" not in main_text(bob)
    wait_until(lambda: "It is the current learner" in main_text(bob), 30, "Home to say the run is the current learner")
    assert "protonet-glyphs" in sidebar(bob)
    shoot(bob, "visitors-3-bob-home-finished")
    ann.context.close()
    bob.context.close()
