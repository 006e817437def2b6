"""A lesson's view in the URL: pure encode / decode between SharedView and query parameters, and a copy-link box.

?lesson=metric&loss=triplet&margin=0.5&hide=margin,loss opens the metric lesson with the triplet
loss at margin 0.5, both controls fixed. Episode lessons also carry the dataset, split, seed and
N/K/Q (and `ep=` for a hand-made episode that no seed draws), and `learner=` a run id. Only
settings that differ from their defaults are written, so links stay short. Decoding never
raises: a bad value falls back to its default with a message saying what was wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import streamlit as st

from core.config import ConfigError, EpisodeShape
from core.data import DATASETS, SPLIT_NAMES
from core.episodes import EpisodeSpec
from core.errors import UserError
from core.store import is_run_id
from dashboard.access import check_data_dir
from dashboard.i18n import register

LANGS = ("en", "zh")
EPISODE_CONTROLS = ("seed", "n", "k", "q")
EPISODE_FIELDS = ("data", "dir", "split", "ep", *EPISODE_CONTROLS)  # hide= may name these besides a lesson's own settings
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class Param:
    """A lesson setting a link can carry: its default, and its allowed choices or range."""

    default: Any
    choices: tuple = ()
    low: float | None = None
    high: float | None = None

    def parse(self, raw: str) -> Any:
        """The value of `raw` as this setting's type; ValueError saying what is allowed."""
        kind = type(self.default)
        if kind is bool:
            if raw.lower() not in TRUE + FALSE:
                raise ValueError(f"'{raw}' is not on/off; use 1 or 0")
            return raw.lower() in TRUE
        try:
            value = kind(raw)
        except ValueError:
            raise ValueError(f"'{raw}' is not a{'n' if kind is int else ''} {kind.__name__}") from None
        if kind is float and not math.isfinite(value):
            raise ValueError(f"'{raw}' is not a finite number")
        if self.choices and value not in self.choices:
            raise ValueError(f"'{raw}' is not one of {', '.join(map(str, self.choices))}")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise ValueError(f"{raw} is outside {self.low}..{self.high}")
        return value

    def format(self, value: Any) -> str:
        if isinstance(value, bool):
            return "1" if value else "0"
        return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class LinkSchema:
    """What a lesson's link carries: its settings, and whether the episode travels with it."""

    params: Mapping[str, Param]
    episode: bool = False


@dataclass(frozen=True)
class EpisodeLink:
    """The episode a lesson shows: drawn from `split` with `seed` and `shape`, or exactly `spec` when hand-made."""

    dataset: str = "glyphs"
    data_dir: str | None = None
    split: str = "test"
    seed: int = 0
    shape: EpisodeShape = field(default_factory=lambda: EpisodeShape(5, 1, 5))
    spec: EpisodeSpec | None = None


@dataclass(frozen=True)
class SharedView:
    """Everything a link restores. `params` holds every setting of the lesson (defaults filled in)."""

    lesson: str
    lang: str = "en"
    params: Mapping[str, Any] = field(default_factory=dict)
    hide: frozenset[str] = frozenset()
    episode: EpisodeLink | None = None
    learner: str | None = None  # a run id in the runs folder; None: untrained


def encode_spec(spec: EpisodeSpec) -> str:
    """'3.9_10-90_11.12-91.92': class ids, then support and query indices per class (URL-safe, no escaping)."""
    rows = lambda part: "-".join(".".join(map(str, r)) for r in part)
    return "_".join((".".join(map(str, spec.class_ids)), rows(spec.support), rows(spec.query)))


def decode_spec(text: str) -> EpisodeSpec:
    """Inverse of encode_spec; ValueError when `text` is not one."""
    try:
        classes, support, query = text.split("_")
        rows = lambda part: tuple(tuple(int(i) for i in r.split(".")) for r in part.split("-"))
        spec = EpisodeSpec(tuple(int(c) for c in classes.split(".")), rows(support), rows(query))
    except ValueError:
        raise ValueError(f"'{text[:40]}' is not an episode") from None
    if not len(spec.class_ids) == len(spec.support) == len(spec.query):
        raise ValueError("the episode's classes, support rows and query rows differ in number")
    return spec


def encode(view: SharedView, schema: LinkSchema) -> dict[str, str]:
    """The query parameters of `view`: what differs from the defaults, plus lesson and episode."""
    query = {"lesson": view.lesson}
    if view.lang != "en":
        query["lang"] = view.lang
    if view.episode is not None and schema.episode:
        query.update(episode_query(view.episode))
    if view.learner and schema.episode:
        query["learner"] = view.learner
    for name, param in schema.params.items():
        value = view.params.get(name, param.default)
        if value != param.default:
            query[name] = param.format(value)
    if view.hide:
        query["hide"] = ",".join(sorted(view.hide))
    return query


def episode_query(ep: EpisodeLink) -> dict[str, str]:
    """The query parameters of an episode: dataset (and folder), split, seed, N/K/Q, and the episode itself when hand-made."""
    query = {"data": ep.dataset}
    if ep.data_dir:
        query["dir"] = ep.data_dir
    if ep.split != "test":
        query["split"] = ep.split
    query.update(seed=str(ep.seed), n=str(ep.shape.n_way), k=str(ep.shape.k_shot), q=str(ep.shape.q_query))
    if ep.spec is not None:
        query["ep"] = encode_spec(ep.spec)
    return query


