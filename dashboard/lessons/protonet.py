"""Lesson 3: a Prototypical Network step by step on the current episode, with the engine's real numbers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st
import torch
import torch.nn.functional as F

from core.analysis.projection import pca
from core.episodes import Episode
from core.learners.protonet import ProtoNet
from core.store import CheckpointError
from dashboard import episode_view, loaders, state
from dashboard.charts import lessons as charts
from dashboard.i18n import register
from dashboard.lessons.kit import TEXT as KIT
from dashboard.lessons.kit import Context, Lesson, episode_controls, exercise, untrained, verdict
from dashboard.share import LinkSchema, Param

FLAT = 0.05  # softmax outputs closer than this: say why the picture is flat

SCHEMA = LinkSchema({"query": Param(0, low=0, high=10_000)}, episode=True)

T = register(
    "protonet",
    {
        "title": ("Prototypical networks", "原型网络"),
        "intro": (
            "A Prototypical Network classifies a query by its distance to one **prototype** per class. Follow the four steps "
            "on the episode below; every number is what the engine computes.",
            "原型网络根据查询样本到每个类别**原型**的距离来分类。下面在这个 episode 上逐步演示四个步骤，每个数字都是引擎实际算出来的。",
        ),
        "not_protonet": (
            "The current learner is a {method}, not a ProtoNet, so this lesson uses {what}.",
            "当前学习器是 {method}，不是原型网络，因此本课使用{what}。",
        ),
        "s1": ("1 · Embed the support set", "1 · 嵌入支持集"),
        "s1_text": (
            "The network f maps each image to a vector of {d} numbers. The picture shows them projected to 2-D with PCA "
            "(dots: support, crosses: queries, stars: prototypes; the circled query is the one selected below).",
            "网络 f 把每张图片映射成一个 {d} 维向量。右图用 PCA "
            "投影到二维显示（圆点：支持集，叉：查询，星形：原型；圈出的查询就是下面选中的那个）。",
        ),
        "map": ("The episode in the embedding (PCA)", "嵌入空间中的 episode（PCA）"),
        "class": ("class", "类别"),
        "the_query": ("query", "查询"),
        "prototype": ("prototype", "原型"),
        "s2": ("2 · Prototypes are class means", "2 · 原型是类别均值"),
        "s2_text": (
            "Each prototype is the mean of its class's K = {k} support embeddings. Its norm and its distance to its own support points:",
            "每个原型是该类 K = {k} 个支持样本嵌入的平均值。下表给出原型的范数，以及它到本类支持样本的距离：",
        ),
        "s3": ("3 · Distances from each query", "3 · 每个查询到原型的距离"),
        "s3_text": (
            "{metric} distance from every query (rows) to every prototype (columns); the smallest in each row is the prediction.",
            "每个查询（行）到每个原型（列）的{metric}距离；每行最小的那个就是预测结果。",
        ),
        "euclidean": ("Squared Euclidean", "平方欧氏"),
        "cosine": ("Cosine", "余弦"),
        "query": ("Query to follow", "要跟踪的查询"),
        "s4": ("4 · Softmax over minus the distances, and the loss", "4 · 对负距离做 softmax，再计算损失"),
        "probs": ("p(class | query {i})", "p(类别 | 查询 {i})"),
        "loss_text": (
            "The query's true class is **{name}**, so its loss is −log p = **{loss:.4f}**. The episode's loss is the mean over "
            "all {q} queries: **{mean:.4f}** (the engine's own episode_loss gives {engine:.4f}).",
            "该查询的真实类别是 **{name}**，所以它的损失为 −log p = **{loss:.4f}**。episode 的损失是全部 {q} 个查询的平均：**{mean:.4f}**"
            "（引擎自己的 episode_loss 给出 {engine:.4f}）。",
        ),
        "accuracy": ("Queries right", "答对的查询"),
        "flat": (
            "The probabilities are almost equal because every distance is tiny (at most {d:.3g}), so the exp(−d) hardly differ. "
            "Training stretches the embedding until the distances are large enough to make the softmax confident.",
            "这些概率几乎相等，因为所有距离都很小（最大只有 {d:.3g}），各个 exp(−d) 几乎没有差别。"
            "训练会把嵌入空间拉开，直到距离大到足以让 softmax 给出有把握的预测。",
        ),
        "task": (
            "Draw an episode on which the ProtoNet gets **every** query right. Try other seeds, or make the task easier: "
            "fewer classes (N) or more shots (K).",
            "抽取一个原型网络能把**所有**查询都答对的 episode。可以换随机种子，也可以降低任务难度：减少类别数 N，或增加样本数 K。",
        ),
        "progress": ("{right} of {total} queries right on this episode.", "这个 episode 上答对了 {right} / {total} 个查询。"),
        "success": (
            "Every one of the {total} queries is nearest to its own prototype: 100% on this episode.",
            "全部 {total} 个查询都离自己类别的原型最近：本 episode 准确率 100%。",
        ),
    },
)


@dataclass(frozen=True)
class Walkthrough:
    """A ProtoNet's computation on one episode, as plain arrays.

    support_z (s, d), query_z (q, d), prototypes (n, d); coords: PCA of those three stacked (s+q+n, 2);
    distance, probabilities (q, n); query_loss (q,) = -log p(true class); loss: the learner's episode_loss.
    """

    support_z: np.ndarray
    query_z: np.ndarray
    prototypes: np.ndarray
    coords: np.ndarray
    distance: np.ndarray
    probabilities: np.ndarray
    query_loss: np.ndarray
    loss: float

    @property
    def predicted(self) -> np.ndarray:
        return self.distance.argmin(1)


@torch.no_grad()
def walkthrough(learner: ProtoNet, episode: Episode) -> Walkthrough:
    """Run the ProtoNet's own explain(), embed() and episode_loss() on the episode."""
    sx, sy, qx, qy, n = episode.support_x, episode.support_y, episode.query_x, episode.query_y, episode.n_way
    explained = learner.explain(sx, sy, qx, n)
    z = learner.embed(torch.cat([sx, qx]))
    loss, logits = learner.episode_loss(sx, sy, qx, qy, n)
    support_z, query_z, protos = z[: len(sy)].numpy(), z[len(sy) :].numpy(), explained["prototypes"].numpy()
    return Walkthrough(
        support_z,
        query_z,
        protos,
        pca(np.concatenate([support_z, query_z, protos])),
        explained["distance"].numpy(),
        logits.softmax(1).numpy(),
        F.cross_entropy(logits, qy, reduction="none").numpy(),
        float(loss),
    )


