"""Lesson 5: MAML's inner and outer loop on one episode, and what first-order MAML leaves out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st
import torch

from core.episodes import Episode
from core.learners import MetaLearner
from dashboard import state
from dashboard.charts import lessons as charts
from dashboard.i18n import register
from dashboard.lessons.kit import Context, Lesson, episode_controls, exercise, learner_of, verdict, with_settings
from dashboard.share import LinkSchema, Param

INNER_LRS = (0.01, 0.03, 0.1, 0.2, 0.4, 1.0, 3.0)
MAX_INNER_STEPS = 10

SCHEMA = LinkSchema(
    {
        "inner_steps": Param(5, low=1, high=MAX_INNER_STEPS),
        "inner_lr": Param(0.4, choices=INNER_LRS),
        "step": Param(1, low=0, high=MAX_INNER_STEPS),
    },
    episode=True,
)

T = register(
    "maml",
    {
        "title": ("MAML", "MAML（模型无关元学习）"),
        "intro": (
            "MAML learns a **starting point** θ from which a few gradient steps on a new task's support set already work well. "
            "The **inner loop** adapts θ to one episode; the **outer loop** moves θ so that the adapted weights do well on the "
            "episode's queries. Step through both on the episode below.",
            "MAML 学习的是一个**初始点** θ：从它出发，只需在新任务的支持集上走几步梯度下降就能表现良好。"
            "**内循环**把 θ 适配到一个 episode 上；**外循环**调整 θ，让适配后的权重在该 "
            "episode 的查询集上表现更好。下面在这个 episode 上逐步观察这两个循环。",
        ),
        "inner_steps": ("Inner steps", "内循环步数"),
        "inner_lr": ("Inner learning rate α", "内循环学习率 α"),
        "step": ("Look at inner step", "查看第几步内循环"),
        "inner_head": ("The inner loop: adapting to the support set", "内循环：在支持集上适配"),
        "curve": ("Loss before and after each inner step", "每一步内循环前后的损失"),
        "support_loss": ("support loss", "支持集损失"),
        "query_loss": ("query loss", "查询集损失"),
        "at_step": (
            "After inner step {t}: support loss {support:.4f}, query loss **{query:.4f}**, query accuracy {acc:.0%} "
            "(before adapting: query loss {query0:.4f}, accuracy {acc0:.0%}).",
            "第 {t} 步内循环之后：支持集损失 {support:.4f}，查询集损失 **{query:.4f}**，查询准确率 {acc:.0%}"
            "（适配之前：查询集损失 {query0:.4f}，准确率 {acc0:.0%}）。",
        ),
        "outer_head": ("The outer loop: the meta-gradient", "外循环：元梯度"),
        "outer_text": (
            "The outer loss is the query loss at the adapted weights θ′. Its gradient with respect to the starting point θ "
            "flows back through every inner step, so it contains the Hessian of the support loss. First-order MAML drops that "
            "term and treats ∂θ′/∂θ as the identity. Both meta-gradients of this episode, layer by layer:",
            "外循环的损失是适配后权重 θ′ 上的查询集损失。它对初始点 θ 的梯度要穿过每一步内循环反向传播，因此包含支持集损失的 Hessian 矩阵。"
            "一阶 MAML 丢掉这一项，把 ∂θ′/∂θ 当作单位矩阵。下面逐层给出这个 episode 上的两种元梯度：",
        ),
        "norms": ("Meta-gradient norm per layer", "每层元梯度的范数"),
        "second": ("second order", "二阶"),
        "first": ("first order", "一阶"),
        "cosine": ("Cosine(second, first), all layers", "二阶与一阶的余弦相似度（全部层）"),
        "ratio": ("Norm ratio second / first", "范数之比（二阶 / 一阶）"),
        "layer": ("layer", "层"),
        "x_step": ("inner step", "内循环步数"),
        "y_loss": ("loss", "损失"),
        "step_col": ("step", "步"),
        "query_acc": ("query accuracy", "查询集准确率"),
        "support_acc": ("support accuracy", "支持集准确率"),
        "computing": ("Computing both meta-gradients…", "正在计算两种元梯度……"),
        "task": (
            "Make the inner loop **descend**: find an inner learning rate at which the query loss falls at **every** inner step. "
            "What happens to the query loss, and to the second-order meta-gradient, when α is too large?",
            "让内循环**稳步下降**：找到一个内循环学习率，使查询集损失在**每一步**内循环后都下降。"
            "当 α 过大时，查询集损失和二阶元梯度会怎样？",
        ),
        "progress": ("At α = {lr:g} the query loss rises after inner step {t}.", "α = {lr:g} 时，查询集损失在第 {t} 步内循环后上升了。"),
        "success": (
            "At α = {lr:g} the query loss falls at all {steps} inner steps, from {first:.4f} to {last:.4f}.",
            "α = {lr:g} 时，查询集损失在全部 {steps} 步内循环中持续下降，从 {first:.4f} 降到 {last:.4f}。",
        ),
    },
)


@dataclass(frozen=True)
class MetaGradients:
    """Second- and first-order meta-gradients of one episode, per layer (module path): norms and cosine similarity."""

    layers: list[str]
    second_norm: np.ndarray
    first_norm: np.ndarray
    cosine: np.ndarray
    total_cosine: float


def meta_gradient(learner: MetaLearner, episode: Episode, first_order: bool) -> dict[str, torch.Tensor]:
    """d(query loss at the adapted weights) / d(starting weights), parameter by parameter, on a private copy."""
    twin = with_settings(learner, first_order=first_order).requires_grad_(True)
    loss, _ = twin.episode_loss(episode.support_x, episode.support_y, episode.query_x, episode.query_y, episode.n_way)
    named = [(n, p) for n, p in twin.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
    return {n: torch.zeros_like(p) if g is None else g for (n, p), g in zip(named, grads, strict=True)}


def layer_name(path: str, module: torch.nn.Module | None) -> str:
    """'backbone.1.0' (a Conv2d) -> '1.0 Conv2d': the path inside the network and what kind of layer it is."""
    short = path.removeprefix("backbone.").removeprefix("encoder.")
    return f"{short} {type(module).__name__}" if module is not None else short


def compare_orders(learner: MetaLearner, episode: Episode) -> MetaGradients:
    """Both meta-gradients, grouped by the module each parameter belongs to."""
    second, first = meta_gradient(learner, episode, False), meta_gradient(learner, episode, True)
    layers = list(dict.fromkeys(name.rsplit(".", 1)[0] for name in second))
    flat = lambda grads, layer: torch.cat([g.flatten() for n, g in grads.items() if n.rsplit(".", 1)[0] == layer])
    s = [flat(second, layer) for layer in layers]
    f = [flat(first, layer) for layer in layers]
    cos = lambda a, b: float(torch.nn.functional.cosine_similarity(a, b, dim=0, eps=1e-12))
    modules = dict(learner.named_modules())
    return MetaGradients(
        [layer_name(layer, modules.get(layer)) for layer in layers],
        np.array([float(v.norm()) for v in s]),
        np.array([float(v.norm()) for v in f]),
        np.array([cos(a, b) for a, b in zip(s, f, strict=True)]),
        cos(torch.cat(s), torch.cat(f)),
    )


def first_rise(trace: list[dict[str, float]]) -> int | None:
    """The first inner step after which the query loss did not fall, or None when it fell at every step."""
    return next((t["step"] for prev, t in zip(trace, trace[1:], strict=False) if t["loss"] >= prev["loss"]), None)


@st.cache_data(max_entries=32, show_spinner=False)
def cached_orders(_learner: MetaLearner, _episode: Episode, key: tuple) -> MetaGradients:
    """compare_orders, once per (learner, episode, settings) `key`: second order costs a second or two on a CPU."""
    return compare_orders(_learner, _episode)


def trace_table(trace: list[dict[str, float]]) -> pd.DataFrame:
    """adapt_trace's rows as a table indexed by inner step, its columns named in the reader's language."""
    names = {"step": T("step_col"), "loss": T("query_loss"), "accuracy": T("query_acc")}
    names |= {"support_loss": T("support_loss"), "support_accuracy": T("support_acc")}
    return pd.DataFrame(trace).rename(columns=names).set_index(names["step"])


def render(ctx: Context) -> None:
    st.markdown(T("intro"))
    image_set, spec, episode = episode_controls(ctx)
    base, about, source = learner_of("maml", image_set)
    if base is None:
        st.info(about)
        return
    st.caption(about)
    cols = st.columns(2)
    with cols[0]:
        steps = int(ctx.control("inner_steps", st.slider, T("inner_steps"), min_value=1, max_value=MAX_INNER_STEPS))
    with cols[1]:
        lr = float(ctx.control("inner_lr", st.select_slider, T("inner_lr"), options=INNER_LRS))
    learner = with_settings(base, inner_steps=steps, inner_lr=lr, first_order=False)
    trace = learner.adapt_trace(episode.support_x, episode.support_y, episode.query_x, episode.query_y, episode.n_way)

    st.subheader(T("inner_head"))
    st.latex(r"\theta'_{t} = \theta'_{t-1} - \alpha \nabla_{\theta} \mathcal{L}_{S}(\theta'_{t-1}), \qquad \theta'_0 = \theta")
    ctx.clamp("step", steps)
    t = int(ctx.control("step", st.slider, T("step"), min_value=0, max_value=steps))
    now, start = trace[t], trace[0]
    left, right = st.columns(2)
    figure = charts.inner_loop(
        [r["step"] for r in trace],
        [r["loss"] for r in trace],
        [r["support_loss"] for r in trace],
        t,
        (T("support_loss"), T("query_loss")),
        T("curve"),
        (T("x_step"), T("y_loss")),
    )
    left.plotly_chart(figure, key="ln_maml_inner")
    right.markdown(
        T("at_step", t=t, support=now["support_loss"], query=now["loss"], acc=now["accuracy"], query0=start["loss"], acc0=start["accuracy"])
    )
    right.dataframe(trace_table(trace).style.format("{:.4f}"), height=min(38 + 35 * len(trace), 420))

    st.subheader(T("outer_head"))
    st.latex(
        r"\theta \leftarrow \theta - \beta \nabla_{\theta} \mathcal{L}_{Q}(\theta'), \qquad \nabla_{\theta} \mathcal{L}_{Q}(\theta') "
        r"= \Big(\prod_{t} \big(I - \alpha \nabla^2 \mathcal{L}_{S}(\theta'_{t-1})\big)\Big)\, \nabla_{\theta'} \mathcal{L}_{Q}(\theta')"
    )
    st.markdown(T("outer_text"))
    with st.spinner(T("computing")):
        grads = cached_orders(learner, episode, (source, state.data_choice(), spec, steps, lr))
    left, right = st.columns([3, 1])
    series = {T("second"): grads.second_norm, T("first"): grads.first_norm}
    left.plotly_chart(charts.grouped_bars(grads.layers, series, T("norms"), log_y=True), key="ln_maml_norms")
    right.metric(T("cosine"), f"{grads.total_cosine:.3f}")
    right.metric(T("ratio"), f"{grads.second_norm.sum() / max(grads.first_norm.sum(), 1e-12):.2f}")
    table = pd.DataFrame({T("layer"): grads.layers, T("second"): grads.second_norm, T("first"): grads.first_norm, "cos": grads.cosine})
    st.dataframe(table.style.format(precision=4), hide_index=True)

    with exercise(T("task")):
        rise = first_rise(trace)
        verdict(
            rise is None, T("success", lr=lr, steps=steps, first=trace[0]["loss"], last=trace[-1]["loss"]), T("progress", lr=lr, t=rise)
        )


LESSON = Lesson("maml", lambda: T("title"), SCHEMA, render)
