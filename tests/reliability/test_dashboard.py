"""Catalogue, kind 5: the dashboard serves its user only.

It listens on loopback unless told otherwise (checked on a real server), reads data only under the roots its
operator configured (a link's dir= or the Data folder box naming anything else is refused without a word about
that folder), takes only plain run ids from links, deletes runs only where the operator allows it, and shows a
visitor no traceback (the page's error is logged on the server).
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.errors import UserError
from core.store import CheckpointError, RunDir, RunStore
from dashboard import access
from dashboard.__main__ import network_warning, served_address
from dashboard.share import decode
from dashboard.state import DataChoice
from tests.dashboard.conftest import APP, page_file
from tests.reliability.conftest import ROOT, GoodRun

SECRETS = ("alpha-secret", "beta-secret")


@pytest.fixture
def roots(tmp_path: Path, monkeypatch) -> Path:
    """One configured data root (tmp_path/data) and, beside it, a folder that is not one (tmp_path/private)."""
    (tmp_path / "data" / "mine").mkdir(parents=True)
    for name in SECRETS:
        (tmp_path / "private" / name).mkdir(parents=True)
    monkeypatch.setenv(access.DATA_ROOTS_ENV, str(tmp_path / "data"))
    monkeypatch.setenv("METASCOPE_OMNIGLOT", str(tmp_path / "omniglot"))
    return tmp_path


@pytest.mark.parametrize(
    "folder",
    ["/etc", "/", "{tmp}/private", "{tmp}/data/../private", "{tmp}/data2", "private", "~", "{tmp}/data/mine\0", "{tmp}/missing"],
    ids=["etc", "root", "beside", "dot-dot", "same-prefix", "relative", "home", "nul", "missing"],
)
def test_a_folder_outside_the_data_roots_is_refused_without_a_word_about_it(roots: Path, folder: str):
    with pytest.raises(UserError) as refused:
        access.check_data_dir(folder.format(tmp=roots))
    assert str(refused.value) == access.REFUSED and refused.value.setting == "data_dir"  # the same words for any folder


@pytest.mark.parametrize(
    "folder", ["{tmp}/data", "{tmp}/data/mine", "{tmp}/omniglot/zips", "{cache}/x"], ids=["root", "inside", "omniglot", "cache"]
)
def test_a_folder_inside_the_data_roots_is_served(roots: Path, folder: str):
    from core.data.base import cache_dir

    text = folder.format(tmp=roots, cache=cache_dir())
    assert access.check_data_dir(text) == os.path.abspath(text)


def test_a_link_naming_a_folder_outside_the_roots_falls_back_to_the_built_in_data(roots: Path):
    from dashboard.lessons import SCHEMAS

    view, problems = decode({"lesson": "episodes", "data": "folder", "dir": str(roots / "private")}, SCHEMAS)
    assert view.episode.dataset == "glyphs" and view.episode.data_dir is None
    assert problems == ["dir: this dashboard does not serve that folder; using glyphs"]
    inside, problems = decode({"lesson": "episodes", "data": "folder", "dir": str(roots / "data" / "mine")}, SCHEMAS)
    assert inside.episode.data_dir == str(roots / "data" / "mine") and problems == []


@pytest.mark.parametrize(
    "run_id", ["..", ".", ".hidden", "../good", "a/b", "x" * 300, ""], ids=["dotdot", "dot", "hidden", "up", "slash", "long", "empty"]
)
def test_a_link_run_id_that_is_not_one_is_refused(run_id: str, good_run: GoodRun):
    from dashboard.lessons import SCHEMAS

    view, problems = decode({"lesson": "protonet", "learner": run_id}, SCHEMAS)
    assert view.learner is None and len(problems) == 1
    with pytest.raises(CheckpointError):  # nor can the store be led out of its folder
        RunStore(good_run.path / "checkpoints").get(run_id)


def open_page(page: str, tmp_path: Path, query: dict[str, str] | None = None, **session: object) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["ms_runs_dir"] = str(session.pop("runs", tmp_path / "runs"))
    for key, value in session.items():
        at.session_state[key] = value
    at.query_params.update(query or {})
    at.run()
    at.switch_page(page_file(page)).run()
    return at


def page_text(at: AppTest) -> str:
    return json.dumps([str(e.value) for kind in ("error", "warning", "info", "markdown", "caption", "text_input") for e in at.get(kind)])


def test_the_data_folder_box_refuses_a_folder_outside_the_roots(roots: Path, tmp_path: Path):
    at = open_page("episodes", tmp_path, ms_data=DataChoice("folder", str(roots / "private")))
    assert not at.exception
    assert any(access.REFUSED in e.value for e in at.error)
    assert not any(name in page_text(at) for name in SECRETS)  # nothing of the folder is listed


def test_a_shared_link_to_a_folder_outside_the_roots_lists_nothing(roots: Path, tmp_path: Path):
    at = open_page("learn", tmp_path, {"lesson": "episodes", "data": "folder", "dir": str(roots / "private")})
    assert not at.exception
    assert "does not serve that folder" in page_text(at) and not any(name in page_text(at) for name in SECRETS)
    assert at.session_state["ms_data"] == DataChoice()


def damaged_runs(good_run: GoodRun, root: Path) -> Path:
    """A runs folder: the good run, and copies with a damaged run.json, metrics, config and a dead 'running' status."""
    runs = root / "runs"
    for name, file, content in [
        ("a-run-json-list", "run.json", b"[]"),
        ("b-created-text", "run.json", b'{"status": "finished", "created": "yesterday", "final_val_acc": "0.9", "parameters": "x"}'),
        ("c-metrics-bytes", "metrics.jsonl", b'{"kind": "train", "step": 1, "loss": 1.0}\n\xff\xfe\n[1]\n'),
        ("d-config-utf8", "config.json", b'{"learner": "\xff"}'),
        ("e-dead", "run.json", b'{"status": "running", "created": 1.0}'),
    ]:
        copy = Path(shutil.copytree(good_run.path, runs / name))
        (copy / file).write_bytes(content)
    shutil.copytree(good_run.path, runs / good_run.path.name)
    return runs


def test_the_runs_page_shows_damaged_and_dead_runs_truthfully(good_run: GoodRun, tmp_path: Path):
    at = open_page("runs", tmp_path, runs=damaged_runs(good_run, tmp_path))
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    table = at.dataframe[0].value.set_index("run")
    assert len(table) == 6
    assert table.loc["e-dead", "status"] == "interrupted" and table.loc[good_run.path.name, "status"] == "finished"
    assert "config.json" in table.loc["d-config-utf8", "problem"]
    for run in table.index:  # each run's own panel draws too
        at.selectbox(key="rn_pick").set_value(run).run()
        assert not at.exception and not any("Something went wrong" in e.value for e in at.error), (run, at.exception)


def test_deleting_runs_is_off_unless_the_operator_allows_it(good_run: GoodRun, tmp_path: Path, monkeypatch):
    runs = tmp_path / "runs"
    shutil.copytree(good_run.path, runs / good_run.path.name)
    monkeypatch.delenv(access.ALLOW_DELETE_ENV, raising=False)
    at = open_page("runs", tmp_path, runs=runs)
    assert not at.exception and not [b for b in at.button if b.key == "rn_delete"]
    assert any(access.ALLOW_DELETE_ENV in c.value for c in at.caption)
    monkeypatch.setenv(access.ALLOW_DELETE_ENV, "1")
    at.run()
    assert [b for b in at.button if b.key == "rn_delete"]


def test_a_page_that_fails_shows_one_line_and_logs_the_traceback_on_the_server(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("METASCOPE_LOGS", str(tmp_path / "logs"))
    at = open_page("episodes", tmp_path, ms_shape="not a shape")  # a state no page expects: a bug's stand-in
    assert not at.exception  # Streamlit would show the traceback to the visitor
    assert any("Something went wrong on this page; it was logged on the server" in e.value for e in at.error)
    logs = list((tmp_path / "logs").glob("*.log"))
    assert len(logs) == 1 and "Traceback" in logs[0].read_text() and "AttributeError" in logs[0].read_text()


def test_streamlit_itself_shows_no_error_details_and_listens_on_loopback():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"
    assert config["server"]["address"] == "127.0.0.1"


def test_serving_on_the_network_is_one_setting_that_warns():
    assert served_address([], {}) == "127.0.0.1" and network_warning("127.0.0.1") is None
    assert served_address(["--server.port", "9", "--server.address", "0.0.0.0"], {}) == "0.0.0.0"
    assert (
        served_address(["--server.address=::"], {}) == "::" and served_address([], {"STREAMLIT_SERVER_ADDRESS": "10.0.0.5"}) == "10.0.0.5"
    )
    assert "anyone who can reach this machine" in network_warning("0.0.0.0")


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the TCP sockets listening on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        for line in path.read_text().splitlines()[1:] if path.exists() else []:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))  # each 32-bit word is little-endian
                found.add(str(ipaddress.ip_address(words)))
    return found


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory):
    """`python -m dashboard` started as a user would, with no address given; its data roots: one temporary folder."""
    from tests.browser.test_journey import dashboard_server

    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net/tcp to read the listening address from")
    tmp = tmp_path_factory.mktemp("served")
    for name in SECRETS:
        (tmp / "private" / name).mkdir(parents=True)
    (tmp / "data").mkdir()
    with dashboard_server(tmp, {access.DATA_ROOTS_ENV: str(tmp / "data")}, address=None) as url:
        yield int(url.rsplit(":", 1)[1]), tmp


def test_a_started_server_listens_on_loopback_only(plain_server):
    port, tmp = plain_server
    assert listening_addresses(port) == {"127.0.0.1"}, listening_addresses(port)
    assert "warning" not in (tmp / "server.log").read_text()


@pytest.mark.browser
def test_a_real_browser_following_a_link_to_a_private_folder_sees_nothing_of_it(plain_server):
    from tests.browser.test_journey import CHROMIUM, CHROMIUM_ARGS, STEP_TIMEOUT_S, main_text, settle

    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    port, tmp = plain_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page()
            tab.set_default_timeout(STEP_TIMEOUT_S * 1000)
            tab.goto(f"http://127.0.0.1:{port}/learn?lesson=episodes&data=folder&dir={tmp / 'private'}")
            settle(tab)
            tab.get_by_text("does not serve that folder").first.wait_for()
            text = main_text(tab)
            assert not any(name in text for name in SECRETS) and "Traceback" not in text
        finally:
            browser.close()


def test_a_run_folder_named_by_a_link_cannot_be_a_path(good_run: GoodRun):
    store = RunStore(good_run.runs_dir)
    assert store.get(good_run.path.name).path == good_run.path
    for run_id in ("..", f"../{good_run.runs_dir.name}/{good_run.path.name}", "/etc"):
        with pytest.raises(CheckpointError, match="is not a run id"):
            store.get(run_id)
    assert RunDir(good_run.path).status() == "finished"
