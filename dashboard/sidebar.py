"""What every page shows in the sidebar, and page links: the pieces the first page needs.

Nothing here imports torch (nor does anything it imports): the Home page is drawn from these alone,
before the engine is loaded, so the dashboard is usable a second or two sooner after it starts.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from core.hardware import describe_default_device
from core.training.registry import active_run, get_run, latest_run
from dashboard import state

if TYPE_CHECKING:
    from core.episodes import EpisodeSpec
    from core.training.run import TrainingRun

ROOT = Path(__file__).resolve().parent.parent


def page_path(file: str) -> str:
    """Absolute path of a page file, as st.page_link and st.switch_page accept it from any entry point."""
    return str(ROOT / "pages" / file)


def link(file: str, label: str, icon: str | None = None) -> None:
    """st.page_link to a page of pages/, or its label greyed out while that page does not exist yet."""
    if (ROOT / "pages" / file).exists():
        st.page_link(page_path(file), label=label, icon=icon)
    else:
        st.caption(f"{label} (not available yet)")


def device_label() -> str:
    """Where the engine computes: torch's answer once it is loaded, else the same read without it."""
    return _torch_device_label() if "torch" in sys.modules else describe_default_device()


@functools.cache
def _torch_device_label() -> str:
    from core.device import describe_device, resolve_device

    return describe_device(resolve_device("auto"))


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
        f"**Device** {device_label()}",
    ]
    run = current_training_run()
    with st.sidebar:
        st.markdown("  \n".join(lines))
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
