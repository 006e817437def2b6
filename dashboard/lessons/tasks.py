"""Lesson 6: tasks as points. Similar tasks lie close, and a new task can start from its neighbours' solutions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st
import torch

from core.analysis.projection import pca
from core.config import EpisodeShape
from core.data import ClassSplit, ImageSet
from core.learners import MetaLearner
from core.tasks.draw import TaskDrawer, split_images
from core.tasks.embedding import TaskEncoder, metric_embeddings, parameter_embeddings, task_keys, train_task_encoder
from core.tasks.features import ImageFeatures
from core.tasks.models import make_task_model
from core.tasks.similarity import nearest_tasks
from core.tasks.study import EMBEDDINGS, StudyConfig, library_drawers
from core.tasks.warmstart import STARTS, compare_starts, solve_tasks
from dashboard import errors, loaders, state
from dashboard.charts import lessons as charts
from dashboard.i18n import register
from dashboard.lessons.kit import Context, Lesson, exercise, session_learner, verdict
from dashboard.share import LinkSchema, Param

NEW_TASKS = 8
SETTINGS = StudyConfig(
    n_way=5, k_shot=1, q_query=10, stored_k_shot=5, stored_tasks=30, new_tasks=NEW_TASKS, solve_steps=30, encoder_steps=100
)
STEPS = (0, 1, 2, 5, 10)  # fine-tuning steps at which the starts are compared
ENCODER_IMAGES = 10  # images per training class the task encoder sees: embedding all of them was most of its 24 s

SCHEMA = LinkSchema(
    {"task": Param(0, low=0, high=NEW_TASKS - 1), "k": Param(5, low=1, high=10), "embedding": Param("parameter", choices=EMBEDDINGS)}
)

T = register(
    "tasks",
    {
        "title": ("Task embeddings", "任务嵌入"),
        "intro": (
            "So far each point was an image. Now each point is a **whole task**: {stored} solved 5-way tasks from the test classes "
            "(a library), each summarised by one vector, and {new} new 1-shot tasks. Tasks that involve similar classes should get "
            "similar vectors, and a new task can then **warm-start** from the solutions of its nearest neighbours instead of from zero.",
            "到目前为止，每个点都是一张图片。现在每个点是**一整个任务**：来自测试类别的 {stored} 个已解决的 5-way 任务（任务库），"
            "每个任务用一个向量概括；另有 {new} 个新的 1-shot 任务。涉及相似类别的任务应当得到相似的向量，"
            "这样新任务就可以从最近邻任务的解出发进行**热启动**，而不必从零开始。",
        ),
        "parameter": (
            "**Parameter-based**: fine-tune a linear head on the task's support "
            "for a few steps and keep WᵀW (blind to the order of the labels).",
            "**基于参数**：在任务的支持集上把线性分类头微调几步，取 WᵀW 作为嵌入（与标签顺序无关）。",
        ),
        "metric": (
            "**Metric-based**: the task's class prototypes through a small DeepSets encoder, trained with the contrastive loss "
            "so that tasks of the same group come close (trained here for {steps} steps on the training classes).",
            "**基于度量**：把任务的类别原型送入一个小的 DeepSets 编码器，用对比损失训练，使同一组的任务彼此靠近"
            "（这里在训练类别上训练 {steps} 步）。",
        ),
        "embedding": ("Task embedding", "任务嵌入方式"),
        "task": ("New task", "新任务"),
        "k": ("Neighbours k", "近邻个数 k"),
        "map": ("Tasks in the embedding (PCA)", "嵌入空间中的任务（PCA）"),
        "map_note": (
            "Each point is a task, coloured by the group its classes come from. The star is the new task; "
            "the ringed points are its k nearest stored tasks.",
            "每个点是一个任务，颜色表示其类别所属的组。星形是新任务，圈出的点是它的 k 个最近已存任务。",
        ),
        "neighbours": ("The new task's nearest stored tasks", "新任务最近的已存任务"),
        "col_task": ("stored task", "已存任务"),
        "col_group": ("group", "组"),
        "col_cos": ("cosine", "余弦相似度"),
        "col_related": ("related", "相关"),
        "related_rate": ("Neighbours related to their new task, all new tasks", "所有新任务中与其相关的近邻比例"),
        "warm_head": ("Warm start versus cold start", "热启动与冷启动"),
        "warm_text": (
            "Each new task's linear head is fine-tuned on its single support image per class from four starts: zero (**cold**), "
            "random weights as nn.Linear draws them (**cold-random**, the usual fine-tuning start), the heads of its k nearest "
            "stored tasks (**warm**), or the heads of k random stored tasks (**warm-random**, the control: it shows whether "
            "similarity, not merely having a library, is what helps). Query accuracy, mean over the {new} new tasks:",
            "每个新任务的线性分类头在每类仅有的一张支持图片上微调，起点有四种：全零（**冷启动**）、"
            "像 nn.Linear 那样随机初始化（**随机冷启动**，即通常的微调起点）、k 个最近已存任务的分类头（**热启动**），"
            "以及 k 个随机已存任务的分类头（**随机热启动**，作为对照：它说明起作用的是相似性，而不仅仅是有一个任务库）。"
            "下面是 {new} 个新任务上查询准确率的平均值：",
        ),
        "curves": ("Query accuracy after each number of fine-tuning steps", "不同微调步数后的查询准确率"),
        "start_cold": ("cold", "冷启动"),
        "start_cold-random": ("cold-random", "随机冷启动"),
        "start_warm": ("warm", "热启动"),
        "start_warm-random": ("warm-random", "随机热启动"),
        "task_line": ("this task, warm", "当前任务（热启动）"),
        "learner": ("Image embeddings from: {what}.", "图片嵌入来自：{what}。"),
        "computing": ("Embedding tasks and fine-tuning heads…", "正在计算任务嵌入并微调分类头……"),
        "stored_label": ("stored {i}", "已存任务 {i}"),
        "new_label": ("new {i}", "新任务 {i}"),
        "x_steps": ("fine-tuning steps", "微调步数"),
        "y_accuracy": ("query accuracy", "查询准确率"),
        "parameter_kind": ("parameter-based", "基于参数"),
        "metric_kind": ("metric-based", "基于度量"),
        "exercise": (
            "Find a new task whose **k nearest stored tasks are all related** to it (drawn from the same group, or sharing a class "
            "where the data has no groups). Try the other task embedding, or a smaller k.",
            "找到一个新任务，使它的 **k 个最近已存任务全都与它相关**（来自同一组；若数据没有分组，则至少共有一个类别）。"
            "可以换一种任务嵌入方式，或者减小 k。",
        ),
        "progress": (
            "{related} of the {k} nearest stored tasks are related to new task {i}.",
            "新任务 {i} 的 {k} 个最近已存任务中有 {related} 个与它相关。",
        ),
        "success": (
            "All {k} nearest stored tasks of new task {i} are related to it: the embedding puts similar tasks close together.",
            "新任务 {i} 的全部 {k} 个最近已存任务都与它相关：这个嵌入确实把相似的任务放在了一起。",
        ),
    },
)


@dataclass(frozen=True)
class TaskMap:
    """Stored and new tasks as vectors, and how starting from neighbours fares.

    coords (stored + new, 2): PCA of the embeddings; groups: each task's group; labels: ("stored" | "new", index);
    related (new, stored) bool;
    neighbours, cosines (new, k); accuracy[start] (len(STEPS), new): query accuracy per fine-tuning step.
    """

    coords: np.ndarray
    groups: list[str]
    labels: list[tuple[str, int]]
    related: np.ndarray
    neighbours: np.ndarray
    cosines: np.ndarray
    accuracy: dict[str, np.ndarray]


def task_coords(e: torch.Tensor) -> np.ndarray:
    """PCA coordinates (t, 2) of task embeddings (t, D).

    A parameter embedding has D = e² (4,096 for 64-d features) and PCA's eigh of the (D, D) covariance
    took 47 s; the rows span at most t dimensions, so PCA in an orthonormal basis of that span gives the
    same picture from a (t, t) problem.
    """
    basis, _ = torch.linalg.qr(e.T.double())  # (D, t), orthonormal columns
    return pca((e.double() @ basis).numpy())


def map_tasks(learner: MetaLearner, image_set: ImageSet, split: ClassSplit, kind: str, k: int, config: StudyConfig = SETTINGS) -> TaskMap:
    """The library and the new tasks on the test classes (core.tasks), embedded with `kind`, compared with k neighbours."""
    features = ImageFeatures(learner, image_set)
    stored_drawer, new_drawer = library_drawers(image_set, split, config)
    stored_specs, new = stored_drawer.draw_many(config.stored_tasks), new_drawer.draw_many(config.new_tasks)
    if kind == "metric":
        with torch.random.fork_rng():  # seeded initial weights, the caller's random state untouched
            torch.manual_seed(config.seed)
            encoder = TaskEncoder(features.rows([0]).shape[1])
        few = split_images(image_set, split.train, ENCODER_IMAGES)[0]
        features.rows([i for rows in few.values() for i in rows])  # one batched pass, not ~1,400 tiny ones
        train_drawer = TaskDrawer(image_set, split.train, EpisodeShape(config.n_way, config.k_shot, 1), config.seed + 2, few)
        train_task_encoder(encoder, features, train_drawer, config.encoder_steps)
        e = metric_embeddings(encoder, features, stored_specs + new)
    else:
        e = parameter_embeddings(features, stored_specs + new, lr=config.lr)
    n = len(stored_specs)
    neighbours, cosines = nearest_tasks(e[:n], e[n:], k)
    model = make_task_model("head", learner, features, config.lr)  # the lesson fine-tunes heads, whatever the learner
    library = solve_tasks(model, features, stored_specs, config.solve_steps)
    comparison = compare_starts(
        model, features, library, e[:n], new, e[n:], k=k, steps=STEPS, prior_weight=config.prior_weight, seed=config.seed
    )
    keys = [task_keys(s, stored_drawer) for s in stored_specs], [task_keys(s, new_drawer) for s in new]
    groups = [stored_drawer.group_of(s) for s in stored_specs] + [new_drawer.group_of(s) for s in new]
    return TaskMap(
        task_coords(e),
        groups,
        [("stored", i) for i in range(n)] + [("new", i) for i in range(len(new))],
        np.array([[bool(a & b) for b in keys[0]] for a in keys[1]]),
        neighbours.numpy(),
        cosines.numpy(),
        {start: np.array(comparison.accuracy[start]) for start in STARTS},
    )


@st.cache_data(max_entries=16, show_spinner=False)
def cached_map(_learner: MetaLearner, _image_set: ImageSet, _split: ClassSplit, kind: str, k: int, key: tuple) -> TaskMap:
    return map_tasks(_learner, _image_set, _split, kind, k)


def render(ctx: Context) -> None:
    st.markdown(T("intro", stored=SETTINGS.stored_tasks, new=NEW_TASKS))
    left, right = st.columns(2)
    left.markdown(T("parameter"))
    right.markdown(T("metric", steps=SETTINGS.encoder_steps))
    choice = state.data_choice()
    with errors.reported():
        image_set, split = loaders.image_set(choice), loaders.class_split(choice)
    learner, about, source = session_learner(image_set)
    st.caption(T("learner", what=about))
    cols = st.columns(3)
    with cols[0]:
        kind = ctx.control("embedding", st.radio, T("embedding"), options=EMBEDDINGS, horizontal=True, format_func=lambda e: T(f"{e}_kind"))
    with cols[1]:
        i = int(ctx.control("task", st.slider, T("task"), min_value=0, max_value=NEW_TASKS - 1))
    with cols[2]:
        k = int(ctx.control("k", st.slider, T("k"), min_value=1, max_value=10))
    with errors.reported(), st.spinner(T("computing")):
        result = cached_map(learner, image_set, split, kind, k, (source, choice))
    n = len(result.related[0])
    chosen = result.neighbours[i]
    points = result.coords[: n + 1].copy()
    points[n] = result.coords[n + i]
    name = lambda label: T(f"{label[0]}_label", i=label[1])
    groups, labels = result.groups[:n] + [result.groups[n + i]], [name(t) for t in result.labels[:n] + [result.labels[n + i]]]
    left, right = st.columns([3, 2])
    left.plotly_chart(charts.task_map(points, labels, groups, [n, *chosen.tolist()], T("map")), key="ln_tasks_map")
    left.caption(T("map_note"))
    table = pd.DataFrame(
        {
            T("col_task"): [name(result.labels[j]) for j in chosen],
            T("col_group"): [result.groups[j] for j in chosen],
            T("col_cos"): result.cosines[i],
            T("col_related"): result.related[i, chosen],
        }
    )
    right.markdown(f"**{T('neighbours')}**")
    right.dataframe(table.style.format(precision=3), hide_index=True)
    right.metric(T("related_rate"), f"{result.related[np.arange(len(result.neighbours))[:, None], result.neighbours].mean():.0%}")

    st.subheader(T("warm_head"))
    st.markdown(T("warm_text", new=NEW_TASKS))
    series = {T(f"start_{start}"): result.accuracy[start].mean(1) for start in STARTS} | {T("task_line"): result.accuracy["warm"][:, i]}
    st.plotly_chart(charts.lines(list(STEPS), series, T("curves"), T("x_steps"), T("y_accuracy")), key="ln_tasks_starts")

    related = int(result.related[i, chosen].sum())
    with exercise(T("exercise")):
        verdict(related == k, T("success", k=k, i=i), T("progress", related=related, k=k, i=i))


LESSON = Lesson("tasks", lambda: T("title"), SCHEMA, render)
