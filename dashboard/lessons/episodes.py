"""Lesson 1: what an N-way K-shot episode is, on a real episode, and why test classes are never trained on."""

from __future__ import annotations

import streamlit as st

from core.config import EpisodeShape
from core.data import SPLIT_NAMES, ClassSplit, ImageSet
from core.episodes import EpisodeSpec
from dashboard import episode_view, loaders, state
from dashboard.charts import lessons as charts
from dashboard.i18n import register
from dashboard.lessons.kit import Context, Lesson, episode_controls, exercise, verdict
from dashboard.share import LinkSchema

TARGET = EpisodeShape(3, 2, 4)  # the exercise's episode: small enough to count by eye

T = register(
    "episodes",
    {
        "title": ("Episodes", "Episode（小样本任务）"),
        "intro": (
            "Few-shot learning is trained and tested on small tasks called **episodes**. An **N-way K-shot** episode picks "
            "**N classes**, gives **K labelled images** of each (the **support set**) and asks the learner to label "
            "**Q query images** of each class (the **query set**) using nothing but the support set. "
            "Below is a real episode drawn from the current dataset: change N, K, Q or the seed and it is drawn again.",
            "小样本学习在称为 **episode** 的小任务上训练和测试。一个 **N-way K-shot** 的 episode 选出 **N 个类别**，"
            "每类给出 **K 张带标签的图片**（**支持集**），要求学习器只依靠支持集，为每类的 **Q 张查询图片**（**查询集**）打上标签。"
            "下面是从当前数据集中抽取的一个真实 episode：改变 N、K、Q 或随机种子，就会重新抽取。",
        ),
        "support": ("Support images (N·K)", "支持集图片（N·K）"),
        "queries": ("Query images (N·Q)", "查询图片（N·Q）"),
        "chance": ("Chance accuracy (1/N)", "随机猜测准确率（1/N）"),
        "split_head": ("Why the test classes are never seen in training", "为什么测试类别在训练中从不出现"),
        "split_text": (
            "MetaScope splits the **classes**, not the images, of {dataset} into meta-train, meta-validation and meta-test. "
            "A learner is trained on episodes of the train classes only and scored on episodes of the test classes, "
            "so its score measures what few-shot learning promises: learning a **new** class from K examples. "
            "If a test class had been seen in training, the learner could simply remember it.",
            "MetaScope 划分的是 {dataset} 的**类别**而不是图片：分为元训练、元验证和元测试三部分。"
            "学习器只在训练类别的 episode 上训练，在测试类别的 episode 上评估，"
            "因此得分衡量的正是小样本学习的承诺：从 K 个样本中学会一个**新**类别。"
            "如果某个测试类别在训练中出现过，学习器只需把它记住就行了。",
        ),
        "classes": ("Classes per split", "各划分的类别数"),
        "images": ("Images per split", "各划分的图片数"),
        "overlap": ("Classes shared by two splits", "两个划分之间共有的类别数"),
        "episode_split": (
            "This episode's {n} classes all come from the **{split}** split.",
            "这个 episode 的 {n} 个类别全部来自 **{split}** 划分。",
        ),
        "task": (
            "Turn the episode above into a **{n}-way {k}-shot** episode with **{q} queries per class**, "
            "then count: how many images does it hold in all, support and queries together?",
            "把上面的 episode 改成 **{n}-way {k}-shot**、**每类 {q} 个查询**，然后数一数：支持集和查询集加起来一共有多少张图片？",
        ),
        "answer": ("Images in the episode", "episode 中的图片总数"),
        "wrong_shape": (
            "The episode on screen is {n}-way {k}-shot with {q} queries per class.",
            "屏幕上的 episode 现在是 {n}-way {k}-shot，每类 {q} 个查询。",
        ),
        "wrong_count": (
            "The episode is right; the count is not yet. Count the support row and the query row of one class, then multiply.",
            "episode 已经改对了，但数目还不对。先数一个类别的支持图片和查询图片，再乘以类别数。",
        ),
        "success": (
            "Right: {n} × {k} = {support} support images + {n} × {q} = {query} queries = {total} images.",
            "正确：{n} × {k} = {support} 张支持图片 + {n} × {q} = {query} 张查询图片 = 共 {total} 张。",
        ),
    },
)


def split_overlap(split: ClassSplit) -> int:
    """Classes that appear in more than one split (0 by construction; shown, not assumed)."""
    parts = [set(split.classes(name)) for name in SPLIT_NAMES]
    return sum(len(a & b) for i, a in enumerate(parts) for b in parts[i + 1 :])


def solved(spec: EpisodeSpec, answer: int) -> bool:
    """The exercise: the episode has the target shape and `answer` is its image count."""
    shape = (len(spec.class_ids), len(spec.support[0]), len(spec.query[0]))
    return shape == (TARGET.n_way, TARGET.k_shot, TARGET.q_query) and answer == sum(map(len, spec.support + spec.query))


def split_section(image_set: ImageSet, spec: EpisodeSpec) -> None:
    split = loaders.class_split(state.data_choice())
    st.subheader(T("split_head"))
    st.markdown(T("split_text", dataset=image_set.name))
    counts = image_set.class_counts()
    classes = [len(split.classes(s)) for s in SPLIT_NAMES]
    images = [int(counts[list(split.classes(s))].sum()) for s in SPLIT_NAMES]
    left, right = st.columns([3, 1])
    left.plotly_chart(charts.split_counts(SPLIT_NAMES, classes, images, (T("classes"), T("images"))), key="ln_episodes_splits")
    right.metric(T("overlap"), split_overlap(split))
    if set(spec.class_ids) <= set(split.classes(state.split())):
        right.caption(T("episode_split", n=len(spec.class_ids), split=state.split()))


def render(ctx: Context) -> None:
    st.markdown(T("intro"))
    image_set, spec, _ = episode_controls(ctx)
    n, k, q = len(spec.class_ids), len(spec.support[0]), len(spec.query[0])
    cols = st.columns(3)
    cols[0].metric(T("support"), n * k)
    cols[1].metric(T("queries"), n * q)
    cols[2].metric(T("chance"), f"{100 / n:.0f}%")
    episode_view.episode_grid(image_set, spec)
    split_section(image_set, spec)
    with exercise(T("task", n=TARGET.n_way, k=TARGET.k_shot, q=TARGET.q_query)):
        answer = st.number_input(T("answer"), min_value=0, step=1, value=None, key="ln_episodes_answer")
        if (n, k, q) != (TARGET.n_way, TARGET.k_shot, TARGET.q_query):
            progress = T("wrong_shape", n=n, k=k, q=q)
        else:
            progress = None if answer is None else T("wrong_count")
        success = T("success", n=n, k=k, q=q, support=n * k, query=n * q, total=n * (k + q))
        verdict(solved(spec, answer or 0), success, progress)


LESSON = Lesson("episodes", lambda: T("title"), LinkSchema({}, episode=True), render)
