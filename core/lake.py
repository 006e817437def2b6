"""Lake's one-shot protocol (Lake, Salakhutdinov & Tenenbaum, Science 2015): 20-way one-shot within one alphabet.

An episode takes one alphabet, 20 of its characters and two distinct drawers: the support is each character
as the first drawer wrote it, the queries are the same characters as the second drawer wrote them. Every query
must be told apart from 19 look-alikes of its own script, in another hand than the one it learned from.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import torch

from core.augment import Augment, augment_images
from core.config import EpisodeShape
from core.data.base import DataError, ImageSet
from core.episodes import to_float
from core.evaluation import mean_ci95, score_by_index
from core.learners import MetaLearner
from core.store import RunDir

LAKE_WAYS = 20  # characters per episode in Lake's runs


@dataclass(frozen=True)
class Reference:
    """A published error rate on Lake's 20-way within-alphabet one-shot task, with the condition it holds under."""

    name: str
    error: float  # percent
    condition: str


# Lake et al. 2015 (Science 350:1332) and Lake, Salakhutdinov & Tenenbaum 2019 ("The Omniglot challenge: a 3-year
# progress report"): 20 runs of 20 trials on the 20 evaluation alphabets. "Minimal": the 5-alphabet background
# sets images_background_small1 / small2, which MetaScope's fixed split draws its training alphabets from.
REFERENCES: tuple[Reference, ...] = (
    Reference("people", 4.5, "40 people, no background training"),
    Reference("BPL", 3.3, "Bayesian Program Learning, 30 background alphabets"),
    Reference("BPL (minimal)", 4.3, "background set small1 (5 alphabets)"),
    Reference("BPL (minimal)", 4.0, "background set small2 (5 alphabets)"),
    Reference("Siamese convnet", 8.0, "Koch et al. 2015: 30 background alphabets, affine distortions"),
    Reference("deep convnet", 13.5, "30 background alphabets"),
    Reference("deep convnet (minimal)", 24.0, "background set small1 (5 alphabets)"),
    Reference("deep convnet (minimal)", 22.3, "background set small2 (5 alphabets)"),
)


def reference_errors() -> list[dict[str, float | str]]:
    """The published error rates as plain rows {name, error (percent), condition}, for a figure's reference lines."""
    return [asdict(r) for r in REFERENCES]


@dataclass(frozen=True)
class LakeEpisodes:
    """Episodes as dataset image indices. query[e, i] is the character of support[e, i] (episode label i).

    support, query: int64 (episodes, n_way); drawers: int64 (episodes, 2), the support's and the queries' drawer;
    alphabets: the alphabet of each episode.
    """

    support: torch.Tensor
    query: torch.Tensor
    drawers: torch.Tensor
    alphabets: tuple[str, ...]

    @property
    def n_way(self) -> int:
        return self.support.shape[1]

    def __len__(self) -> int:
        return self.support.shape[0]


def check_lake_data(image_set: ImageSet) -> None:
    """Raise DataError, in one line, unless the data knows each class's alphabet and each image's drawer."""
    if image_set.class_groups is None or image_set.drawers is None:
        raise DataError(
            f"the Lake protocol needs alphabet and drawer information (Omniglot from Lake's files), which '{image_set.name}' "
            "does not have; evaluate it with the standard N-way K-shot episodes instead"
        )


