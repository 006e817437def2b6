"""glyphs: the built-in dataset, handwriting-like symbols generated offline in seconds.

A class is a random stroke structure: 2-5 smooth Bézier curves or angular polylines, some starting
on an earlier stroke, like an Omniglot character. Each sample redraws it with its own wobble of the
control points, pen width, rotation, scale, shear and position, so raw pixels match poorly across
samples while the strokes stay recognisable. Classes come in families of ~20 that share a stroke
style (stroke count, curvy or angular, how often strokes join), the analogue of Omniglot's
alphabets, so splits by group work the same way.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from core.data.base import DataError, ImageSet
from core.data.cache import cache_key, cached

GENERATOR = "strokes-v1"  # in the cache key: change it whenever drawing changes what comes out
FAMILY_SIZE = 20  # classes per family, about an Omniglot alphabet's worth
POINTS_PER_STROKE = 10  # 9 segments: smooth curves at 28 px, and exact for 3-piece polylines
REFERENCE_SIZE = 28  # pen widths are given in pixels at this size and scale with the image
MIN_WIDTH = 1.3  # pixels: a thinner pen greys out when small images are drawn
MIN_SIZE, MAX_SIZE = 8, 256
FRAME = 0.95  # samples are shifted back inside [-FRAME, FRAME] so strokes are rarely cut off
TEMPLATE_EXTENT = 0.6  # a template's half-extent before jitter, leaving room to rotate and move


@dataclass(frozen=True)
class Jitter:
    """How far one sample strays from its class template (canvas units span [-1, 1])."""

    wobble: float = 0.05  # std of control-point noise: a hand never retraces the same curve
    rotation: float = 15.0  # max degrees either way
    scale: float = 0.1  # max relative change of size
    aspect: float = 0.06  # max relative stretch of one axis against the other
    shear: float = 0.1  # max horizontal shear, a slanted hand
    shift: float = 0.2  # max translation, ~3 px at 28 px
    width: tuple[float, float] = (1.3, 2.6)  # pen width range in pixels at REFERENCE_SIZE

    def __post_init__(self) -> None:
        amounts = (self.wobble, self.rotation, self.scale, self.aspect, self.shear, self.shift)
        if min(amounts) < 0 or self.scale >= 1 or self.aspect >= 1:
            raise DataError(f"jitter amounts must be >= 0 and scale, aspect < 1; got {self}")
        if not 0 < self.width[0] <= self.width[1]:
            raise DataError(f"pen width range must satisfy 0 < low <= high; got {self.width}")


NO_JITTER = Jitter(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, (2.0, 2.0))  # every sample equals its template


@dataclass(frozen=True)
class _Style:
    """What the classes of one family share."""

    min_strokes: int
    max_strokes: int
    curvy: float  # probability that a stroke is a Bézier curve rather than a polyline
    connect: float  # probability that a stroke starts on an earlier stroke
    bend: float  # how far Bézier control points leave the chord, relative to its length


def _bases() -> np.ndarray:
    """(2, P, 4): maps 4 control points to P stroke points; [0] polyline through them, [1] cubic Bézier."""
    t = np.linspace(0.0, 1.0, POINTS_PER_STROKE)
    bezier = np.stack([(1 - t) ** 3, 3 * t * (1 - t) ** 2, 3 * t**2 * (1 - t), t**3], axis=1)
    piece = np.minimum((t * 3).astype(int), 2)  # which of the 3 polyline pieces each point lies on
    frac = t * 3 - piece
    polyline = np.zeros_like(bezier)
    polyline[np.arange(t.size), piece] = 1 - frac
    polyline[np.arange(t.size), piece + 1] = frac
    return np.stack([polyline, bezier])


_BASES = _bases()


def generate_glyphs(
    image_size: int = 28, n_classes: int = 600, samples_per_class: int = 20, seed: int = 0, jitter: Jitter | None = None
) -> ImageSet:
    """Draw the dataset (no caching): images uint8 (n_classes * samples_per_class, 1, image_size, image_size).

    Strokes are 255 on a 0 background, class-major order, labels (n,) int64. Class i depends only on
    (seed, i), so a smaller set is a prefix of a larger one.
    """
    _check(image_size, n_classes, samples_per_class, seed)
    jitter = jitter or Jitter()
    styles = [_style(np.random.default_rng([seed, 0, f])) for f in range(math.ceil(n_classes / FAMILY_SIZE))]
    strokes, widths = [], []
    for c in range(n_classes):
        ctrl, curvy = _template(np.random.default_rng([seed, 1, c]), styles[c // FAMILY_SIZE])
        rng = np.random.default_rng([seed, 2, c])
        strokes.append(_draw_samples(rng, ctrl, curvy, samples_per_class, jitter))
        widths.append(rng.uniform(*jitter.width, samples_per_class))
    images = _render_all(strokes, np.maximum(np.concatenate(widths) * image_size / REFERENCE_SIZE, MIN_WIDTH), image_size)
    digits, family_digits = max(4, len(str(n_classes))), max(2, len(str(len(styles))))
    return ImageSet(
        name="glyphs",
        images=images,
        labels=torch.arange(n_classes).repeat_interleave(samples_per_class),
        class_names=tuple(f"glyph-{c + 1:0{digits}d}" for c in range(n_classes)),
        class_groups=tuple(f"family-{c // FAMILY_SIZE + 1:0{family_digits}d}" for c in range(n_classes)),
        source=f"generated strokes ({GENERATOR}, seed={seed})",
    )


def load_glyphs(
    image_size: int = 28, n_classes: int = 600, samples_per_class: int = 20, seed: int = 0, cache_root: Path | None = None
) -> ImageSet:
    """generate_glyphs, drawn once per parameter set and then read from the disk cache."""
    _check(image_size, n_classes, samples_per_class, seed)
    params = dict(image_size=image_size, n_classes=n_classes, samples_per_class=samples_per_class, seed=seed)
    key = cache_key(dataset="glyphs", generator=GENERATOR, jitter=asdict(Jitter()), **params)
    return cached("glyphs", key, lambda: generate_glyphs(**params), cache_root)


def _check(image_size: int, n_classes: int, samples_per_class: int, seed: int) -> None:
    if not MIN_SIZE <= image_size <= MAX_SIZE:
        raise DataError(f"glyphs image size {image_size} is out of range; use {MIN_SIZE} to {MAX_SIZE} pixels")
    if n_classes < 1:
        raise DataError(f"glyphs needs at least 1 class (got {n_classes})")
    if samples_per_class < 1:
        raise DataError(f"glyphs needs at least 1 sample per class (got {samples_per_class})")
    if seed < 0:
        raise DataError(f"glyphs seed must be a non-negative integer, got {seed}")


def _style(rng: np.random.Generator) -> _Style:
    low = int(rng.integers(2, 5))
    return _Style(low, low + 1, float(rng.choice([0.1, 0.5, 0.9])), float(rng.uniform(0.3, 0.9)), float(rng.uniform(0.2, 0.5)))


def _template(rng: np.random.Generator, style: _Style) -> tuple[np.ndarray, np.ndarray]:
    """A class's strokes: control points (k, 4, 2) within +-TEMPLATE_EXTENT, curvy flags (k,) bool."""
    k = int(rng.integers(style.min_strokes, style.max_strokes + 1))
    curvy = rng.random(k) < style.curvy
    ctrl = np.zeros((k, 4, 2))
    for i in range(k):
        start = _start(rng, ctrl[:i], curvy[:i], style.connect)
        ctrl[i] = _curve(rng, start, style.bend) if curvy[i] else _polyline(rng, start)
    points = _BASES[curvy.astype(int)] @ ctrl  # (k, P, 2)
    low, high = points.reshape(-1, 2).min(0), points.reshape(-1, 2).max(0)
    scale = TEMPLATE_EXTENT / max((high - low).max() / 2, 1e-6)  # keep the aspect ratio: tall glyphs stay tall
    return (ctrl - (low + high) / 2) * scale, curvy


