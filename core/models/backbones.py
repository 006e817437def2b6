"""Image encoders shared by the learners: Conv-4 as in the papers and a small ResNet-12."""

from __future__ import annotations

import torch
from torch import nn

from core.errors import ConfigError
from core.models.ghost import from_episode_channels, run_layers, to_episode_channels


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """conv3x3 -> batchnorm -> ReLU -> maxpool 2: the unit of Conv-4.

    Pooling runs before the ReLU: max and ReLU commute exactly (outputs and gradients alike), and
    the ReLU then touches a quarter of the values. Parameter names are unchanged (ReLU and pool have none).
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.MaxPool2d(2),
        nn.ReLU(inplace=True),
    )


def channels_last(module: nn.Module) -> nn.Module:
    """Store `module`'s 4-D weights channels-last (NHWC), in place; returns it.

    On CPU, oneDNN's convolutions and PyTorch's batchnorm and max-pool kernels vectorise over
    channels in NHWC: a Conv-4 training step took 25-30% less CPU time than in NCHW (measured
    with core.bench). Checkpoints are unaffected: the store writes contiguous copies, and
    load_state_dict copies into these tensors keeping their layout.
    """
    return module.to(memory_format=torch.channels_last)


def as_channels_last(x: torch.Tensor) -> torch.Tensor:
    """(n, c, h, w) in NHWC memory order (a no-op when it already is)."""
    return x.contiguous(memory_format=torch.channels_last)


def run_episodes(layers: nn.Module, x: torch.Tensor, episodes: int) -> torch.Tensor:
    """`layers` on images (n, c, h, w) channels-last -> the map (n, c', h', w').

    episodes > 1: x holds that many equal-size episodes back to back, each batch-normalised on its own
    statistics (see core.models.ghost); one pass either way.
    """
    if episodes == 1:
        return layers(as_channels_last(x))
    grouped = as_channels_last(to_episode_channels(x, episodes))
    return from_episode_channels(run_layers(layers, grouped, episodes), episodes)


class Conv4(nn.Module):
    """4 x [conv3x3-64, BN, ReLU, maxpool 2] (Vinyals et al., Snell et al.); flattens the map.

    (n, c, h, w) -> (n, out_dim); 28x28 gives a 1x1x64 map, 84x84 a 5x5x64 one. With episodes=E the
    n images are E equal episodes back to back, each normalised by its own batch statistics.
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, width: int = 64, global_pool: bool = False):
        super().__init__()
        self.encoder = nn.Sequential(*(conv_block(in_channels if i == 0 else width, width) for i in range(4)))
        side = image_size
        for _ in range(4):
            side //= 2
        if side < 1:
            raise ConfigError(f"images of {image_size} pixels are too small for Conv-4; use at least 16 pixels", "image_size")
        if global_pool:  # the last pool takes the whole map: an odd side (28 px: 3x3) loses no row or column
            self.encoder[-1][2] = nn.AdaptiveMaxPool2d(1)
            side = 1
        self.out_dim = width * side * side
        channels_last(self)

    def forward(self, x: torch.Tensor, episodes: int = 1) -> torch.Tensor:
        # flatten keeps the logical (c, h, w) order whatever the memory layout
        return run_episodes(self.encoder, x, episodes).flatten(1)


class Conv4Global(Conv4):
    """Conv-4 whose last block max-pools its whole map: a `width`-d embedding at any image size, indifferent to
    where in the image a stroke feature sits (the flattened map of a larger image is not)."""

    def __init__(self, in_channels: int = 1, image_size: int = 28, width: int = 64):
        super().__init__(in_channels, image_size, width, global_pool=True)


class ResidualBlock(nn.Module):
    """Three conv3x3-BN layers with a 1x1 shortcut, then maxpool 2 (the ResNet-12 unit)."""

    takes_episodes = True  # run_layers passes `episodes` (and channel-grouped maps) through

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(3):
            layers += [
                nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
            ]
            if i < 2:
                layers.append(nn.LeakyReLU(0.1, inplace=True))
        self.body = nn.Sequential(*layers)
        self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))
        # pool before the (monotonic) LeakyReLU: the same values and gradients, a quarter of the work
        self.out = nn.Sequential(nn.MaxPool2d(2, ceil_mode=True), nn.LeakyReLU(0.1, inplace=True))

    def forward(self, x: torch.Tensor, episodes: int = 1) -> torch.Tensor:
        return self.out(run_layers(self.body, x, episodes) + run_layers(self.shortcut, x, episodes))


class ResNet12(nn.Module):
    """A small ResNet-12 (4 residual blocks) with global average pooling: (n, c, h, w) -> (n, widths[-1]).

    episodes=E: the n images are E equal episodes, each normalised by its own batch statistics.

    Narrower than the 64-160-320-640 of the papers by default so it trains on a CPU.
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, widths: tuple[int, ...] = (64, 96, 128, 256)):
        super().__init__()
        chans = (in_channels, *widths)
        self.encoder = nn.Sequential(*(ResidualBlock(chans[i], chans[i + 1]) for i in range(len(widths))))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_dim = widths[-1]
        channels_last(self)

    def forward(self, x: torch.Tensor, episodes: int = 1) -> torch.Tensor:
        return self.pool(run_episodes(self.encoder, x, episodes)).flatten(1)


BACKBONES: dict[str, type[nn.Module]] = {"conv4": Conv4, "conv4-global": Conv4Global, "resnet12": ResNet12}


def backbone_class(name: str) -> type[nn.Module]:
    """The backbone registered as `name`; ConfigError listing the names otherwise."""
    if name not in BACKBONES:
        raise ConfigError(f"unknown backbone '{name}'; choose one of: {', '.join(BACKBONES)}", "backbone")
    return BACKBONES[name]


def make_backbone(name: str, in_channels: int, image_size: int) -> nn.Module:
    """Build a backbone by name; it exposes `.out_dim`, the embedding size."""
    return backbone_class(name)(in_channels=in_channels, image_size=image_size)
