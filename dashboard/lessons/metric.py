"""Lesson 2: metric learning in a 2-D playground: a tiny net learns to pull pairs together and push them apart."""

from __future__ import annotations

import streamlit as st

from core import playground as pg
from dashboard import state
from dashboard.charts import lessons as charts
from dashboard.i18n import register
from dashboard.lessons.kit import Context, Lesson, exercise, verdict
from dashboard.share import LinkSchema, Param

LEARNING_RATES = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)
STEPS_PER_TICK = 5  # steps per animation frame: a few milliseconds of CPU
TICK_S = 0.3
MAX_STEPS = 3000  # playing stops here, so a forgotten tab does not compute forever
ANCHOR = 0  # the point whose margin circle is drawn
FAST_FORWARD = 50  # steps of the "+50" button
ZERO = 1e-4  # the triplet loss "reaches zero" when it reads 0.0000: the last triplets creep over the margin, never exactly

SCHEMA = LinkSchema(
    {
        "points": Param("moons", choices=pg.POINT_KINDS),
        "loss": Param("contrastive", choices=pg.LOSSES),
        "margin": Param(1.0, low=0.05, high=5.0),
        "lr": Param(0.03, choices=LEARNING_RATES),
        "normalize": Param(False),
    }
)

T = register(
    "metric",
    {
        "title": ("Metric learning", "度量学习"),
        "intro": (
            "Metric learning trains an embedding in which **distance means dissimilarity**: points of the same class "
            "should lie close together, points of different classes far apart. Below, a tiny network (2 → 16 → 2) "
            "maps points of the plane (left) to an embedding plane (right). No straight line separates the classes "
            "on the left; watch the network bend the plane until distances sort them.",
            "度量学习训练一个嵌入空间，让**距离代表差异**：同类的点应当彼此靠近，不同类的点应当相互远离。"
            "下面一个很小的网络（2 → 16 → 2）把左图平面上的点映射到右图的嵌入平面。左图中的类别无法用一条直线分开；"
            "观察网络如何弯折平面，直到距离能把各类区分开。",
        ),
        "contrastive": (
            "**Contrastive loss** (on pairs; y = 1 for a pair of the same class, 0 otherwise, d their distance): "
            "a same-class pair is pulled together, a different-class pair is pushed apart until it is at least the margin m away.",
            "**对比损失**（作用于样本对；同类时 y = 1，否则 y = 0，d 为两点距离）：同类的对被拉近，"
            "不同类的对被推开，直到距离至少为间隔 m。",
        ),
        "triplet": (
            "**Triplet loss** (on an anchor a, a positive p of its class and a negative n of another class): "
            "the anchor must be closer to the positive than to the negative by at least the margin m.",
            "**三元组损失**（由锚点 a、同类的正样本 p 和异类的负样本 n 组成）：锚点到正样本的距离必须比到负样本的距离至少小一个间隔 m。",
        ),
        "points": ("Points", "数据点"),
        "moons": ("two moons", "双月形"),
        "rings": ("three rings", "三个圆环"),
        "spirals": ("three spirals", "三条螺旋线"),
        "contrastive_loss": ("contrastive", "对比损失"),
        "triplet_loss": ("triplet", "三元组损失"),
        "class": ("class {label}", "类别 {label}"),
        "anchor": ("anchor", "锚点"),
        "x_step": ("step", "步数"),
        "y_loss": ("loss", "损失"),
        "loss": ("Loss", "损失函数"),
        "margin": ("Margin m", "间隔 m"),
        "lr": ("Learning rate", "学习率"),
        "normalize": ("Embeddings on the unit circle", "把嵌入归一化到单位圆上"),
        "play": ("Play", "播放"),
        "pause": ("Pause", "暂停"),
        "step": ("Step", "单步"),
        "forward": ("+{n} steps", "前进 {n} 步"),
        "reset": ("Reset", "重置"),
        "input": ("Input plane", "输入平面"),
        "embedding": ("Embedding (arrows: where the loss moves each point)", "嵌入空间（箭头：损失把每个点推向哪里）"),
        "curve": ("Loss after each step", "每一步的损失"),
        "m_step": ("Step", "步数"),
        "m_loss": ("Loss now", "当前损失"),
        "m_active": ("Terms above zero (of {terms})", "大于零的项（共 {terms} 项）"),
        "circle": (
            "The dashed circle has radius m around the starred anchor: with the contrastive loss, every point of another class "
            "inside it is pushed out; points of the anchor's class are pulled in. Grey lines are the input grid, bent by the network.",
            "虚线圆以星形锚点为圆心、半径为 m：使用对比损失时，"
            "圆内所有异类点都会被推出去，同类点则被拉近。灰色线条是被网络弯折后的输入网格。",
        ),
        "stopped": ("Stopped after {steps} steps; press Reset to start again.", "已运行 {steps} 步并停止；按“重置”重新开始。"),
        "task": (
            "On the two moons, choose the **triplet** loss and find a margin at which the triplet loss reaches **zero** (it reads 0.0000): "
            "every anchor is then closer to all its positives than to all its negatives by at least m. Then switch on "
            "*embeddings on the unit circle* and try m = 2: why does the loss stay above zero however long you train?",
            "在双月形数据上选择**三元组**损失，找到一个能让三元组损失降到**零**（显示为 0.0000）的间隔："
            "此时每个锚点到所有正样本的距离都比到所有负样本的距离至少小 m。然后打开“把嵌入归一化到单位圆上”，再试 m = 2："
            "为什么无论训练多久，损失都降不到零？",
        ),
        "progress": (
            "Triplet loss now {loss:.4f}; {active} of {terms} triplets still break the margin.",
            "当前三元组损失为 {loss:.4f}；{terms} 个三元组中仍有 {active} 个不满足间隔。",
        ),
        "wrong_loss": ("Switch the loss to triplet first.", "请先把损失函数切换为三元组损失。"),
        "success": (
            "Solved: at m = {margin:g} the triplet loss over all {terms} triplets is {loss:.6f}: d(a,p) + m ≤ d(a,n) holds (up to a hair) "
            "for every triplet, the gradient vanishes and the points stop moving. On the unit circle no two points are more than 2 apart, "
            "so m = 2 would need each class squeezed to a single point exactly opposite the other: never reached.",
            "完成：在 m = {margin:g} 时，全部 {terms} 个三元组上的损失为 {loss:.6f}：每个三元组都（几乎）满足 d(a,p) + m ≤ d(a,n)，"
            "梯度消失，点也不再移动。在单位圆上任意两点的距离都不超过 2，所以 m "
            "= 2 要求每个类别都缩成一个点并且恰好位于另一类的正对面：永远达不到。",
        ),
    },
)