def _start(rng: np.random.Generator, earlier: np.ndarray, curvy: np.ndarray, connect: float) -> np.ndarray:
    """(2,) where a stroke begins: on an earlier stroke (an end or anywhere along it) or anywhere."""
    if len(earlier) == 0 or rng.random() >= connect:
        return rng.uniform(-0.7, 0.7, 2)
    j = int(rng.integers(len(earlier)))
    at = int(rng.choice([0, POINTS_PER_STROKE - 1, int(rng.integers(POINTS_PER_STROKE))]))
    return _BASES[int(curvy[j]), at] @ earlier[j]


def _curve(rng: np.random.Generator, start: np.ndarray, bend: float) -> np.ndarray:
    """(4, 2) cubic Bézier control points: a chord of random direction bent sideways."""
    angle, length = rng.uniform(0, 2 * np.pi), rng.uniform(0.6, 1.3)
    direction = np.array([np.cos(angle), np.sin(angle)])
    normal = np.array([-direction[1], direction[0]])
    offsets = rng.normal(0, bend * length, 2)
    inner = [start + direction * length * f + normal * o for f, o in zip((1 / 3, 2 / 3), offsets, strict=True)]
    return np.stack([start, *inner, start + direction * length])


def _polyline(rng: np.random.Generator, start: np.ndarray) -> np.ndarray:
    """(4, 2) vertices of 3 straight pieces; a turn of 0 merges two pieces into one."""
    turns = rng.choice([0.0, 1.0], 3, p=[0.3, 0.7]) * rng.uniform(np.pi / 4, 5 * np.pi / 6, 3) * rng.choice([-1, 1], 3)
    turns[0] = rng.uniform(0, 2 * np.pi)  # the first "turn" is the starting heading
    angles = np.cumsum(turns)
    steps = np.stack([np.cos(angles), np.sin(angles)], axis=1) * rng.uniform(0.3, 0.6, (3, 1))
    return np.concatenate([start[None], start + np.cumsum(steps, axis=0)])