def lake_episodes(image_set: ImageSet, class_ids: Sequence[int], episodes: int, seed: int = 0, n_way: int = LAKE_WAYS) -> LakeEpisodes:
    """`episodes` seeded Lake episodes from the alphabets of `class_ids` (a split) that have at least `n_way` characters.

    Each episode: an alphabet drawn uniformly, n_way of its characters, two distinct drawers who both drew all of them.
    """
    check_lake_data(image_set)
    by_alphabet = _images_by_alphabet(image_set, class_ids)
    usable = sorted(a for a, chars in by_alphabet.items() if len(chars) >= n_way)
    if not usable:
        largest = max((len(c) for c in by_alphabet.values()), default=0)
        raise DataError(
            f"no alphabet of this split has {n_way} characters (the largest has {largest}); use at most {largest} classes per episode",
            "n_way",
        )
    generator = torch.Generator().manual_seed(seed)
    support, query, drawers, alphabets = [], [], [], []
    for _ in range(episodes):
        alphabet = usable[int(torch.randint(len(usable), (1,), generator=generator))]
        characters = by_alphabet[alphabet]
        chosen = [characters[int(i)] for i in torch.randperm(len(characters), generator=generator)[:n_way]]
        shared = sorted(set.intersection(*(set(c) for c in chosen)))
        if len(shared) < 2:
            raise DataError(f"{alphabet}: fewer than two drawers drew all of {n_way} characters; the Lake protocol needs two")
        first, second = (shared[int(i)] for i in torch.randperm(len(shared), generator=generator)[:2])
        support.append([c[first] for c in chosen])
        query.append([c[second] for c in chosen])
        drawers.append((first, second))
        alphabets.append(alphabet)
    as_tensor = lambda rows: torch.tensor(rows, dtype=torch.int64).reshape(episodes, -1)  # noqa: E731
    return LakeEpisodes(as_tensor(support), as_tensor(query), as_tensor(drawers), tuple(alphabets))


def _images_by_alphabet(image_set: ImageSet, class_ids: Sequence[int]) -> dict[str, list[dict[int, int]]]:
    """{alphabet: [{drawer: image index} per character]}; a drawer's first image of a character counts."""
    groups, drawers = image_set.class_groups, image_set.drawers
    assert groups is not None and drawers is not None  # check_lake_data ran
    by_alphabet: dict[str, list[dict[int, int]]] = {}
    for class_id in sorted(set(int(c) for c in class_ids)):
        images: dict[int, int] = {}
        for index in image_set.indices_of(class_id).tolist():
            images.setdefault(int(drawers[index]), index)
        by_alphabet.setdefault(groups[class_id], []).append(images)
    return by_alphabet


@dataclass(frozen=True)
class LakeResult:
    """Error over Lake episodes, in percent; ci95 = 1.96 * std / sqrt(episodes) of the per-episode error."""

    error: float
    ci95: float
    episodes: int
    n_way: int
    episode_error: list[float]
    alphabet_error: dict[str, float]
    seconds: float

    def to_dict(self) -> dict:
        return {"protocol": "lake", **asdict(self)}

    def summary(self) -> str:
        return f"error: {self.error:.2f} ± {self.ci95:.2f}"


@dataclass(frozen=True)
class LakeOptions:
    """Evaluation-time options for embedding learners; the defaults are the plain protocol.

    tta: augmented copies of every image (core.augment, strengths below) whose embeddings are averaged with the
    original's. center: subtract the support set's mean embedding from every support and the queries' mean from
    every query, which removes what the two drawers' hands shift alike (transductive: it reads all 20 queries).
    refine: transductive steps moving each support embedding toward the queries softly assigned to it.
    balance: transductive: make the query x class scores doubly stochastic (Sinkhorn), using that each of the
    n_way characters has exactly one query in Lake's runs.
    tta_strength: scales the three strengths of the copies together (1: 8 degrees, 8% scale, 4% shift).
    align (needs tta): score a query and a support as their best-aligned copies match: the query's copy closest to
    the support's average embedding, plus the support's copy closest to the query's average. Inductive: each query
    is scored against the supports alone, as two drawers' versions of a character differ by a small distortion.
    """

    tta: int = 0
    tta_rotation: float = 8.0
    tta_scale: float = 0.08
    tta_translate: float = 0.04
    tta_strength: float = 1.0
    align: bool = False
    center: bool = False
    refine: int = 0
    balance: bool = False
    seed: int = 0  # of the test-time augmentations

    def __post_init__(self) -> None:
        if self.tta < 0 or self.refine < 0:
            raise DataError(f"test-time augmentations and refinement steps must be 0 (off) or more (got {self.tta} and {self.refine})")
        if not 0 < self.tta_strength <= 4:
            raise DataError(f"the strength of the test-time copies must be above 0 and at most 4 (got {self.tta_strength})")
        if self.align and (self.tta == 0 or self.center or self.refine):
            raise DataError("align picks the best-aligned of each image's test-time copies: give tta (copies), without center or refine")

    @property
    def tag(self) -> str:
        """A short name of the options in force, e.g. 'tta8-center-refine3' ('' when plain)."""
        tta = f"tta{self.tta}" + (f"x{self.tta_strength:g}" if self.tta_strength != 1 else "") if self.tta else ""
        parts = [tta, "align" if self.align else "", "center" if self.center else "", f"refine{self.refine}" if self.refine else ""]
        return "-".join(p for p in [*parts, "balance" if self.balance else ""] if p)

    @property
    def plain(self) -> bool:
        return self.tta == 0 and not self.center and self.refine == 0 and not self.balance


