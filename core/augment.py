"""Image augmentation on tensors for training episodes: random affine, elastic distortion, stroke thickness.

Pure functions of (images, strengths, generator): the same generator state gives the same output, the shape
is kept, and strength 0 leaves images unchanged. Random numbers are drawn on the CPU generator and moved to
the images' device, so a run's seed fixes its augmentations on any device. No PIL: one grid_sample per batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from core.config import TrainConfig


@dataclass(frozen=True)
class Augment:
    """Strengths of each augmentation; 0 switches it off.

    rotation, shear: largest angle in degrees (drawn uniformly in +-);  scale: largest relative change (0.1: x0.9..x1.1);
    translate: largest shift as a fraction of the side;  elastic: largest displacement of a smooth random field,
    as a fraction of the side;  thickness: largest share (0..1) by which an image is blended toward its strokes
    dilated (thicker) or eroded (thinner) by one pixel.
    """

    rotation: float = 0.0
    shear: float = 0.0
    scale: float = 0.0
    translate: float = 0.0
    elastic: float = 0.0
    thickness: float = 0.0

    @property
    def active(self) -> bool:
        return any(v > 0 for v in (self.rotation, self.shear, self.scale, self.translate, self.elastic, self.thickness))


def augment_images(images: torch.Tensor, augment: Augment, generator: torch.Generator) -> torch.Tensor:
    """Randomly distorted copies of float images (n, c, h, w), bright strokes on a dark (0) background."""
    if not augment.active or images.shape[0] == 0:
        return images
    out = images
    if augment.rotation or augment.shear or augment.scale or augment.translate or augment.elastic:
        grid = affine_grid(images.shape, augment, generator).to(images.device)
        if augment.elastic:
            grid = grid + elastic_field(images.shape, augment.elastic, generator).to(images.device)
        out = F.grid_sample(out, grid.to(out.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)
    if augment.thickness:
        out = change_thickness(out, augment.thickness, generator)
    return out


def _uniform(n: int, bound: float, generator: torch.Generator) -> torch.Tensor:
    """(n,) uniform in [-bound, bound]."""
    return (torch.rand(n, generator=generator) * 2 - 1) * bound


def affine_grid(shape: torch.Size, augment: Augment, generator: torch.Generator) -> torch.Tensor:
    """Sampling grid (n, h, w, 2) of a random rotation, shear, scale and translation per image."""
    n = shape[0]
    angle = _uniform(n, math.radians(augment.rotation), generator)
    shear = _uniform(n, math.radians(augment.shear), generator)
    scale = 1 + _uniform(n, augment.scale, generator)
    shift = torch.stack([_uniform(n, 2 * augment.translate, generator) for _ in range(2)], 1)  # grid units span 2
    cos, sin, tan = angle.cos(), angle.sin(), shear.tan()
    # rotation @ shear(x by y), divided by the scale: the grid maps output to input coordinates
    theta = torch.stack([torch.stack([cos, cos * tan - sin], 1), torch.stack([sin, sin * tan + cos], 1)], 1) / scale.view(n, 1, 1)
    theta = torch.cat([theta, shift.unsqueeze(2)], 2)  # (n, 2, 3)
    return F.affine_grid(theta, list(shape), align_corners=False)


def elastic_field(shape: torch.Size, strength: float, generator: torch.Generator, control: int = 4) -> torch.Tensor:
    """A smooth random displacement (n, h, w, 2) in grid units: a control x control field, upsampled bicubically."""
    n, _, h, w = shape
    coarse = (torch.rand(n, 2, control, control, generator=generator) * 2 - 1) * (2 * strength)
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True).permute(0, 2, 3, 1)


def change_thickness(images: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Blend each image toward its one-pixel dilation (thicker strokes) or erosion (thinner) by a random share in +-strength."""
    amount = _uniform(images.shape[0], min(strength, 1.0), generator).to(images.device, images.dtype).view(-1, 1, 1, 1)
    dilated = F.max_pool2d(images, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-images, 3, stride=1, padding=1)
    return images + amount.clamp(min=0) * (dilated - images) + (-amount).clamp(min=0) * (eroded - images)


class AugmentedSampler:
    """An episode sampler whose episodes come out with every image augmented independently.

    Wraps any sampler with .sample(), .sample_batch(), .shape and .pool (the Trainer needs nothing else); the
    augmentations follow from `seed` alone, so a run's seed fixes them.
    """

    def __init__(self, sampler, augment: Augment, seed: int):
        self.sampler, self.augment = sampler, augment
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def shape(self):
        return self.sampler.shape

    @property
    def pool(self):
        return self.sampler.pool

    def draw(self):
        return self.sampler.draw()

    def sample(self):
        episode = self.sampler.sample()
        n_support = episode.support_x.shape[0]
        images = augment_images(torch.cat([episode.support_x, episode.query_x]), self.augment, self.generator)
        return replace(episode, support_x=images[:n_support], query_x=images[n_support:])

    def skip(self, episodes: int) -> None:
        """Pass over episodes without building them (a torchrun rank's share of a meta-batch; the augmentation's
        generator is not advanced, so ranks augment their own episodes with their own draws)."""
        self.sampler.skip(episodes)

    def state(self) -> dict[str, torch.Tensor]:
        """The episode stream's state (EpisodeSampler.state) and the augmentation generator's: resuming continues both."""
        return {**self.sampler.state(), "augment_generator": self.generator.get_state()}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        self.sampler.load_state(state)
        self.generator.set_state(state["augment_generator"].to(torch.uint8).contiguous())

    def sample_batch(self, episodes: int):
        """The wrapped sampler's next `episodes` episodes, stacked, every image augmented."""
        batch = self.sampler.sample_batch(episodes)
        support, query = batch.support_x, batch.query_x  # (E, s, c, h, w), (E, q, c, h, w)
        images = augment_images(torch.cat([support.flatten(0, 1), query.flatten(0, 1)]), self.augment, self.generator)
        n_support = support.shape[0] * support.shape[1]
        return replace(batch, support_x=images[:n_support].view(support.shape), query_x=images[n_support:].view(query.shape))


def augment_from(train: TrainConfig) -> Augment:
    """The augmentation a training config asks for (all zero: none)."""
    return Augment(train.aug_rotation, train.aug_shear, train.aug_scale, train.aug_translate, train.aug_elastic, train.aug_thickness)
