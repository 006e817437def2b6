"""MetaScope: the Streamlit entry point. `streamlit run dashboard/app.py`."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # works from a plain checkout too, not only after `pip install -e .`
    sys.path.insert(0, str(ROOT))

from dashboard.errors import page_failed  # noqa: E402
from dashboard.preload import preload_engine  # noqa: E402
from dashboard.state import init_state  # noqa: E402

PAGES = [
    ("home.py", "Home", ":material/home:"),
    ("episodes.py", "Episodes", ":material/grid_view:"),
    ("train.py", "Train", ":material/model_training:"),
    ("embeddings.py", "Embeddings", ":material/scatter_plot:"),
    ("distances.py", "Distances", ":material/grid_on:"),
    ("tasks.py", "Tasks", ":material/hub:"),
    ("runs.py", "Runs", ":material/folder_open:"),
    ("learn.py", "Learn", ":material/school:"),
]


def main() -> None:
    st.set_page_config(page_title="MetaScope", page_icon=":material/scatter_plot:", layout="wide")
    init_state()
    pages = [
        st.Page(str(ROOT / "pages" / file), title=title, icon=icon, default=(file == "home.py"))
        for file, title, icon in PAGES
        if (ROOT / "pages" / file).exists()
    ]
    page = st.navigation(pages)
    try:
        page.run()
    except Exception as exc:  # the one boundary of every page (st.stop and reruns are not Exceptions: they pass)
        page_failed(exc, page.title)
    preload_engine()  # after the page is drawn: Home needs no torch, the next page will


main()