def _draw_samples(rng: np.random.Generator, ctrl: np.ndarray, curvy: np.ndarray, n: int, jitter: Jitter) -> np.ndarray:
    """Stroke points of n drawings of one template: (n, k, P, 2) in canvas units."""
    wobbly = ctrl[None] + rng.normal(0, jitter.wobble, (n, *ctrl.shape))
    points = _BASES[curvy.astype(int)][None] @ wobbly  # (n, k, P, 2)
    points = points @ _affines(rng, n, jitter).transpose(0, 2, 1)[:, None]
    return points + _shifts(rng, points, jitter.shift)[:, None, None]


def _affines(rng: np.random.Generator, n: int, jitter: Jitter) -> np.ndarray:
    """(n, 2, 2) rotation @ scale @ shear, one per sample."""
    theta = np.radians(rng.uniform(-jitter.rotation, jitter.rotation, n))
    cos, sin = np.cos(theta), np.sin(theta)
    rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    size, stretch = 1 + rng.uniform(-jitter.scale, jitter.scale, n), rng.uniform(-jitter.aspect, jitter.aspect, n)
    shear = rng.uniform(-jitter.shear, jitter.shear, n)
    zeros = np.zeros(n)
    scale_shear = np.stack([np.stack([size * (1 + stretch), size * shear], -1), np.stack([zeros, size * (1 - stretch)], -1)], -2)
    return rotation @ scale_shear


