"""Episodes: choose data and N/K/Q, draw or hand-pick an episode, swap images, save it for the other pages."""

import streamlit as st

from core.config import EpisodeShape
from core.data import SPLIT_NAMES
from core.episodes import draw_spec
from dashboard import episode_view, errors, inputs, loaders, sidebar, state

sidebar.sidebar()
st.title("Episodes")
st.caption("An episode is one few-shot task: N classes, K labelled support images each, and Q queries each to classify.")

choice = episode_view.dataset_picker()
if choice is None:
    st.stop()
with errors.reported():
    image_set = loaders.image_set(choice)
    splits = loaders.class_split(choice)
for warning in image_set.warnings:
    st.warning(warning)

drawn = state.shape()  # the settings of the episode on screen
cols = st.columns([1.2, 1, 1, 1, 1, 1.3], vertical_alignment="bottom")
split = cols[0].selectbox("Split", SPLIT_NAMES, key=inputs.keyed("ep_split", state.split()))
n = cols[1].number_input("N (classes)", min_value=1, step=1, key=inputs.keyed("ep_n", drawn.n_way))
k = cols[2].number_input("K (shots)", min_value=1, step=1, key=inputs.keyed("ep_k", drawn.k_shot))
q = cols[3].number_input("Q (queries)", min_value=1, step=1, key=inputs.keyed("ep_q", drawn.q_query))
seed = cols[4].number_input("Seed", min_value=0, step=1, key=inputs.keyed("ep_seed", state.episode_seed()))
cols[5].button("New episode", key="ep_new", on_click=inputs.nudge, args=("ep_seed", 1), icon=":material/casino:", type="primary")
classes = splits.classes(split)
st.caption(f"{image_set.n_classes} classes in {choice.dataset}; the {split} split has {len(classes)}.")

if state.episode() is None or (split, n, k, q, seed) != (state.split(), drawn.n_way, drawn.k_shot, drawn.q_query, state.episode_seed()):
    with errors.reported(stop=False):  # a bad N/K/Q keeps the previous episode on screen
        shape = EpisodeShape(n, k, q)
        spec = draw_spec(image_set, classes, shape, seed)
        state.set_split(split)
        state.set_shape(shape)
        state.set_episode_seed(seed)
        state.set_episode(spec)
        st.rerun()  # so the sidebar shows the new episode
spec = state.episode()
if spec is None:
    st.stop()

with st.expander("Pick classes by hand"):
    pickable = classes
    if image_set.class_groups:
        groups = sorted({image_set.class_groups[c] for c in classes})
        group = st.selectbox("Alphabet", ["all", *groups], key="ep_group")
        pickable = [c for c in classes if group == "all" or image_set.class_groups[c] == group]
    picked = st.multiselect(
        "Classes (type to search)", pickable, format_func=lambda c: episode_view.class_label(image_set, c), key="ep_classes"
    )
    if st.button("Use these classes", key="ep_use_classes", disabled=len(picked) < 2, help="pick at least 2 classes"):
        with errors.reported(stop=False):
            state.set_episode(draw_spec(image_set, classes, state.shape(), seed, fixed_classes=picked))
            st.rerun()

episode_view.episode_grid(image_set, spec)

with st.expander("Swap one image"):
    if (swapped := episode_view.slot_swapper(image_set, spec)) is not None:
        state.set_episode(swapped)
        st.rerun()

st.subheader("Save this episode")
saved_as = [n for n, s in state.saved_episodes().items() if s == spec]
st.caption(
    "This episode is the current one: the Embeddings and Distances pages show it. "
    + (f"It is saved as “{saved_as[0]}”." if saved_as else "Save it by name to come back to it.")
)
left, right = st.columns(2, vertical_alignment="bottom")
name = left.text_input("Name", key="ep_name", placeholder="e.g. hard-5-way")
if right.button("Save episode", key="ep_save", icon=":material/bookmark_add:"):
    if name.strip():
        state.save_episode(name.strip(), spec)
        st.rerun()
    st.error("Type a name for the episode first.")
if saved := state.saved_episodes_here():
    left, right = st.columns(2, vertical_alignment="bottom")
    chosen = left.selectbox("Saved episodes", list(saved), key="ep_saved")
    if right.button("Make it current", key="ep_load", icon=":material/bookmark:"):
        state.set_episode(saved[chosen])
        st.rerun()
if hidden := len(state.saved_episodes()) - len(saved):
    st.caption(f"{hidden} saved episode{'s' * (hidden > 1)} of other datasets are hidden; choose that dataset above to use them.")