def decode(query: Mapping[str, str | Sequence[str]], lessons: Mapping[str, LinkSchema]) -> tuple[SharedView | None, list[str]]:
    """The view a link describes, and a message for each value that was ignored. None without lesson=."""
    raw = {k: v if isinstance(v, str) else (list(v)[-1] if v else "") for k, v in query.items()}  # a repeated key: the last wins
    if "lesson" not in raw:
        return None, []
    problems: list[str] = []
    lesson = raw.pop("lesson")
    if lesson not in lessons:
        problems.append(f"lesson '{lesson}' does not exist; showing '{next(iter(lessons))}' (lessons: {', '.join(lessons)})")
        lesson = next(iter(lessons))
    schema = lessons[lesson]
    lang = raw.pop("lang", "en")
    if lang not in LANGS:
        problems.append(f"lang '{lang}' is not available; use en or zh")
        lang = "en"
    params = {}
    for name, param in schema.params.items():
        params[name] = param.default
        if name in raw:
            try:
                params[name] = param.parse(raw.pop(name))
            except ValueError as exc:
                problems.append(f"{name}: {exc}; using {param.format(param.default)}")
    # a link naming no episode field (a hand-written ?lesson=protonet) keeps the reader's own episode
    named = schema.episode and any(name in raw for name in EPISODE_FIELDS)
    episode = _episode(raw, problems) if named else None
    learner = raw.pop("learner", None) if schema.episode else None
    if learner is not None and not is_run_id(learner):
        problems.append(f"learner '{learner[:40]}' is not a run id; using an untrained learner")
        learner = None
    hide = {h for h in raw.pop("hide", "").split(",") if h}
    hideable = set(schema.params) | (set(EPISODE_CONTROLS) if schema.episode else set())
    if unknown := hide - hideable:
        problems.append(f"hide: {', '.join(sorted(unknown))} cannot be hidden in this lesson (it has: {', '.join(sorted(hideable))})")
    problems += [f"'{name}' is not a setting of lesson '{lesson}'; ignored" for name in raw]
    return SharedView(lesson, lang, params, frozenset(hide & hideable), episode, learner), problems


def episode_from_query(raw: dict[str, str], problems: list[str]) -> EpisodeLink:
    """The episode a link's parameters describe (they are taken out of `raw`); each bad one is reported in `problems`."""
    return _episode(raw, problems)


def _episode(raw: dict[str, str], problems: list[str]) -> EpisodeLink:
    """The episode fields of `raw` (taken out of it), each bad one reported and replaced by its default."""
    base = EpisodeLink()
    dataset = raw.pop("data", base.dataset)
    if dataset not in DATASETS:
        problems.append(f"data '{dataset}' is not a dataset; using {base.dataset} (datasets: {', '.join(DATASETS)})")
        dataset = base.dataset
    data_dir = raw.pop("dir", None) or None
    if data_dir is not None and dataset != "glyphs":
        try:
            data_dir = check_data_dir(data_dir)
        except UserError:  # a link may name any folder: the server reads only its data roots, and says no more
            problems.append(f"dir: this dashboard does not serve that folder; using {base.dataset}")
            dataset, data_dir = base.dataset, None
    split = raw.pop("split", base.split)
    if split not in SPLIT_NAMES:
        problems.append(f"split '{split}' does not exist; using {base.split}")
        split = base.split
    numbers = {}
    for name, default in (("seed", base.seed), ("n", base.shape.n_way), ("k", base.shape.k_shot), ("q", base.shape.q_query)):
        text = raw.pop(name, str(default))
        numbers[name] = int(text) if text.isdigit() else default
        if not text.isdigit():
            problems.append(f"{name}: '{text}' is not a whole number; using {default}")
    try:
        shape = EpisodeShape(numbers["n"], numbers["k"], numbers["q"])
    except ConfigError as exc:
        problems.append(f"{exc}; using {base.shape.n_way}-way {base.shape.k_shot}-shot")
        shape = base.shape
    spec = None
    if "ep" in raw:
        try:
            spec = decode_spec(raw.pop("ep"))
        except ValueError as exc:
            problems.append(f"ep: {exc}; drawing the episode from the seed instead")
    return EpisodeLink(dataset, data_dir if dataset != "glyphs" else None, split, numbers["seed"], shape, spec)


def canonical(query: Mapping[str, str]) -> str:
    """One string per set of parameters, whatever their order: for comparing the URL with the state."""
    return urlencode(sorted(query.items()))


def link(base_url: str, query: Mapping[str, str]) -> str:
    """The shareable address: the page's URL with the query parameters."""
    return f"{base_url.split('?')[0]}?{urlencode(dict(query), safe=',')}"


TEXT = register(
    "share",
    {
        "title": ("Share this view", "分享当前视图"),
        "help": (
            "Anyone who opens this link sees this lesson with the same episode and settings. "
            "Hide controls to turn it into a guided exercise: the student sees their values but cannot change them.",
            "打开此链接的人会看到同一课、同一个 episode 和同样的设置。隐藏某些控件即可变成引导练习：学生能看到取值，但不能修改。",
        ),
        "hide": ("Fix and hide these controls in the link", "在链接中固定并隐藏这些控件"),
    },
)


def link_box(query: Mapping[str, str], hideable: Sequence[str], label: Callable[[str], str] = str) -> str:
    """An expander with the link to this view (st.code has a copy button) and a choice of controls to hide; returns the link."""
    with st.expander(TEXT("title"), icon=":material/share:"):
        st.caption(TEXT("help"))
        current = [h for h in query.get("hide", "").split(",") if h in hideable]
        hide = st.multiselect(TEXT("hide"), list(hideable), default=current, format_func=label, key="ln_share_hide")
        shared = {k: v for k, v in query.items() if k != "hide"} | ({"hide": ",".join(sorted(hide))} if hide else {})
        url = link(st.context.url or "", shared)
        st.code(url, language=None, wrap_lines=True)
    return url