# The test-time settings a user picks by name (the Runs page): chosen on the validation alphabet (docs/lake.md).
ALIGNED = LakeOptions(tta=32, tta_strength=1.5, align=True)
LAKE_PRESETS: dict[str, LakeOptions] = {
    "plain": LakeOptions(),
    "copies, aligned": ALIGNED,
    "copies, aligned, balanced": replace(ALIGNED, balance=True),
}


@torch.no_grad()
def lake_logits(
    learner: MetaLearner,
    image_set: ImageSet,
    episodes: LakeEpisodes,
    device: torch.device | str = "cpu",
    options: LakeOptions = LakeOptions(),
) -> torch.Tensor:
    """Logits (episodes, n_way, n_way): row i scores the query of character i against the n_way supports.

    Embedding learners embed each image once and score episodes by indexing; others run forward per episode.
    """
    n_way = episodes.n_way
    used, local = torch.unique(torch.cat([episodes.support, episodes.query], 1), return_inverse=True)  # (u,), (episodes, 2*n_way)
    images = image_set.images[used]
    was_training = learner.training
    learner.eval()
    try:
        if learner.embedding_only:
            copies = _embeddings(learner, images, device, options)  # (1 + tta, u, d)
            supports, queries = local[:, :n_way], local[:, n_way:]
            if options.align:
                return _balanced(_aligned(learner, copies, supports, queries), options).cpu()
            z = copies.mean(0)
            return _score(learner, z[supports], z[queries], options).cpu()
        if not options.plain:
            raise DataError(f"test-time options (tta, center, refine, balance) need an embedding learner; '{learner.name}' is not one")
        labels = torch.arange(n_way, device=device)
        pairs = zip(local[:, :n_way], local[:, n_way:], strict=True)
        return torch.stack([learner(_float(images[s], device), labels, _float(images[q], device), n_way) for s, q in pairs]).cpu()
    finally:
        learner.train(was_training)


def _embeddings(learner: MetaLearner, images: torch.Tensor, device: torch.device | str, options: LakeOptions) -> torch.Tensor:
    """(1 + options.tta, n, d) float32 embeddings of uint8 images: the originals', then each augmented copy's."""
    k = options.tta_strength
    augment = Augment(rotation=k * options.tta_rotation, scale=k * options.tta_scale, translate=k * options.tta_translate)
    generator = torch.Generator().manual_seed(options.seed)
    chunks = []
    for i in range(0, len(images), 128):
        x = _float(images[i : i + 128], device)
        copies = [x] + [augment_images(x, augment, generator) for _ in range(options.tta)]
        chunks.append(torch.stack([learner.embed(c).float() for c in copies]))  # float32 scores, as forward does
    return torch.cat(chunks, 1)


