"""MetaScope: the Streamlit entry point. `streamlit run dashboard/app.py`."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # works from a plain checkout too, not only after `pip install -e .`
    sys.path.insert(0, str(ROOT))

from dashboard.errors import page_failed  # noqa: E402
from dashboard.i18n import N_, language_from_url, language_to_url, tr  # noqa: E402
from dashboard.preload import preload_engine  # noqa: E402
from dashboard.state import init_state  # noqa: E402

PAGES = [
    ("home.py", N_("Home"), ":material/home:"),
    ("episodes.py", N_("Episodes"), ":material/grid_view:"),
    ("train.py", N_("Train"), ":material/model_training:"),
    ("embeddings.py", N_("Embeddings"), ":material/scatter_plot:"),
    ("distances.py", N_("Distances"), ":material/grid_on:"),
    ("compare.py", N_("Every learner"), ":material/compare:"),
    ("tasks.py", N_("Tasks"), ":material/hub:"),
    ("runs.py", N_("Runs"), ":material/folder_open:"),
    ("learn.py", N_("Learn"), ":material/school:"),
]


def main() -> None:
    st.set_page_config(page_title="MetaScope", page_icon=":material/scatter_plot:", layout="wide")
    init_state()
    language_from_url()  # before the navigation: its titles are in the link's language
    pages = [
        st.Page(str(ROOT / "pages" / file), title=tr(title), icon=icon, default=(file == "home.py"))
        for file, title, icon in PAGES
        if (ROOT / "pages" / file).exists()
    ]
    page = st.navigation(pages)
    if page.url_path != "learn":  # the Learn page writes its whole link, ?lang= included
        language_to_url()
    try:
        page.run()
    except Exception as exc:  # the one boundary of every page (st.stop and reruns are not Exceptions: they pass)
        page_failed(exc, page.title)
    preload_engine()  # after the page is drawn: Home needs no torch, the next page will


main()