def chosen_learner(image_set) -> ProtoNet:
    """The session's learner when it is a ProtoNet that fits the images, else a seeded untrained ProtoNet (with a note)."""
    ref = state.learner_ref()
    c, h, _ = image_set.image_shape
    try:
        current = loaders.learner(ref)
    except CheckpointError as exc:
        st.warning(str(exc))
        current = None
    if isinstance(current, ProtoNet) and (current.in_channels, current.image_size) == (c, h):
        st.caption(KIT("learner_is", what=KIT("run", run=ref.run_dir.rsplit("/", 1)[-1], method="protonet")))
        return current
    what = KIT("untrained", method="ProtoNet")
    st.caption(T("not_protonet", method=ref.method, what=what) if current is not None else KIT("learner_is", what=what))
    return untrained("protonet", c, h)


def render(ctx: Context) -> None:
    st.markdown(T("intro"))
    image_set, spec, episode = episode_controls(ctx)
    learner = chosen_learner(image_set)
    walk = walkthrough(learner, episode)
    names = [episode_view.class_label(image_set, c) for c in spec.class_ids]
    s, q = len(episode.support_y), len(episode.query_y)
    qy = episode.query_y.numpy()
    ctx.clamp("query", q - 1)

    left, right = st.columns([2, 3])
    left.subheader(T("s1"))
    left.markdown(T("s1_text", d=walk.support_z.shape[1]))
    left.subheader(T("s2"))
    left.markdown(T("s2_text", k=episode.k_shot))
    left.latex(r"c_k = \frac{1}{|S_k|} \sum_{(x_i, y_i) \in S_k} f(x_i)")
    spread = [
        float(np.linalg.norm(walk.support_z[episode.support_y.numpy() == k] - p, axis=1).max()) for k, p in enumerate(walk.prototypes)
    ]
    left.dataframe(
        pd.DataFrame({T("class"): names, "‖c_k‖": np.linalg.norm(walk.prototypes, axis=1), "max ‖f(x)−c_k‖": spread}), hide_index=True
    )
    with right:
        selected = int(ctx.control("query", st.slider, T("query"), min_value=0, max_value=q - 1)) if q > 1 else 0
        coords = walk.coords
        fig = charts.episode_map(
            coords[:s],
            episode.support_y.numpy(),
            coords[s + q :],
            coords[s : s + q],
            qy,
            selected,
            names,
            T("map"),
            (T("the_query"), T("prototype")),
        )
        st.plotly_chart(fig, key="ln_protonet_map")

    st.subheader(T("s3"))
    st.markdown(T("s3_text", metric=T(learner.config.distance)))
    rows = [f"{i}: {names[t]}" for i, t in enumerate(qy)]
    table = pd.DataFrame(walk.distance, index=rows, columns=names)
    # 4 significant digits: an untrained net's distances are all near 0.005, and 3 decimals hid their differences
    st.dataframe(table.style.highlight_min(axis=1, color="#c6e5c6").format("{:.4g}"), height=min(38 + 35 * q, 400))

    st.subheader(T("s4"))
    scale = r"e^{s}\," if learner.config.distance == "cosine" else ""
    st.latex(
        rf"p(y = k \mid x) = \frac{{\exp(-{scale}d(f(x), c_k))}}{{\sum_{{k'}} "
        rf"\exp(-{scale}d(f(x), c_{{k'}}))}} \qquad L = -\log p(y = y_{{\text{{true}}}} \mid x)"
    )
    left, right = st.columns([3, 2])
    left.plotly_chart(
        charts.bars(names, walk.probabilities[selected], T("probs", i=selected), highlight=int(qy[selected])), key="ln_protonet_probs"
    )
    p_true = walk.probabilities[selected, qy[selected]]
    right.latex(rf"L_{{{selected}}} = -\log {p_true:.4f} = {walk.query_loss[selected]:.4f}")
    right.markdown(
        T("loss_text", name=names[qy[selected]], loss=walk.query_loss[selected], q=q, mean=walk.query_loss.mean(), engine=walk.loss)
    )
    probs = walk.probabilities[selected]
    if probs.max() - probs.min() < FLAT:
        right.caption(T("flat", d=float(walk.distance[selected].max())))
    right_count = int((walk.predicted == qy).sum())
    right.metric(T("accuracy"), f"{right_count} / {q}")

    with exercise(T("task")):
        verdict(right_count == q, T("success", total=q), T("progress", right=right_count, total=q))


LESSON = Lesson("protonet", lambda: T("title"), SCHEMA, render)