def _aligned(learner: MetaLearner, copies: torch.Tensor, supports: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    """Logits (episodes, n_way, n_way) of LakeOptions.align from copies (c, u, d) and the episodes' image rows
    (episodes, n_way) each: for every pair, the best query copy against the support's mean plus the best support
    copy against the query's mean."""
    mean = copies.mean(0)
    by_query = torch.stack([_score_batch(learner, mean[supports], c[queries]) for c in copies]).amax(0)
    by_support = torch.stack([_score_batch(learner, c[supports], mean[queries]) for c in copies]).amax(0)
    return by_query + by_support


def _score(learner: MetaLearner, support: torch.Tensor, query: torch.Tensor, options: LakeOptions) -> torch.Tensor:
    """Logits (episodes, n_way, n_way) from support and query embeddings (episodes, n_way, d), label i = support i."""
    episodes, n_way, d = support.shape
    if options.center:
        support, query = support - support.mean(1, keepdim=True), query - query.mean(1, keepdim=True)
    logits = _score_batch(learner, support, query)
    for _ in range(options.refine):
        weights = logits.softmax(-1)  # (episodes, query, class)
        support = (support + weights.transpose(1, 2) @ query) / (1 + weights.sum(1)).unsqueeze(-1)
        logits = _score_batch(learner, support, query)
    return _balanced(logits, options)


def _balanced(logits: torch.Tensor, options: LakeOptions) -> torch.Tensor:
    return sinkhorn(logits) if options.balance else logits


def sinkhorn(logits: torch.Tensor, steps: int = 20) -> torch.Tensor:
    """Log of the doubly stochastic matrix nearest exp(logits) (..., n, n): every row and column sums to 1."""
    for _ in range(steps):
        logits = logits - logits.logsumexp(-1, keepdim=True)
        logits = logits - logits.logsumexp(-2, keepdim=True)
    return logits


def _score_batch(learner: MetaLearner, support: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """learner.score over a batch of one-shot episodes: (episodes, n_way, d) twice -> (episodes, n_way, n_way)."""
    episodes, n_way, d = support.shape
    z = torch.cat([support, query], 1).reshape(-1, d)
    base = torch.arange(episodes).view(-1, 1) * 2 * n_way + torch.arange(n_way)  # (episodes, n_way) rows of the supports
    return score_by_index(learner, z, torch.stack([base, base + n_way], -1), EpisodeShape(n_way, 1, 1))


def evaluate_lake(
    learner: MetaLearner,
    image_set: ImageSet,
    class_ids: Sequence[int],
    episodes: int = 1000,
    seed: int = 0,
    n_way: int = LAKE_WAYS,
    device: torch.device | str = "cpu",
    options: LakeOptions = LakeOptions(),
) -> LakeResult:
    """Lake's protocol on the alphabets of `class_ids` -> error (percent) with its 95% CI over `episodes` episodes."""
    start = time.perf_counter()
    drawn = lake_episodes(image_set, class_ids, episodes, seed, n_way)
    wrong = (lake_logits(learner, image_set, drawn, device, options).argmax(-1) != torch.arange(drawn.n_way)).float()  # (episodes, n_way)
    return lake_result(wrong, drawn.alphabets, time.perf_counter() - start)


def lake_result(wrong: torch.Tensor, alphabets: Sequence[str], seconds: float = 0.0) -> LakeResult:
    """Figures from `wrong` (episodes, n_way), 1 where a query was misclassified, and each episode's alphabet."""
    per_episode = 100 * wrong.mean(1)
    error, ci = mean_ci95(per_episode)
    by_alphabet = {a: per_episode[[i for i, b in enumerate(alphabets) if b == a]].mean().item() for a in sorted(set(alphabets))}
    return LakeResult(error, ci, len(per_episode), wrong.shape[1], per_episode.tolist(), by_alphabet, seconds)


def stored_name(split: str, n_way: int, options: LakeOptions) -> str:
    """The file a Lake evaluation is kept in, in its run folder: eval-lake-<split>[-<n>w][-<options>].json."""
    parts = [f"eval-lake-{split}", "" if n_way == LAKE_WAYS else f"{n_way}w", options.tag]
    return "-".join(p for p in parts if p) + ".json"


def store_result(run: RunDir, result: LakeResult, split: str, options: LakeOptions, step: int, seed: int) -> str:
    """Write `result` into the run folder (the CLI and the Runs page alike) -> the file name."""
    name = stored_name(split, result.n_way, options)
    run.write_json(name, {**result.to_dict(), "checkpoint_step": step, "split": split, "seed": seed, "options": asdict(options)})
    return name


def stored_results(run: RunDir) -> list[dict]:
    """The Lake evaluations kept in a run folder, as written by store_result, the plain one first."""
    found = [(path.name, run.read_json(path.name)) for path in sorted(run.path.glob("eval-lake-*.json"))]
    results = [{**data, "file": name} for name, data in found if isinstance(data, dict) and data.get("protocol") == "lake"]
    return sorted(results, key=lambda r: (len(r["file"]), r["file"]))


def _float(images: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    return to_float(images.to(device))
