"""What every page shows in the sidebar, and page links: the pieces the first page needs.

Nothing here imports torch (nor does anything it imports): the Home page is drawn from these alone,
before the engine is loaded (see dashboard/preload.py for why).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from core.training.registry import active_run, get_run, latest_run
from dashboard import state
from dashboard.preload import engine_loaded

if TYPE_CHECKING:
    from core.episodes import EpisodeSpec
    from core.training.background import TrainingRun

ROOT = Path(__file__).resolve().parent.parent


def page_path(file: str) -> str:
    """Absolute path of a page file, as st.page_link and st.switch_page accept it from any entry point."""
    return str(ROOT / "pages" / file)


def link(file: str, label: str, icon: str | None = None) -> None:
    """st.page_link to a page of pages/."""
    st.page_link(page_path(file), label=label, icon=icon)


def device_label() -> str | None:
    """Where the engine computes ('CPU (2 threads)', 'CUDA 0: …'), or None while the engine is still loading."""
    return _torch_device_label() if engine_loaded() else None


@functools.cache
def _torch_device_label() -> str:
    from core.device import describe_device, resolve_device

    return describe_device(resolve_device("auto"))


def device_line(show: Callable[[str], None]) -> None:
    """show(the device label), once the engine has loaded: polled each second until then (it loads beside the first page)."""

    def draw() -> None:
        label = device_label()
        show(label or "loading the engine…")
        if label is not None and not ready:
            st.rerun()  # once, the whole page: drawn again with the engine loaded, it stops polling

    ready = device_label() is not None
    st.fragment(draw, run_every=None if ready else 1.0)()


def current_training_run() -> TrainingRun | None:
    """The run training in this process (a refreshed browser finds it), else the one this session followed,
    else the last run of this process into this session's runs folder (so a refresh still shows how it ended)."""
    run = active_run() or (get_run(state.run_id()) if state.run_id() else None)
    if run is None and (last := latest_run()) is not None and last.run.path.parent == state.runs_dir():
        run = last
    if run is not None and run.id != state.run_id():
        state.set_run_id(run.id)
    return run


def episode_label(spec: EpisodeSpec | None) -> str:
    if spec is None:
        return "none yet"
    name = next((n for n, s in state.saved_episodes().items() if s == spec), "unsaved")
    return f"{name} ({len(spec.class_ids)}-way {len(spec.support[0])}-shot)"


def learner_label() -> str:
    ref = state.learner_ref()
    if ref.run_dir is None:
        return "none chosen (train one or load a run)"
    step = ref.step
    if step is None:
        from core.store import RunDir  # safetensors.torch: only once a run is chosen

        saved = RunDir(ref.run_dir).checkpoints()
        step = saved[-1].step if saved else None
    return f"{Path(ref.run_dir).name} · step {step if step is not None else '?'} ({ref.method})"


def sidebar() -> None:
    """What the user is working on, on every page: dataset, split, episode, learner, device, training."""
    data = state.data_choice()
    source = f" · `{data.data_dir}`" if data.data_dir else ""
    lines = [
        f"**Dataset** {data.dataset}{source}",
        f"**Split** {state.split()}",
        f"**Episode** {episode_label(state.episode())}",
        f"**Learner** {learner_label()}",
    ]
    run = current_training_run()
    with st.sidebar:
        st.markdown("  \n".join(lines))
        device_line(lambda label: st.markdown(f"**Device** {label}"))
        saved_episode_picker()
        if run is not None:  # its own fragment: the line stays current on every page while a run trains
            st.fragment(_training_line, run_every=None if run.snapshot().done else 2.0)()


def saved_episode_picker() -> None:
    """A saved episode (of this dataset) made current from any page: Embeddings and Distances then show it."""
    saved = state.saved_episodes_here()
    if not saved:
        return
    st.session_state["sb_episode"] = next((n for n, s in saved.items() if s == state.episode()), None)

    def use() -> None:
        if (name := st.session_state.get("sb_episode")) is not None:
            state.set_episode(saved[name])

    st.selectbox("Saved episodes", list(saved), index=None, key="sb_episode", on_change=use, placeholder="use a saved episode…")


def _training_line() -> None:
    run = current_training_run()
    if run is not None:
        snap = run.snapshot()
        st.markdown(f"**Training** {snap.status} · {snap.step}/{snap.total}")
