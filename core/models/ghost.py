"""E episodes through one forward pass, each normalised by its own batch-norm statistics (ghost batch norm).

Layout: inside a backbone the E episodes travel as channel groups, (n, E*C, h, w): episode e owns
channels e*C..(e+1)*C-1. Then
- a convolution is one grouped convolution (groups=E) whose weight is the layer's own repeated E times,
  or a different weight per episode (MAML's fast weights, shape (E, *weight.shape)): the same call;
- batch norm is PyTorch's own kernel over E*C channels, so each episode's statistics span its images only;
- pooling and activations act per channel, so they need nothing.
Running statistics are updated as E sequential training steps would update them.

Chosen among the layouts measured on this project's 2-core CPU (Conv-4, 8 episodes of 80 images, float32,
training step, best of 6-8 interleaved rounds on a loaded machine): grouped as here 0.9x the speed of plain
batching (one batch norm over all 640 images, the wrong statistics, as an upper bound); one convolution
with per-episode statistics by view, var_mean and addcmul 0.5x (more passes over the activations, forward
and backward); by permuting to channel groups around PyTorch's kernel 0.65x. The same runs found one
episode at a time faster still on that CPU, hence TrainConfig.batch_episodes ('auto': batch on a GPU).
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call


def to_episode_channels(x: torch.Tensor, episodes: int) -> torch.Tensor:
    """Episode-major (E*n, C, *s) -> channel groups (n, E*C, *s)."""
    if x.shape[0] % episodes:
        raise ValueError(f"{x.shape[0]} rows do not split into {episodes} equal episodes; every episode needs the same size")
    n = x.shape[0] // episodes
    return x.reshape(episodes, n, *x.shape[1:]).transpose(0, 1).reshape(n, episodes * x.shape[1], *x.shape[2:])


def from_episode_channels(x: torch.Tensor, episodes: int) -> torch.Tensor:
    """Channel groups (n, E*C, *s) -> episode-major (E*n, C, *s)."""
    n, channels, rest = x.shape[0], x.shape[1] // episodes, x.shape[2:]
    return x.reshape(n, episodes, channels, *rest).transpose(0, 1).reshape(episodes * n, channels, *rest)


def per_episode(weight: torch.Tensor | None, episodes: int, dims: int) -> torch.Tensor | None:
    """A layer's `dims`-D weight shared by all episodes, or (E, ...) one per episode -> (E*shape[0], ...)."""
    if weight is None:
        return None
    if weight.dim() == dims + 1:
        if weight.shape[0] != episodes:
            raise ValueError(f"per-episode weight for {weight.shape[0]} episodes, but the batch holds {episodes}")
        return weight.flatten(0, 1)
    return weight.repeat(episodes, *([1] * (dims - 1)))


def episode_conv2d(conv: nn.Conv2d, x: torch.Tensor, episodes: int) -> torch.Tensor:
    """`conv` on channel-grouped x (n, E*C_in, h, w) -> (n, E*C_out, h', w'), one grouped call."""
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise ValueError(f"{conv}: batched episodes support numeric zero padding only")
    weight, bias = per_episode(conv.weight, episodes, 4), per_episode(conv.bias, episodes, 1)
    return F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups * episodes)


def episode_batch_norm(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor, episodes: int) -> torch.Tensor:
    """`bn` on channel-grouped x (n, E*C, ...): each episode normalised by its own statistics.

    In training with running statistics, the E episodes' batch statistics update them in order, as
    E sequential steps would; in evaluation the running statistics normalise every episode.
    """
    weight, bias = per_episode(bn.weight, episodes, 1), per_episode(bn.bias, episodes, 1)
    if not bn.training and bn.running_mean is not None:
        mean, var = bn.running_mean.repeat(episodes), bn.running_var.repeat(episodes)
        return F.batch_norm(x, mean, var, weight, bias, False, 0.0, bn.eps)
    if not (bn.training and bn.track_running_stats and bn.running_mean is not None):
        return F.batch_norm(x, None, None, weight, bias, True, 0.0, bn.eps)
    # momentum 1 makes the kernel write each channel's batch mean and unbiased variance, in the same pass
    mean = torch.zeros(x.shape[1], device=x.device, dtype=bn.running_mean.dtype)
    var = torch.ones_like(mean)
    out = F.batch_norm(x, mean, var, weight, bias, True, 1.0, bn.eps)
    update_running_stats(bn, mean.view(episodes, -1), var.view(episodes, -1))
    return out


@torch.no_grad()
def update_running_stats(bn: nn.modules.batchnorm._BatchNorm, mean: torch.Tensor, var: torch.Tensor) -> None:
    """Fold batch statistics (E, C) into `bn`'s running ones as E sequential steps would, first episode first."""
    episodes = mean.shape[0]
    if bn.momentum is None:  # a cumulative average: each step weighs 1 / (steps so far)
        for e in range(episodes):
            bn.num_batches_tracked.add_(1)
            factor = 1.0 / float(bn.num_batches_tracked)
            bn.running_mean.lerp_(mean[e], factor)
            bn.running_var.lerp_(var[e], factor)
        return
    m = bn.momentum
    # r_E = (1-m)^E r_0 + sum_e m (1-m)^(E-1-e) s_e; the weights built on the device (no host copy in a step)
    weights = m * (1 - m) ** torch.arange(episodes - 1, -1, -1, device=mean.device, dtype=mean.dtype)
    bn.running_mean.mul_((1 - m) ** episodes).add_(weights @ mean)
    bn.running_var.mul_((1 - m) ** episodes).add_(weights @ var)
    bn.num_batches_tracked.add_(episodes)


def ghost_batch_norm(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor, episodes: int) -> torch.Tensor:
    """`bn` on episode-major x (E*n, C, ...), each episode on its own statistics -> the same shape."""
    if episodes == 1:
        return bn(x)
    return from_episode_channels(episode_batch_norm(bn, to_episode_channels(x, episodes), episodes), episodes)


def run_layers(layer: nn.Module, x: torch.Tensor, episodes: int) -> torch.Tensor:
    """Apply `layer` (a Sequential, a conv, a batch norm, a per-channel op, or a module taking `episodes`) to x.

    x is channel-grouped (n, E*C, ...) when episodes > 1, a plain batch otherwise.
    """
    if episodes == 1:
        return layer(x)
    if isinstance(layer, nn.Sequential):
        for part in layer:
            x = run_layers(part, x, episodes)
        return x
    if isinstance(layer, nn.Conv2d):
        return episode_conv2d(layer, x, episodes)
    if isinstance(layer, nn.modules.batchnorm._BatchNorm):
        return episode_batch_norm(layer, x, episodes)
    if getattr(layer, "takes_episodes", False):
        return layer(x, episodes)
    if any(True for _ in layer.parameters(recurse=False)) or len(list(layer.children())):
        raise ValueError(f"{type(layer).__name__}: batched episodes know Conv2d, BatchNorm and per-channel layers; run it per episode")
    return layer(x)  # pooling, activations: per channel, so indifferent to which episode owns a channel


def call_backbone(backbone: nn.Module, x: torch.Tensor, episodes: int = 1, weights: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """backbone(x) for one episode, backbone(x, episodes) for E back to back; at fast `weights` (functional_call) when given."""
    if episodes > 1 and "episodes" not in inspect.signature(backbone.forward).parameters:
        raise ValueError(f"{type(backbone).__name__} cannot run episodes as one batch (its forward takes no `episodes`); use meta_batch 1")
    args = (x,) if episodes == 1 else (x, episodes)
    return backbone(*args) if weights is None else functional_call(backbone, weights, args)