def config(ctx: Context) -> pg.PlaygroundConfig:
    values = ctx.values()
    return pg.PlaygroundConfig(values["loss"], float(values["margin"]), float(values["lr"]), bool(values["normalize"]))


def session_playground(kind: str) -> pg.PlaygroundState:
    """This session's tiny net, fresh when the point set changed (a net trained on moons means nothing on rings)."""
    held = state.playground()
    if held is None or held[0] != kind:
        held = (kind, pg.init_state(seed=0))
        state.set_playground(held)
    return held[1]


def advance(kind: str, points: pg.Points, cfg: pg.PlaygroundConfig, steps: int) -> None:
    state.set_playground((kind, pg.train_steps(session_playground(kind), points, cfg, steps)))


def controls(ctx: Context) -> None:
    a, b, c, d = st.columns(4)
    with a:
        ctx.control("points", st.selectbox, T("points"), options=pg.POINT_KINDS, format_func=T)
    with b:
        ctx.control("loss", st.radio, T("loss"), options=pg.LOSSES, horizontal=True, format_func=lambda name: T(f"{name}_loss"))
    with c:
        ctx.control("margin", st.slider, T("margin"), min_value=0.05, max_value=5.0, step=0.05)
    with d:
        ctx.control("lr", st.select_slider, T("lr"), options=LEARNING_RATES)
    ctx.control("normalize", st.checkbox, T("normalize"))


