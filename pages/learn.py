"""Learn: guided lessons on the live engine and the current episode, in English or Chinese, shareable by link."""

import streamlit as st

from dashboard import i18n, inputs, lessons, share, sidebar, state

T = i18n.register(
    "learn",
    {
        "title": ("Learn", "学习"),
        "caption": (
            "Lessons that run on the real engine: change one thing and watch what happens. "
            "The address bar always holds a link to exactly this view; send it to a student.",
            "这些课程都运行在真实的引擎上：改变一个设置，立刻看到结果。地址栏里始终是指向当前视图的链接，可以直接发给学生。",
        ),
        "lesson": ("Lesson", "课程"),
        "link_problem": ("From the link: {problem}", "链接中的问题：{problem}"),
        "previous": ("Previous: {title}", "上一课：{title}"),
        "next": ("Next: {title}", "下一课：{title}"),
    },
)

problems = lessons.follow_link(st.query_params.to_dict())  # a new link wins over the session's last view
sidebar.sidebar()  # after the link, so it names the link's dataset
i18n.language_switch()

st.title(T("title"))
st.caption(T("caption"))
for problem in problems:
    st.warning(T("link_problem", problem=problem), icon=":material/link_off:")

keys = list(lessons.LESSONS)
numbered = {key: f"{i + 1}. {lessons.LESSONS[key].title()}" for i, key in enumerate(keys)}
st.segmented_control(T("lesson"), keys, format_func=numbered.get, key=inputs.keyed("ln_lesson", state.lesson()), on_change=lessons.picked)
lesson = lessons.LESSONS[state.lesson()]

st.header(numbered[lesson.key])
lesson.render(lessons.context(lesson))

query = share.encode(lessons.current_view(lesson), lesson.schema)
lessons.write_link(query)
hideable = [*lesson.schema.params, *(share.EPISODE_CONTROLS if lesson.schema.episode else ())]
share.link_box(query, hideable, label=lambda name: lessons.control_label(lesson, name))

position = keys.index(lesson.key)
left, right = st.columns(2)
if position > 0:
    left.button(T("previous", title=lessons.LESSONS[keys[position - 1]].title()), key="ln_previous", icon=":material/arrow_back:",
                on_click=lessons.go_to, args=(keys[position - 1],))  # fmt: skip
if position < len(keys) - 1:
    right.button(T("next", title=lessons.LESSONS[keys[position + 1]].title()), key="ln_next", icon=":material/arrow_forward:",
                 on_click=lessons.go_to, args=(keys[position + 1],))  # fmt: skip
