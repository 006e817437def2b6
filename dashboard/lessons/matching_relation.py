"""Lesson 4: Matching Networks attend over every support image; Relation Networks learn the comparison itself."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st
import torch

from core.episodes import Episode
from core.learners import MetaLearner
from core.learners.scoring import embed_episode, pairwise_distance, prototypes
from dashboard import episode_view
from dashboard.charts import lessons as charts
from dashboard.charts.images import thumbnail
from dashboard.i18n import register
from dashboard.lessons.kit import Context, Lesson, episode_controls, exercise, learner_of, verdict
from dashboard.share import LinkSchema, Param

SCHEMA = LinkSchema({"query": Param(0, low=0, high=10_000)}, episode=True)

T = register(
    "matching",
    {
        "title": ("Matching and relation networks", "匹配网络与关系网络"),
        "intro": (
            "A ProtoNet compares a query with each class mean by a **fixed** distance. Two other metric learners compare differently: "
            "a **Matching Network** looks at every support image and spreads its attention over them; a **Relation Network** "
            "replaces the distance by a small network that **learns** how to compare.",
            "原型网络用**固定的**距离把查询和每个类别的均值作比较。另外两种度量学习方法的比较方式不同："
            "**匹配网络**逐一查看每张支持图片，把注意力分配给它们；**关系网络**则用一个小网络代替距离，**学会**如何比较。",
        ),
        "query": ("Query to follow", "要跟踪的查询"),
        "the_query": ("Query {i} (class {name})", "查询 {i}（类别 {name}）"),
        "m_head": ("Matching network: attention over the support set", "匹配网络：对支持集的注意力"),
        "m_text": (
            "The attention a(x̂, xᵢ) is a softmax over the scaled cosine similarity of the query with each support image; "
            "a class's probability is the attention its images receive. Each support image below carries its weight.",
            "注意力 a(x̂, xᵢ) 是查询与每张支持图片的余弦相似度（乘以缩放系数）经过 softmax 得到的；"
            "某个类别的概率就是它的图片所获得的注意力之和。下面每张支持图片下方标出了它的权重。",
        ),
        "attention": ("Attention of query {i} on each support image", "查询 {i} 对每张支持图片的注意力"),
        "r_head": ("Relation network: learned relation scores", "关系网络：学到的关系分数"),
        "r_text": (
            "The relation module g reads the class's summed embedding next to the query's and outputs a score in [0, 1]; "
            "it is trained to output 1 for the right class and 0 for the others (mean squared error, not cross-entropy).",
            "关系模块 g 把类别的嵌入之和与查询的嵌入拼接起来，输出 [0, 1] 之间的分数；"
            "训练目标是正确类别输出 1、其余类别输出 0（均方误差，而不是交叉熵）。",
        ),
        "relation": ("Relation scores of query {i}", "查询 {i} 的关系分数"),
        "f_head": ("Learned comparison versus a fixed distance", "学到的比较方式与固定距离的对比"),
        "f_text": (
            "The last column ranks the classes by a fixed squared Euclidean distance to the class mean, in the **same** embedding "
            "the relation network uses. Where it disagrees with the relation "
            "score, the learned comparison is doing something a distance cannot.",
            "最后一列在关系网络所用的**同一个**嵌入空间里，按到类别均值的固定平方欧氏距离给类别排序。"
            "它与关系分数不一致的地方，正是学到的比较方式做到了固定距离做不到的事。",
        ),
        "col_class": ("class", "类别"),
        "col_match": ("matching p(c|x̂)", "匹配网络 p(c|x̂)"),
        "col_rel": ("relation score", "关系分数"),
        "col_dist": ("fixed distance", "固定距离"),
        "col_fixed": ("fixed-distance p(c|x̂)", "固定距离 p(c|x̂)"),
        "task": (
            "Find a query on which the relation network and the fixed distance **pick different classes**. "
            "Move through the queries, or draw other episodes.",
            "找到一个查询，使关系网络和固定距离**选出不同的类别**。可以逐个切换查询，也可以抽取别的 episode。",
        ),
        "progress": ("On query {i} both pick {name}.", "在查询 {i} 上，两者都选了 {name}。"),
        "success": (
            "On query {i} the relation network picks {relation} but the nearest "
            "class mean is {fixed}: a learned comparison is not a distance.",
            "在查询 {i} 上，关系网络选了 {relation}，而最近的类别均值却是 {fixed}：学到的比较方式并不等同于距离。",
        ),
    },
)


@dataclass(frozen=True)
class Comparison:
    """Three ways to compare queries with an episode's support, as arrays.

    attention (q, s) and matching (q, n) from the Matching Network; relation (q, n) scores in [0, 1];
    distance (q, n) squared Euclidean to class means in the Relation Network's embedding, fixed (q, n) its softmax(-d).
    """

    attention: np.ndarray
    matching: np.ndarray
    relation: np.ndarray
    distance: np.ndarray
    fixed: np.ndarray


@torch.no_grad()
def compare(matching: MetaLearner, relation: MetaLearner, episode: Episode) -> Comparison:
    sx, sy, qx, n = episode.support_x, episode.support_y, episode.query_x, episode.n_way
    seen = matching.explain(sx, sy, qx, n)
    related = relation.explain(sx, sy, qx, n)
    support_z, query_z = embed_episode(relation.embed, sx, qx)
    distance = pairwise_distance(query_z, prototypes(support_z, sy, n))
    return Comparison(
        seen["attention"].numpy(), seen["similarity"].numpy(), related["relation"].numpy(), distance.numpy(), (-distance).softmax(1).numpy()
    )


def disagree(result: Comparison, query: int) -> bool:
    """The exercise's check: the relation score and the fixed distance pick different classes for `query`."""
    return int(result.relation[query].argmax()) != int(result.distance[query].argmin())