def buttons(kind: str, points: pg.Points, cfg: pg.PlaygroundConfig) -> None:
    cols = st.columns([1, 1, 1.4, 1, 3])
    if state.playing():
        cols[0].button(T("pause"), key="ln_metric_pause", icon=":material/pause:", on_click=state.set_playing, args=(False,))
    else:
        cols[0].button(
            T("play"), key="ln_metric_play", icon=":material/play_arrow:", type="primary", on_click=state.set_playing, args=(True,)
        )
    cols[1].button(T("step"), key="ln_metric_step", icon=":material/skip_next:", on_click=advance, args=(kind, points, cfg, 1))
    cols[2].button(
        T("forward", n=FAST_FORWARD),
        key="ln_metric_forward",
        icon=":material/fast_forward:",
        on_click=advance,
        args=(kind, points, cfg, FAST_FORWARD),
    )
    cols[3].button(T("reset"), key="ln_metric_reset", icon=":material/restart_alt:", on_click=reset)


def reset() -> None:
    state.set_playground(None)
    state.set_playing(False)


def render(ctx: Context) -> None:
    st.markdown(T("intro"))
    left, right = st.columns(2)
    left.markdown(T("contrastive"))
    left.latex(r"L = y\,d + (1-y)\,\max(0,\; m - d)")
    right.markdown(T("triplet"))
    right.latex(r"L = \max\big(0,\; d(a,p) - d(a,n) + m\big)")
    controls(ctx)
    kind, cfg = ctx.value("points"), config(ctx)
    points = pg.make_points(kind, per_class=30, seed=0)
    buttons(kind, points, cfg)
    live(kind, points, cfg)


def live(kind: str, points: pg.Points, cfg: pg.PlaygroundConfig) -> None:
    """The animated part: reruns alone every TICK_S while playing, a few training steps each time."""

    @st.fragment(run_every=TICK_S if state.playing() else None)
    def frame() -> None:
        if state.playing():
            advance(kind, points, cfg, STEPS_PER_TICK)
            if session_playground(kind).step >= MAX_STEPS:
                state.set_playing(False)
                st.rerun(scope="app")  # so the Play button comes back
        net = session_playground(kind)
        now = pg.view(net, points, cfg)
        grid = pg.warp_grid(net.params, normalize=cfg.normalize).numpy()
        radius = cfg.margin
        titles, legend = (T("input"), T("embedding")), (T("class"), T("anchor"))
        fig = charts.playground(points.x.numpy(), points.y.numpy(), now.z.numpy(), now.forces.numpy(), grid, ANCHOR, radius, titles, legend)
        st.plotly_chart(fig, key="ln_metric_figure")
        st.caption(T("circle"))
        cols = st.columns([1, 1, 1, 3])
        cols[0].metric(T("m_step"), net.step)
        cols[1].metric(T("m_loss"), f"{now.loss:.4f}")
        cols[2].metric(T("m_active", terms=now.terms), now.active)
        if net.step >= MAX_STEPS:
            st.caption(T("stopped", steps=net.step))
        if net.losses:
            cols[3].plotly_chart(charts.loss_curve(net.losses, T("curve"), (T("x_step"), T("y_loss"))), key="ln_metric_curve")
        solved = cfg.loss == "triplet" and now.loss < ZERO  # the real loss over every triplet, computed now
        progress = T("progress", loss=now.loss, active=now.active, terms=now.terms) if cfg.loss == "triplet" else T("wrong_loss")
        with exercise(T("task")):
            verdict(solved, T("success", margin=cfg.margin, terms=now.terms, loss=now.loss), progress)

    frame()


LESSON = Lesson("metric", lambda: T("title"), SCHEMA, render)
