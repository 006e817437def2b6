"""Links: a lesson's view <-> query parameters (pure functions), and what a bad link falls back to."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from core.config import EpisodeShape
from core.episodes import EpisodeSpec
from dashboard.share import EpisodeLink, LinkSchema, Param, SharedView, canonical, decode, decode_spec, encode, encode_spec, link

METRIC = LinkSchema(
    {"loss": Param("contrastive", choices=("contrastive", "triplet")), "margin": Param(1.0, low=0.05, high=5.0), "normalize": Param(False)}
)
PROTO = LinkSchema({"query": Param(0, low=0, high=100)}, episode=True)
LESSONS = {"episodes": LinkSchema({}, episode=True), "metric": METRIC, "protonet": PROTO}
SPEC = EpisodeSpec((3, 9, 41), ((10, 11), (90, 91), (400, 401)), ((12,), (92,), (402,)))


def test_a_view_survives_the_round_trip_through_the_url():
    view = SharedView("metric", "zh", {"loss": "triplet", "margin": 0.5, "normalize": True}, frozenset({"margin", "loss"}))
    query = encode(view, METRIC)
    assert query == {"lesson": "metric", "lang": "zh", "loss": "triplet", "margin": "0.5", "normalize": "1", "hide": "loss,margin"}
    back, problems = decode(query, LESSONS)
    assert problems == [] and back == view


def test_defaults_are_left_out_so_links_stay_short():
    view = SharedView("metric", "en", {"loss": "contrastive", "margin": 1.0, "normalize": False})
    assert encode(view, METRIC) == {"lesson": "metric"}
    back, _ = decode({"lesson": "metric"}, LESSONS)
    assert back.params == {"loss": "contrastive", "margin": 1.0, "normalize": False} and back.lang == "en" and not back.hide


def test_an_episode_lesson_carries_dataset_seed_shape_and_a_hand_made_episode():
    episode = EpisodeLink("omniglot", "/data/omniglot", "val", 7, EpisodeShape(3, 2, 1), SPEC)
    view = SharedView("protonet", "en", {"query": 4}, frozenset({"seed"}), episode, "20260101-protonet-glyphs")
    query = encode(view, PROTO)
    assert query["data"] == "omniglot" and query["dir"] == "/data/omniglot" and query["split"] == "val"
    assert (query["seed"], query["n"], query["k"], query["q"]) == ("7", "3", "2", "1")
    assert query["ep"] == "3.9.41_10.11-90.91-400.401_12-92-402" and query["learner"] == "20260101-protonet-glyphs"
    back, problems = decode(query, LESSONS)
    assert problems == [] and back == view


def test_a_seeded_episode_needs_no_ep_and_the_test_split_is_the_default():
    view = SharedView("episodes", episode=EpisodeLink(seed=2, shape=EpisodeShape(5, 1, 5)))
    query = encode(view, LESSONS["episodes"])
    assert query == {"lesson": "episodes", "data": "glyphs", "seed": "2", "n": "5", "k": "1", "q": "5"}
    assert decode(query, LESSONS)[0].episode == EpisodeLink(seed=2)


def test_a_link_without_episode_fields_keeps_the_readers_episode():
    view, problems = decode({"lesson": "protonet", "query": "2"}, LESSONS)
    assert view.episode is None and view.params == {"query": 2} and problems == []
    assert decode({"lesson": "protonet", "n": "3"}, LESSONS)[0].episode == EpisodeLink(shape=EpisodeShape(3, 1, 5))


def test_episode_fields_do_not_travel_with_a_lesson_that_has_no_episode():
    view = SharedView("metric", episode=EpisodeLink(seed=5), learner="some-run")
    assert "seed" not in encode(view, METRIC) and "learner" not in encode(view, METRIC)
    back, problems = decode({"lesson": "metric", "seed": "5"}, LESSONS)
    assert back.episode is None and problems == ["'seed' is not a setting of lesson 'metric'; ignored"]


def test_spec_codec_round_trips_and_rejects_garbage():
    assert decode_spec(encode_spec(SPEC)) == SPEC
    for bad in ("", "1.2_3", "a.b_1-2_3-4", "1.2_3.4_5"):
        with pytest.raises(ValueError):
            decode_spec(bad)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"lesson": "nope"}, "lesson 'nope' does not exist; showing 'episodes'"),
        ({"lesson": "metric", "lang": "fr"}, "lang 'fr' is not available"),
        ({"lesson": "metric", "margin": "big"}, "margin: 'big' is not a float; using 1"),
        ({"lesson": "metric", "margin": "nan"}, "margin: 'nan' is not a finite number"),
        ({"lesson": "metric", "margin": "9"}, "margin: 9 is outside 0.05..5.0; using 1"),
        ({"lesson": "metric", "loss": "hinge"}, "loss: 'hinge' is not one of contrastive, triplet"),
        ({"lesson": "metric", "normalize": "maybe"}, "normalize: 'maybe' is not on/off"),
        ({"lesson": "metric", "hide": "margin,seed"}, "hide: seed cannot be hidden in this lesson"),
        ({"lesson": "protonet", "n": "1"}, "an episode needs at least 2 classes (got 1)"),
        ({"lesson": "protonet", "seed": "-3"}, "seed: '-3' is not a whole number; using 0"),
        ({"lesson": "protonet", "data": "mnist"}, "data 'mnist' is not a dataset; using glyphs"),
        ({"lesson": "protonet", "split": "dev"}, "split 'dev' does not exist; using test"),
        ({"lesson": "protonet", "ep": "1_2"}, "ep: '1_2' is not an episode; drawing the episode from the seed"),
        ({"lesson": "protonet", "learner": "../../etc"}, "learner '../../etc' is not a run id"),
        ({"lesson": "protonet", "query": "1.5"}, "query: '1.5' is not an int"),
    ],
)
def test_a_bad_value_falls_back_to_its_default_and_says_why(query, message):
    view, problems = decode(query, LESSONS)
    assert view is not None
    assert len(problems) == 1 and message in problems[0], problems


def test_bad_values_keep_the_rest_of_the_link():
    view, problems = decode({"lesson": "metric", "margin": "x", "loss": "triplet", "hide": "loss,margin,seed"}, LESSONS)
    assert view.params["loss"] == "triplet" and view.params["margin"] == 1.0 and view.hide == {"loss", "margin"}
    assert len(problems) == 2


def test_no_lesson_means_no_link_and_a_repeated_key_takes_the_last_value():
    assert decode({}, LESSONS) == (None, [])
    assert decode({"margin": "0.5"}, LESSONS) == (None, [])
    view, _ = decode({"lesson": "metric", "margin": ["0.5", "0.25"]}, LESSONS)
    assert view.params["margin"] == 0.25


def test_canonical_ignores_order_and_link_keeps_the_page_path():
    assert canonical({"a": "1", "b": "2"}) == canonical({"b": "2", "a": "1"}) != canonical({"a": "1"})
    url = link("http://host:8501/learn?old=1", {"lesson": "metric", "hide": "loss,margin", "dir": "/my data"})
    parts = urlsplit(url)
    assert parts.path == "/learn" and "old" not in url and "hide=loss,margin" in url
    assert dict(parse_qsl(parts.query)) == {"lesson": "metric", "hide": "loss,margin", "dir": "/my data"}