def _shifts(rng: np.random.Generator, points: np.ndarray, shift: float) -> np.ndarray:
    """(n, 2) random translations, limited so each sample stays inside the frame when it fits."""
    flat = points.reshape(points.shape[0], -1, 2)
    low, high = -FRAME - flat.min(1), FRAME - flat.max(1)  # allowed shift range per sample and axis
    wanted = rng.uniform(-shift, shift, (points.shape[0], 2))
    return np.where(low <= high, np.clip(wanted, low, np.maximum(low, high)), (low + high) / 2)


def _render_all(strokes: list[np.ndarray], widths: np.ndarray, size: int) -> torch.Tensor:
    """Render every class's samples, batching classes with equal stroke counts: uint8 (n, 1, size, size)."""
    n_samples = strokes[0].shape[0]
    images = np.empty((len(strokes) * n_samples, size * size), dtype=np.uint8)
    chunk = max(1, 2**18 // (size * size))  # ~1 MB working arrays stay in cache
    for k in sorted({s.shape[1] for s in strokes}):
        classes = [c for c, s in enumerate(strokes) if s.shape[1] == k]
        rows = (np.asarray(classes)[:, None] * n_samples + np.arange(n_samples)).ravel()
        points = ((np.concatenate([strokes[c] for c in classes]) + 1) * (size / 2)).astype(np.float32)  # canvas -> pixels
        for i in range(0, len(rows), chunk):
            images[rows[i : i + chunk]] = _render(points[i : i + chunk], widths[rows[i : i + chunk]], size)
    return torch.from_numpy(images).view(-1, 1, size, size)


def _render(points: np.ndarray, widths: np.ndarray, size: int) -> np.ndarray:
    """Anti-aliased pen strokes: points (b, k, P, 2) as (x, y) pixels, widths (b,) pixels -> uint8 (b, size*size).

    numpy rather than torch: single-threaded elementwise work is as fast here, and torch's
    thread pool slows down by 30x on a busy machine.
    """
    starts, ends = points[:, :, :-1].reshape(len(points), -1, 2), points[:, :, 1:].reshape(len(points), -1, 2)
    nearest = np.full((len(points), size * size), np.inf, dtype=np.float32)
    scratch = np.empty((4, *nearest.shape), dtype=np.float32)
    for m in range(starts.shape[1]):
        np.minimum(nearest, _squared_distance(starts[:, m], ends[:, m], size, scratch), out=nearest)
    ink = np.clip(widths[:, None] / 2 + 0.5 - np.sqrt(nearest), 0, 1)  # a 1-pixel ramp at the pen's edge
    return np.rint(ink * 255).astype(np.uint8)


def _squared_distance(start: np.ndarray, end: np.ndarray, size: int, scratch: np.ndarray) -> np.ndarray:
    """(b, size*size) squared distance from each pixel centre to one segment per image; start, end (b, 2).

    Works in place in scratch (4, b, size*size): this loop is where generation spends its time.
    """
    grid_x, grid_y = _pixel_centres(size)
    dx, dy, along, tmp = scratch
    u = end - start
    np.subtract(grid_x, start[:, :1], out=dx)
    np.subtract(grid_y, start[:, 1:], out=dy)
    np.multiply(dx, u[:, :1], out=along)
    along += np.multiply(dy, u[:, 1:], out=tmp)
    along *= 1 / np.maximum((u * u).sum(1, keepdims=True), 1e-12)
    np.clip(along, 0, 1, out=along)  # the nearest point of the segment, as a fraction of its length
    dx -= np.multiply(along, u[:, :1], out=tmp)
    dy -= np.multiply(along, u[:, 1:], out=tmp)
    dx *= dx
    dx += np.multiply(dy, dy, out=tmp)
    return dx


@functools.lru_cache(maxsize=8)
def _pixel_centres(size: int) -> tuple[np.ndarray, np.ndarray]:
    """x and y of every pixel centre, each (1, size*size) float32, row-major."""
    centres = np.arange(size, dtype=np.float32) + 0.5
    grid_y, grid_x = np.meshgrid(centres, centres, indexing="ij")
    return grid_x.reshape(1, -1), grid_y.reshape(1, -1)
