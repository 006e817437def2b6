"""Fixtures for the page tests: an AppTest opener, a tiny image folder, a trained run, a clean run registry.

The root conftest already points METASCOPE_CACHE at one temporary folder for the whole session,
so each dataset (glyphs included) is generated or decoded once.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import ElementTree

from core.config import EpisodeShape, LearnerConfig, RunConfig, TrainConfig
from core.store import RunStore
from core.training.registry import active_runs
from core.training.run import train_run
from dashboard.i18n import speaking
from dashboard.state import DataChoice
from tests.conftest import write_image_folder

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "dashboard" / "app.py")
TIMEOUT_S = 120  # a first run imports torch and loads the data


def page_file(name: str) -> str:
    return str(ROOT / "pages" / f"{name}.py")


@pytest.fixture(autouse=True, scope="session")
def _widget_values_in_the_sessions_language() -> Iterator[None]:
    """AppTest sends a select box's value back as its label, made by the page's format function in the test's
    thread, after the script run, where no session says the language: a Chinese page's labels came out English and
    matched no option. A browser sends the label it was shown, so only the test harness needs this."""
    original = ElementTree.run

    def run(tree: ElementTree, *, timeout: float | None = None) -> AppTest:
        with speaking(tree.session_state["ms_lang"] if "ms_lang" in tree.session_state else "en"):
            return original(tree, timeout=timeout)

    ElementTree.run = run
    yield
    ElementTree.run = original


@pytest.fixture(autouse=True, scope="session")
def _data_roots(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The tests' image folders live in pytest's temporary folder: the dashboard may serve data from there."""
    os.environ["METASCOPE_DATA_ROOTS"] = str(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 classes in 4 groups (so split by group: 10 train, 5 val, 5 test classes), 20 images each."""
    return write_image_folder(tmp_path_factory.mktemp("images") / "data")


@pytest.fixture(scope="session")
def folder_choice(image_folder: Path) -> DataChoice:
    return DataChoice("folder", str(image_folder), 28)


def make_tiny_config(data: DataChoice, episodes: int = 30, method: str = "protonet") -> RunConfig:
    """A run that trains in seconds: 5-way 1-shot 5-query, validated and checkpointed every 10 episodes."""
    train = TrainConfig(
        dataset=data.dataset, data_dir=data.data_dir, episodes=episodes, train_shape=EpisodeShape(5, 1, 5),
        eval_shape=EpisodeShape(5, 1, 5), val_every=10, val_episodes=20, checkpoint_every=10, log_every=2, device="cpu",
    )  # fmt: skip
    return RunConfig(LearnerConfig(method=method), train)


@pytest.fixture
def tiny_config() -> Callable[..., RunConfig]:
    return make_tiny_config


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory: pytest.TempPathFactory, folder_choice: DataChoice) -> Path:
    """A runs folder with two short finished runs (protonet, pixel_nn), trained once per session."""
    root = tmp_path_factory.mktemp("trained") / "runs"
    store = RunStore(root)
    for method in ("protonet", "pixel_nn"):
        config = make_tiny_config(folder_choice, method=method)
        assert train_run(config, store.create(config)) == "finished"
    return root


@pytest.fixture
def runs_dir(tmp_path: Path, trained_runs: Path) -> Path:
    """A private copy of the trained runs: a test may delete or damage them."""
    return Path(shutil.copytree(trained_runs, tmp_path / "runs"))


@pytest.fixture(autouse=True)
def no_run_left_training():
    """A test that starts a run must not leave it training or waiting: the registry is process-wide."""
    yield
    runs = active_runs()
    for run in runs:
        run.stop()
    for run in runs:
        run.join(60)


@pytest.fixture
def open_app(tmp_path: Path) -> Callable[..., AppTest]:
    """open_app('episodes', ms_data=...) -> an AppTest on that page with session state seeded."""

    def open_page(page: str = "home", **session: object) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
        at.session_state["ms_runs_dir"] = str(tmp_path / "runs")
        for key, value in session.items():
            at.session_state[key] = value
        at.run()
        if page != "home":
            at.switch_page(page_file(page)).run()
        assert not at.exception, at.exception
        return at

    return open_page
