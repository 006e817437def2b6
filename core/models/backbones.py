"""Image encoders shared by the learners: Conv-4 as in the papers and a small ResNet-12."""

from __future__ import annotations

import torch
from torch import nn


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """conv3x3 -> batchnorm -> ReLU -> maxpool 2: the unit of Conv-4."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class Conv4(nn.Module):
    """4 x [conv3x3-64, BN, ReLU, maxpool 2] (Vinyals et al., Snell et al.); flattens the map.

    (n, c, h, w) -> (n, out_dim); 28x28 gives a 1x1x64 map, 84x84 a 5x5x64 one.
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, width: int = 64):
        super().__init__()
        self.encoder = nn.Sequential(*(conv_block(in_channels if i == 0 else width, width) for i in range(4)))
        side = image_size
        for _ in range(4):
            side //= 2
        if side < 1:
            raise ValueError(f"image_size={image_size} is too small for Conv-4; use at least 16 pixels")
        self.out_dim = width * side * side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).flatten(1)


class ResidualBlock(nn.Module):
    """Three conv3x3-BN layers with a 1x1 shortcut, then maxpool 2 (the ResNet-12 unit)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(3):
            layers += [nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels)]
            if i < 2:
                layers.append(nn.LeakyReLU(0.1, inplace=True))
        self.body = nn.Sequential(*layers)
        self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))
        self.out = nn.Sequential(nn.LeakyReLU(0.1, inplace=True), nn.MaxPool2d(2, ceil_mode=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x) + self.shortcut(x))


class ResNet12(nn.Module):
    """A small ResNet-12 (4 residual blocks) with global average pooling: (n, c, h, w) -> (n, widths[-1]).

    Narrower than the 64-160-320-640 of the papers by default so it trains on a CPU.
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, widths: tuple[int, ...] = (64, 96, 128, 256)):
        super().__init__()
        chans = (in_channels, *widths)
        self.encoder = nn.Sequential(*(ResidualBlock(chans[i], chans[i + 1]) for i in range(len(widths))))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_dim = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.encoder(x)).flatten(1)


BACKBONES: dict[str, type[nn.Module]] = {"conv4": Conv4, "resnet12": ResNet12}


def make_backbone(name: str, in_channels: int, image_size: int) -> nn.Module:
    """Build a backbone by name; it exposes `.out_dim`, the embedding size."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone '{name}'; choose one of: {', '.join(BACKBONES)}")
    return BACKBONES[name](in_channels=in_channels, image_size=image_size)