def support_images(image_set, spec, weights: np.ndarray, names: list[str]) -> None:
    """The support images in a row, each captioned with its attention weight."""
    flat = [(i, idx) for i, row in enumerate(spec.support) for idx in row]
    columns = st.columns(min(len(flat), 10))
    for j, (cls, idx) in enumerate(flat):
        columns[j % len(columns)].image(thumbnail(image_set.images[idx], 2), caption=f"{names[cls]} · {weights[j]:.2f}")


def render(ctx: Context) -> None:
    st.markdown(T("intro"))
    image_set, spec, episode = episode_controls(ctx)
    matching, about_m, _ = learner_of("matching", image_set)
    relation, about_r, _ = learner_of("relation", image_set)
    if matching is None or relation is None:
        st.info(about_m if matching is None else about_r)
        return
    names = [episode_view.class_label(image_set, c) for c in spec.class_ids]
    # bar and image labels: the label the learner sees and the name without its group or alphabet path
    short = [f"{k}: {image_set.class_names[c].rsplit('/', 1)[-1][:14]}" for k, c in enumerate(spec.class_ids)]
    q = len(episode.query_y)
    ctx.clamp("query", q - 1)
    result = compare(matching, relation, episode)
    left, right = st.columns([1, 4], vertical_alignment="center")
    with right:
        i = int(ctx.control("query", st.slider, T("query"), min_value=0, max_value=q - 1)) if q > 1 else 0
    true = int(episode.query_y[i])
    query_index = [idx for row in spec.query for idx in row][i]
    left.image(thumbnail(image_set.images[query_index], 3), caption=T("the_query", i=i, name=names[true]))

    st.subheader(T("m_head"))
    st.caption(about_m)
    st.markdown(T("m_text"))
    st.latex(
        r"a(\hat{x}, x_i) = \frac{e^{\,s\cos(f(\hat{x}), g(x_i))}}{\sum_j e^{\,s\cos(f(\hat{x}), "
        r"g(x_j))}} \qquad P(y \mid \hat{x}) = \sum_i a(\hat{x}, x_i)\, y_i"
    )
    support_images(image_set, spec, result.attention[i], short)
    labels = [f"{short[int(c)]} #{j}" for j, c in enumerate(episode.support_y)]
    st.plotly_chart(charts.bars(labels, result.attention[i], T("attention", i=i)), key="ln_matching_attention")

    st.subheader(T("r_head"))
    st.caption(about_r)
    st.markdown(T("r_text"))
    st.latex(r"r_{c} = g_\phi\big(\big[\textstyle\sum_{i: y_i = c} f(x_i),\; f(\hat{x})\big]\big) \in [0, 1]")
    st.plotly_chart(
        charts.bars(short, result.relation[i], T("relation", i=i), highlight=true, value_format=".4f"), key="ln_matching_relation"
    )

    st.subheader(T("f_head"))
    st.markdown(T("f_text"))
    table = pd.DataFrame(
        {
            T("col_class"): names,
            T("col_match"): result.matching[i],
            T("col_rel"): result.relation[i],
            T("col_dist"): result.distance[i],
            T("col_fixed"): result.fixed[i],
        }
    )
    st.dataframe(
        table.style.format(precision=4).highlight_max(subset=[T("col_match"), T("col_rel"), T("col_fixed")], color="#c6e5c6"),
        hide_index=True,
    )

    with exercise(T("task")):
        picked, nearest = names[int(result.relation[i].argmax())], names[int(result.distance[i].argmin())]
        verdict(disagree(result, i), T("success", i=i, relation=picked, fixed=nearest), T("progress", i=i, name=picked))


LESSON = Lesson("matching", lambda: T("title"), SCHEMA, render)
