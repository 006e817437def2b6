"""The dataset picker and the episode views: a class per row with its support and query images, image swapping."""

from __future__ import annotations

import streamlit as st

from core.data import DATASETS, ImageSet
from core.episodes import EpisodeSpec, draw_spec
from core.errors import UserError
from dashboard import access, loaders, state
from dashboard.charts.images import image_strip, thumbnail
from dashboard.errors import show_error
from dashboard.i18n import N_, tr
from dashboard.inputs import keyed, listing_key

FOLDER_HINTS = {
    "omniglot": N_("the Omniglot folder (background/evaluation zips, or alphabet/character/png folders)"),
    "folder": N_("a folder with one sub-folder of images per class"),
    "mini_imagenet": N_("the miniImageNet folder (images/ with train.csv, val.csv, test.csv, or train/ val/ test/ class folders)"),
    "tiered_imagenet": N_("the tieredImageNet folder (train/ val/ test/ class folders)"),
    "cifar_fs": N_("the folder holding torchvision's cifar-100-python"),
    "fc100": N_("the folder holding torchvision's cifar-100-python"),
    "cub": N_("the CUB_200_2011 folder (images/ and classes.txt)"),
}


def dataset_picker() -> state.DataChoice | None:
    """Dataset selector with a folder input where the dataset needs one; None while the folder is missing.

    The folder typed for each dataset is remembered for the session, so switching datasets back and forth keeps it."""
    current = state.data_choice()
    left, right = st.columns([1, 3])
    name = left.selectbox(tr("Dataset"), list(DATASETS), key=keyed("ep_dataset", current.dataset))
    data_dir = None
    if name != "glyphs":
        default = (current.data_dir if current.dataset == name else None) or state.data_dir_for(name)
        default = default or (state.default_omniglot_dir() if name == "omniglot" else "")
        hint = tr(FOLDER_HINTS[name])
        data_dir = right.text_input(tr("Data folder"), key=keyed(f"ep_dir_{name}", default or ""), placeholder=hint).strip() or None
        if data_dir is None:
            st.info(tr("Enter the data folder: {hint}.", hint=hint))
            return None
        try:
            data_dir = access.check_data_dir(data_dir)  # only folders under the operator's data roots
        except UserError as exc:
            show_error(exc)
            return None
    # the session's size already follows the current learner (state.set_learner_ref): the run's config is read
    # only when the dataset changes, not on every rerun of the page
    size = current.image_size if current.dataset == name else state.image_size_for(name)
    choice = state.DataChoice(name, data_dir, size)
    state.set_data_choice(choice)
    return choice


def seeded(spec: EpisodeSpec) -> bool:
    """Whether the split, N/K/Q and seed in state draw exactly `spec` (no class picked, no image swapped)."""
    choice = state.data_choice()
    classes = loaders.class_split(choice).classes(state.split())
    try:
        return spec == draw_spec(loaders.image_set(choice), classes, state.shape(), state.episode_seed())
    except ValueError:  # the settings no longer draw any episode here (a saved episode of another split)
        return False


def class_label(image_set: ImageSet, class_id: int) -> str:
    """The class name, with its group (alphabet) unless the name already starts with it."""
    name = image_set.class_names[class_id]
    group = image_set.class_groups[class_id] if image_set.class_groups else None
    return name if group is None or name.startswith(f"{group}/") else f"{name} ({group})"


def episode_grid(image_set: ImageSet, spec: EpisodeSpec) -> None:
    """One row per class: its name, its support images, its query images (28x28 upscaled, sharp).

    Each strip says what it is under it: on a phone the three columns stack and the header row is far away."""
    k, q = len(spec.support[0]), len(spec.query[0])
    widths = [1.2, max(k, 2), max(min(q, 10), 3)]
    head = st.columns(widths)
    head[1].markdown(tr("**Support** · {k} per class", k=k))
    head[2].markdown(tr("**Query** · {q} per class", q=q))
    for class_id, support, query in zip(spec.class_ids, spec.support, spec.query, strict=True):
        label, left, right = st.columns(widths, vertical_alignment="center")
        label.markdown(f"**{class_label(image_set, class_id)}**")
        left.image(image_strip(image_set.images[list(support)], scale=3), caption=tr("support"))
        right.image(image_strip(image_set.images[list(query)], scale=2), caption=tr("query"))


def slot_options(spec: EpisodeSpec) -> list[str]:
    """'part:class_pos:slot' for every image of the episode."""
    return [f"{part}:{i}:{j}" for part in ("support", "query") for i, row in enumerate(getattr(spec, part)) for j in range(len(row))]


def slot_swapper(image_set: ImageSet, spec: EpisodeSpec, limit: int = 24) -> EpisodeSpec | None:
    """Choose an image of the episode, then a replacement among its class's other images -> the new spec."""

    def describe(option: str) -> str:
        part, i, j = option.split(":")
        return tr("{cls} · {part} image {n}", cls=class_label(image_set, spec.class_ids[int(i)]), part=tr(part), n=int(j) + 1)

    # a box per set of classes: a new episode gets its own, while swapping images keeps the slot chosen
    slot_key = listing_key("ep_slot", spec.class_ids)
    slot = st.selectbox(tr("Image to replace"), slot_options(spec), format_func=describe, key=slot_key)
    part, i, j = slot.split(":")
    i, j = int(i), int(j)
    used = set(spec.support[i]) | set(spec.query[i])
    candidates = [x for x in image_set.indices_of(spec.class_ids[i]).tolist() if x not in used][:limit]
    current = getattr(spec, part)[i][j]
    st.image(thumbnail(image_set.images[current], scale=3), caption=tr("now: image #{index}", index=current))
    if not candidates:
        st.info(tr("This class has no other images to swap in."))
        return None
    st.caption(tr("Click a replacement from the same class:"))
    columns = st.columns(12)
    for n, index in enumerate(candidates):
        with columns[n % 12]:
            st.image(thumbnail(image_set.images[index], scale=2), caption=f"#{index}")
            if st.button(tr("Use"), key=f"ep_swap_{index}"):
                return spec.with_image(part, i, j, index)
    return None
