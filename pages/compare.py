"""Every learner: the current episode through each of the visitor's learners and the pixel baseline; shareable by link."""

import contextlib

import streamlit as st

from dashboard import compare_view, errors, loaders, sidebar, state
from dashboard.i18n import tr

problems = compare_view.follow_link(st.query_params.to_dict())  # a new link wins over the session's last view
with contextlib.suppress(*errors.USER_ERRORS):  # reported below, where the page loads its data
    loaders.current_episode(state.data_choice())  # drawn before the sidebar, so the sidebar names it
sidebar.sidebar()
st.title(tr("One episode, every learner"))
st.caption(tr(
    "The current episode through each of your trained learners and an untrained baseline: who gets which query right, "
    "where they disagree, and how the MAML family's answers change with each inner step. Change the episode on the Episodes page."
))  # fmt: skip
for problem in problems:
    st.warning(tr("From the link: {problem}", problem=problem), icon=":material/link_off:")

choice = state.data_choice()
with errors.reported():
    image_set = loaders.image_set(choice)
    spec = loaders.current_episode(choice)
refs, names = compare_view.choose_learners(image_set)
if not refs:
    none = tr("None of your trained runs is chosen (or none takes these images): only the baseline is shown. Train one on the Train page.")
    st.info(none, icon=":material/info:")
with errors.reported():
    result = loaders.comparison(refs, names, choice, spec)

st.subheader(tr("Accuracy on this episode"))
compare_view.accuracy_table(result, compare_view.kinds_of(refs))
st.subheader(tr("Each query, each learner"))
compare_view.prediction_table(result, image_set, spec)
compare_view.inner_loops(result)

url = compare_view.write_link(compare_view.link_query())
with st.expander(tr("Share this view"), icon=":material/share:"):
    st.caption(tr("Anyone who opens this link on this server sees this episode through the same learners, in this language."))
    st.code(url, language=None, wrap_lines=True)
