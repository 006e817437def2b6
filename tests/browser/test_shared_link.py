"""A teacher's link in a real browser: it opens the same lesson, episode and settings in a fresh session.

Headless Chromium drives `python -m dashboard` (the server, waiting and screenshot helpers are the journey
test's). Screenshots of every lesson go to artifacts/screenshots/learn-*.png.

Run it:  .venv/bin/python -m pytest tests/browser/test_shared_link.py -m browser -v
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.test_journey import CHROMIUM, STEP_TIMEOUT_S, browser, fill_number, key, server, settle, shoot, wait_until

__all__ = ["browser", "server"]  # the journey's fixtures: Chromium, and `python -m dashboard` on a free port

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Chromium not found at {CHROMIUM}; install it with `apt-get install -y chromium`"),
]


def fresh_tab(browser):
    """A new browser context: its own cookies and websocket, so its own Streamlit session."""
    tab = browser.new_context(viewport={"width": 1440, "height": 1100}).new_page()
    tab.set_default_timeout(STEP_TIMEOUT_S * 1000)
    return tab


def query_of(tab) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(tab.url).query).items()}


def number(tab, name: str) -> str:
    return tab.locator(f"{key(name)} input").input_value()


def class_labels(tab) -> list[str]:
    """The class names of the episode grid's rows, in order."""
    return [
        t.strip()
        for t in tab.locator('[data-testid="stMain"] [data-testid="stMarkdownContainer"] strong').all_inner_texts()
        if t.startswith("glyph")
    ]


def shared_link(tab) -> str:
    """The link in the page's 'Share this view' box."""
    tab.get_by_text("Share this view").click()
    code = tab.locator('[data-testid="stExpander"] code').first
    code.wait_for()
    return code.inner_text().strip()


def open_lesson(tab, title: str) -> None:
    tab.locator(f"{key('ln_lesson')} button").filter(has_text=title).first.click()
    tab.locator("h2").filter(has_text=title).first.wait_for()
    settle(tab)


def test_a_shared_episode_link_opens_the_same_episode_in_a_new_session(server: str, browser) -> None:
    teacher = fresh_tab(browser)
    teacher.goto(f"{server}/learn")
    settle(teacher)
    teacher.locator("h2").filter(has_text="1. Episodes").wait_for()
    for name, value in (("ln_seed", 7), ("ln_n", 3), ("ln_k", 2), ("ln_q", 4)):
        fill_number(teacher, name, value)
    wait_until(lambda: query_of(teacher).get("seed") == "7" and query_of(teacher).get("q") == "4", 30, "the settings in the address bar")
    labels = class_labels(teacher)
    assert len(labels) == 3
    link = shared_link(teacher)
    assert query_of(teacher) == {k: v[-1] for k, v in parse_qs(urlsplit(link).query).items()}
    shoot(teacher, "learn-1-episodes-teacher")

    student = fresh_tab(browser)
    student.goto(link)
    settle(student)
    student.locator("h2").filter(has_text="1. Episodes").wait_for()
    # the inputs can show their previous value for a moment after the run has finished
    shown = lambda: [number(student, n) for n in ("ln_seed", "ln_n", "ln_k", "ln_q")] == ["7", "3", "2", "4"]
    wait_until(shown, 10, "the link's seed and N/K/Q in the student's inputs")
    assert class_labels(student) == labels
    assert student.locator('[data-testid="stImage"]').count() == teacher.locator('[data-testid="stImage"]').count()
    shoot(student, "learn-1-episodes-student")
    student.context.close()
    teacher.context.close()


def test_a_guided_exercise_link_hides_its_controls_and_plays_the_playground(server: str, browser) -> None:
    student = fresh_tab(browser)
    student.goto(f"{server}/learn?lesson=metric&loss=triplet&margin=0.5&hide=margin,loss&lang=zh")
    settle(student)
    student.locator("h2").filter(has_text="2. 度量学习").wait_for()
    assert student.locator(key("ln_metric_margin")).count() == 0 and student.locator(key("ln_metric_loss")).count() == 0
    main = student.locator('[data-testid="stMain"]').inner_text()
    assert "0.5" in main and "triplet" in main and "由链接固定" in main
    assert query_of(student) == {"lesson": "metric", "lang": "zh", "loss": "triplet", "margin": "0.5", "hide": "loss,margin"}
    shoot(student, "learn-2-metric-link")

    def step() -> int:
        return int(student.locator('[data-testid="stMetric"]').first.locator('[data-testid="stMetricValue"]').inner_text())

    student.locator(f"{key('ln_metric_play')} button").click()
    wait_until(lambda: step() >= 20, STEP_TIMEOUT_S, "the playground to animate while playing")
    shoot(student, "learn-2-metric-playing")
    student.locator(f"{key('ln_metric_pause')} button").click()
    settle(student)
    paused = step()
    student.wait_for_timeout(1500)
    assert step() == paused
    student.context.close()


def slider_value(tab, name: str) -> str:
    """The value a slider's thumb shows."""
    return tab.locator(f'{key(name)} [data-testid="stSliderThumbValue"]').first.inner_text().strip()


EPISODE_INPUTS = {"seed": "ln_seed", "n": "ln_n", "k": "ln_k", "q": "ln_q"}


@pytest.mark.parametrize(
    ("title", "name", "query", "sliders"),
    [
        (
            "3. Prototypical networks",
            "learn-3-protonet",
            "lesson=protonet&data=glyphs&seed=3&n=3&k=2&q=3&query=4",
            {"ln_protonet_query": "4"},
        ),
        (
            "4. Matching and relation networks",
            "learn-4-matching",
            "lesson=matching&data=glyphs&seed=1&n=5&k=1&q=2&query=3",
            {"ln_matching_query": "3"},
        ),
        ("5. MAML", "learn-5-maml", "lesson=maml&data=glyphs&seed=0&n=5&k=1&q=5&inner_lr=0.1&step=3", {"ln_maml_step": "3"}),
        ("6. Task embeddings", "learn-6-tasks", "lesson=tasks&task=2", {"ln_tasks_task": "2"}),
        (
            "5. MAML（模型无关元学习）",
            "learn-5-maml-zh",
            "lesson=maml&lang=zh&data=glyphs&seed=2&n=3&k=1&q=3&step=2",
            {"ln_maml_step": "2"},
        ),
        ("6. 任务嵌入", "learn-6-tasks-zh", "lesson=tasks&lang=zh&task=5&k=3", {"ln_tasks_task": "5", "ln_tasks_k": "3"}),
    ],
)
def test_each_lesson_opens_from_its_link(server: str, browser, title: str, name: str, query: str, sliders: dict[str, str]) -> None:
    tab = fresh_tab(browser)
    tab.goto(f"{server}/learn?{query}")
    settle(tab)
    tab.locator("h2").filter(has_text=title).first.wait_for()
    tab.get_by_text("动手试试" if "lang=zh" in query else "Try this").first.wait_for()
    expected = dict(part.split("=") for part in query.split("&"))
    assert all(query_of(tab).get(k) == v for k, v in expected.items()), query_of(tab)
    # tasks has a k of its own (neighbours): only a link with an episode fills the episode's inputs
    inputs = {field: expected[field] for field in EPISODE_INPUTS if field in expected and "seed" in expected}
    shown = lambda: {field: number(tab, EPISODE_INPUTS[field]) for field in inputs} == inputs
    wait_until(shown, 10, f"the link's episode {inputs} in the inputs")
    assert {name: slider_value(tab, name) for name in sliders} == sliders
    shoot(tab, name)
    tab.context.close()
