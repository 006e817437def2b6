"""The common few-shot pipeline, as the tutorials write it: the reference MetaScope is measured against.

Images are PNG files decoded with PIL for every episode, turned into tensors by torchvision
transforms and batched by a DataLoader built per episode; the model is a plain NCHW Conv-4
(conv, BN, ReLU, pool) and the loss reads `.item()` every step. Same episodes, same weights.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from core.episodes import ClassPool, EpisodeSampler

Draw = tuple[torch.Tensor, torch.Tensor]  # local classes (n_way,), in-class positions (n_way, k+q)


def write_pngs(pool: ClassPool, rows: torch.Tensor, folder: Path) -> None:
    """Pool images at `rows` as folder/<row>.png (8-bit grayscale or RGB), as users keep datasets."""
    folder.mkdir(parents=True, exist_ok=True)
    for row in rows.tolist():
        image = pool.images[row].cpu()  # (c, h, w) uint8
        array = image[0].numpy() if image.shape[0] == 1 else image.permute(1, 2, 0).numpy()
        Image.fromarray(array).save(folder / f"{row}.png")


def episode_rows(pool: ClassPool, draws: Sequence[Draw]) -> torch.Tensor:
    """The distinct pool rows the episodes use (so only those need PNG files)."""
    return torch.cat([pool.rows(c, p).reshape(-1) for c, p in draws]).unique()


class EpisodeFiles(Dataset):
    """(image tensor, label) per file, decoded by PIL on every access."""

    def __init__(self, paths: Sequence[Path], labels: Sequence[int], image_size: int, mode: str, normalise: nn.Module):
        self.paths, self.labels, self.mode = list(paths), list(labels), mode
        self.transform = transforms.Compose([transforms.Resize((image_size, image_size)), transforms.ToTensor(), normalise])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        with Image.open(self.paths[i]) as image:
            return self.transform(image.convert(self.mode)), self.labels[i]


class TutorialProtoNet(nn.Module):
    """ProtoNet on a Conv-4 written the usual way; parameter names match MetaScope's ProtoNet."""

    def __init__(self, in_channels: int, width: int = 64):
        super().__init__()
        blocks = [
            nn.Sequential(
                nn.Conv2d(in_channels if i == 0 else width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2)
            )
            for i in range(4)
        ]
        self.backbone = nn.Module()
        self.backbone.encoder = nn.Sequential(*blocks)

    def forward(self, support: torch.Tensor, support_y: torch.Tensor, query: torch.Tensor, n_way: int) -> torch.Tensor:
        """-squared distance of each query (q, c, h, w) to the class means of the support -> (q, n_way).

        Support and queries go through in one batch, as in Snell et al.'s code: batchnorm then sees the same batch as MetaScope's.
        """
        z = self.backbone.encoder(torch.cat([support, query])).flatten(1)
        z_support, z_query = z[: support.shape[0]], z[support.shape[0] :]
        protos = torch.stack([z_support[support_y == c].mean(0) for c in range(n_way)])
        return -torch.cdist(z_query, protos).pow(2)


class CommonPipeline:
    """Loads each episode from PNG files through a fresh DataLoader, as the tutorials do."""

    def __init__(self, pool: ClassPool, folder: Path, k_shot: int, device: torch.device):
        self.pool, self.folder, self.k_shot, self.device = pool, folder, k_shot, device
        self.mode = "L" if pool.images.shape[1] == 1 else "RGB"
        self.image_size = pool.images.shape[-1]
        norm = pool.image_set.normalisation  # the same floats as MetaScope's path (a named benchmark's mean / std)
        self.normalise = nn.Identity() if norm is None else transforms.Normalize(norm.mean, norm.std)

    def load(self, draw: Draw) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """support_x, support_y, query_x, query_y of one episode, decoded from disk."""
        classes, positions = draw
        rows = self.pool.rows(classes, positions)  # (n_way, k+q)
        paths = [self.folder / f"{r}.png" for r in rows.reshape(-1).tolist()]
        labels = torch.arange(rows.shape[0]).repeat_interleave(rows.shape[1]).tolist()
        files = EpisodeFiles(paths, labels, self.image_size, self.mode, self.normalise)
        loader = DataLoader(files, batch_size=len(paths), shuffle=False, num_workers=0)
        x, y = next(iter(loader))
        x, y = x.to(self.device), y.to(self.device)
        is_support = (torch.arange(rows.shape[1]) < self.k_shot).repeat(rows.shape[0]).to(self.device)
        return x[is_support], y[is_support], x[~is_support], y[~is_support]

    def train(self, model: TutorialProtoNet, optimizer: torch.optim.Optimizer, draws: Sequence[Draw]) -> tuple[float, list[float]]:
        """Train on `draws` -> (seconds, loss per episode)."""
        model.train()
        losses = []
        start = time.perf_counter()
        for draw in draws:
            support_x, support_y, query_x, query_y = self.load(draw)
            loss = F.cross_entropy(model(support_x, support_y, query_x, len(draw[0])), query_y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return time.perf_counter() - start, losses

    @torch.no_grad()
    def evaluate(self, model: TutorialProtoNet, draws: Sequence[Draw]) -> tuple[float, float]:
        """Mean query accuracy over `draws` -> (seconds, accuracy)."""
        model.eval()
        start = time.perf_counter()
        correct = []
        for draw in draws:
            support_x, support_y, query_x, query_y = self.load(draw)
            logits = model(support_x, support_y, query_x, len(draw[0]))
            correct.append((logits.argmax(1) == query_y).float().mean().item())
        return time.perf_counter() - start, sum(correct) / len(correct)


def draws_of(pool: ClassPool, n_way: int, k_shot: int, q_query: int, seed: int, episodes: int) -> list[Draw]:
    """The first `episodes` draws of the seeded sampler MetaScope's path uses (the same episodes)."""
    sampler = EpisodeSampler(pool, n_way, k_shot, q_query, seed)
    return [sampler.draw() for _ in range(episodes)]
