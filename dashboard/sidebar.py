"""What every page shows in the sidebar, the visitor's own run, and page links: the pieces the first page needs.

Nothing here imports torch (nor does anything it imports): the Home page is drawn from these alone,
before the engine is loaded (see dashboard/preload.py for why).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from core.training.registry import REGISTRY, get_run
from dashboard import state
from dashboard.i18n import language_switch, tr
from dashboard.labels import SPLITS, status_label
from dashboard.preload import engine_loaded
from dashboard.visitor import remember_visitor, visitor_id

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
        show(label or tr("loading the engine…"))
        if label is not None and not ready:
            st.rerun()  # once, the whole page: drawn again with the engine loaded, it stops polling

    ready = device_label() is not None
    st.fragment(draw, run_every=None if ready else 1.0)()


def current_training_run() -> TrainingRun | None:
    """This visitor's run of this process: the one this session follows, else their newest into this session's
    runs folder (a refreshed browser finds it, training, waiting or ended). Other visitors' runs are never it."""
    me = visitor_id()
    run = get_run(state.run_id()) if state.run_id() else None
    if run is None or run.owner != me:
        run = next((r for r in REGISTRY.runs_of(me) if r.run.path.parent == state.runs_dir()), None)
    if run is not None and run.id != state.run_id():
        state.set_run_id(run.id)
    return run


def follow_own_run(run: TrainingRun | None) -> None:
    """When the visitor's run has ended with weights, it becomes the current learner, unless they chose another
    learner since starting it (a new session that chose none counts as not having chosen)."""
    if run is None or run.id == state.followed_run():
        return
    snap = run.snapshot()
    if not snap.done:
        return
    state.set_followed_run(run.id)
    unchanged = state.learner_ref() == (state.learner_at_start() or state.LearnerRef())
    if unchanged and snap.status in ("finished", "stopped") and any((Path(snap.run_dir) / "checkpoints").glob("step-*.safetensors")):
        state.set_learner_ref(state.LearnerRef(snap.run_dir, None, run.config.learner.method))


def current_run_id() -> str | None:
    """The run folder name of the current learner (None: untrained)."""
    ref = state.learner_ref()
    return Path(ref.run_dir).name if ref.run_dir else None


def episode_label(spec: EpisodeSpec | None) -> str:
    if spec is None:
        return tr("none yet")
    name = next((n for n, s in state.saved_episodes().items() if s == spec), None)
    return tr("{name} ({n}-way {k}-shot)", name=name or tr("unsaved"), n=len(spec.class_ids), k=len(spec.support[0]))


def learner_label(ref: state.LearnerRef | None = None) -> str:
    """'<run> · step 200 (protonet, trained)', or what stands in when no run is chosen."""
    ref = ref or state.learner_ref()
    if ref.run_dir is None:
        return tr("untrained (no run chosen: train one, or pick a run)")
    step = ref.step
    if step is None:
        saved = sorted((Path(ref.run_dir) / "checkpoints").glob("step-*.safetensors"))
        step = int(saved[-1].stem.removeprefix("step-")) if saved else None
    return tr("{run} · step {step} ({method}, trained)", run=Path(ref.run_dir).name, step="?" if step is None else step, method=ref.method)


def sidebar() -> None:
    """What the user is working on, on every page: language, dataset, split, episode, learner, device, their run."""
    run = current_training_run()
    follow_own_run(run)
    language_switch()
    data = state.data_choice()
    source = f" · `{data.data_dir}`" if data.data_dir else ""
    lines = [
        f"**{tr('Dataset')}** {data.dataset} · {data.image_size} px{source}",  # the size follows the learner: say it
        f"**{tr('Split')}** {tr(SPLITS[state.split()])}",
        f"**{tr('Episode')}** {episode_label(state.episode())}",
        f"**{tr('Learner')}** {learner_label()}",
    ]
    with st.sidebar:
        st.markdown("  \n".join(lines))
        device_line(lambda label: st.markdown(f"**{tr('Device')}** {label}"))
        saved_episode_picker()
        if run is not None:  # its own fragment: the line stays current on every page while a run trains
            st.fragment(_training_line, run_every=None if run.snapshot().done else 2.0)(not run.snapshot().done)
        remember_visitor()


def saved_episode_picker() -> None:
    """A saved episode (of this dataset) made current from any page: Embeddings and Distances then show it."""
    saved = state.saved_episodes_here()
    if not saved:
        return
    st.session_state["sb_episode"] = next((n for n, s in saved.items() if s == state.episode()), None)

    def use() -> None:
        if (name := st.session_state.get("sb_episode")) is not None:
            state.set_episode(saved[name])

    st.selectbox(tr("Saved episodes"), list(saved), index=None, key="sb_episode", on_change=use, placeholder=tr("use a saved episode…"))


def _training_line(live: bool) -> None:
    """'Your run: training · 40/200'; when a run that was live ends, the whole page is drawn again (every page
    then says it ended, and the run may have become the current learner)."""
    run = current_training_run()
    if run is None:
        return
    snap = run.snapshot()
    st.markdown(f"**{tr('Your run')}** {status_label(snap.status)} · {snap.step}/{snap.total}")
    if live and snap.done:
        st.rerun(scope="app")
