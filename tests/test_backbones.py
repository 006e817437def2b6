"""Backbones: Conv-4 with a global last pool sees the whole map and gives the same size at any image size."""

from __future__ import annotations

import torch

from core.models.backbones import Conv4, Conv4Global


def test_global_pool_embedding_is_64_wide_at_any_size():
    for size in (28, 56, 84):
        net = Conv4Global(1, size)
        assert net.out_dim == 64 and net(torch.rand(2, 1, size, size)).shape == (2, 64)
    assert Conv4(1, 56).out_dim == 64 * 3 * 3  # the plain one flattens its 3x3 map


def test_global_pool_is_the_max_over_the_whole_last_map_where_plain_conv4_reads_its_top_left_2x2():
    torch.manual_seed(0)
    plain, whole = Conv4(1, 28).eval(), Conv4Global(1, 28).eval()
    whole.load_state_dict(plain.state_dict())  # the same weights: a pool has none
    x = torch.rand(4, 1, 28, 28)
    last = plain.encoder[-1]
    with torch.no_grad():
        before_pool = last[1](last[0](plain.encoder[:3](x)))  # (4, 64, 3, 3): conv and batch norm of the last block
        assert before_pool.shape[-2:] == (3, 3)
        torch.testing.assert_close(whole(x), before_pool.amax((2, 3)).relu())
        torch.testing.assert_close(plain(x), before_pool[..., :2, :2].amax((2, 3)).relu())
