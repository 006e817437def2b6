"""Episodes: choose data and N/K/Q, draw or hand-pick an episode, swap images, save it for the other pages."""

import streamlit as st

from dashboard import episode_controls, episode_view, errors, loaders, sidebar, state
from dashboard.i18n import tr
from dashboard.labels import SPLITS

st.title(tr("Episodes"))
st.caption(tr("An episode is one few-shot task: N classes, K labelled support images each, and Q queries each to classify."))
choice, problem = episode_view.dataset_picker(), None
if choice is not None and state.episode() is None:  # a new dataset: its first episode, from the settings shown
    shape = state.shape()
    problem = episode_controls.draw(state.split(), shape.n_way, shape.k_shot, shape.q_query, state.episode_seed(), state.fixed_classes())
sidebar.sidebar()  # after the picker: it names the dataset and episode just chosen
if choice is None:
    st.stop()
with errors.reported():
    image_set = loaders.image_set(choice)
    splits = loaders.class_split(choice)
for warning in image_set.warnings:
    st.warning(warning)

episode_controls.episode_controls()
classes = splits.classes(state.split())
st.caption(tr("{total} classes in {dataset}; the {split} split has {n}.", total=image_set.n_classes, dataset=choice.dataset,
              split=tr(SPLITS[state.split()]), n=len(classes)))  # fmt: skip
spec = state.episode()
if spec is None:  # the settings do not fit this dataset: the problem is shown, the controls fix it
    st.error(problem, icon=":material/error:")
    st.stop()
if not episode_view.seeded(spec):
    st.caption(
        tr("A hand-made episode (classes picked or images swapped): the seed alone no longer draws it; a change above draws afresh.")
    )

with st.expander(tr("Pick classes by hand")):
    episode_controls.class_picker(image_set, classes)

episode_view.episode_grid(image_set, spec)

with st.expander(tr("Swap one image"), expanded=state.swapping()):  # open again after a swap: the next one is near
    if (swapped := episode_view.slot_swapper(image_set, spec)) is not None:
        state.set_episode(swapped)
        state.set_swapping(True)
        st.rerun()

st.subheader(tr("Save this episode"))
saved_as = [n for n, s in state.saved_episodes().items() if s == spec]
st.caption(
    tr("This episode is the current one: the Embeddings, Distances and Every learner pages show it.") + " "
    + (tr("It is saved as “{name}”.", name=saved_as[0]) if saved_as else tr("Save it by name to come back to it."))
)  # fmt: skip
left, right = st.columns(2, vertical_alignment="bottom")
name = left.text_input(tr("Name"), key="ep_name", placeholder=tr("e.g. hard-5-way"))
if right.button(tr("Save episode"), key="ep_save", icon=":material/bookmark_add:"):
    if name.strip():
        state.save_episode(name.strip(), spec)
        st.rerun()
    st.error(tr("Type a name for the episode first."))
if saved := state.saved_episodes_here():
    left, right = st.columns(2, vertical_alignment="bottom")
    chosen = left.selectbox(tr("Saved episodes"), list(saved), key="ep_saved")
    if right.button(tr("Make it current"), key="ep_load", icon=":material/bookmark:"):
        state.set_episode(saved[chosen])
        st.rerun()
if hidden := len(state.saved_episodes()) - len(saved):
    st.caption(tr("1 saved episode of other datasets is hidden; choose that dataset above to use it.") if hidden == 1 else
               tr("{n} saved episodes of other datasets are hidden; choose that dataset above to use them.", n=hidden))  # fmt: skip
