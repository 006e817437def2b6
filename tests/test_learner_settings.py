"""Each learner declares the settings it reads (`settings`): a declared one changes what it computes, any other does not.

The Train page offers exactly the declared settings, so this is what keeps the form honest.
"""

from __future__ import annotations

from dataclasses import fields, replace

import pytest
import torch

from core.config import LearnerConfig
from core.learners import LEARNERS, make_learner

N_WAY, K_SHOT, Q_QUERY, SIZE = 3, 1, 2, 16
BASE = LearnerConfig(inner_steps=2, hidden=16)  # small, so every learner runs in milliseconds
OTHER = {  # a second value of every setting
    "backbone": "resnet12",
    "distance": "cosine",
    "margin": 0.05,
    "fce": True,
    "relation_hidden": 4,
    "inner_steps": 3,
    "inner_lr": 0.3,
    "first_order": True,
    "hidden": 8,
}


def signature(config: LearnerConfig) -> tuple:
    """What a learner built from `config` computes on a fixed episode: parameter shapes, loss, and its gradients."""
    g = torch.Generator().manual_seed(0)
    support_x, query_x = torch.rand(N_WAY * K_SHOT, 1, SIZE, SIZE, generator=g), torch.rand(N_WAY * Q_QUERY, 1, SIZE, SIZE, generator=g)
    support_y, query_y = torch.arange(N_WAY).repeat_interleave(K_SHOT), torch.arange(N_WAY).repeat_interleave(Q_QUERY)
    learner = make_learner(config, 1, SIZE, seed=0).train()
    shapes = tuple((k, tuple(v.shape)) for k, v in learner.state_dict().items())
    loss, _ = learner.episode_loss(support_x, support_y, query_x, query_y, N_WAY)
    params = [p for p in learner.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True) if loss.requires_grad else ()
    return shapes, round(float(loss.detach()), 6), tuple(round(float(g.norm()), 6) for g in grads if g is not None)


def test_every_setting_has_a_second_value_here():
    assert set(OTHER) == {f.name for f in fields(LearnerConfig)} - {"method"}


@pytest.mark.parametrize("method", sorted(LEARNERS))
def test_declared_settings_change_the_learner_and_the_others_do_not(method):
    cls = LEARNERS[method]
    assert set(cls.settings) <= set(OTHER), cls.settings
    base = signature(replace(BASE, method=method))
    for setting, value in OTHER.items():
        changed = signature(replace(BASE, method=method, **{setting: value})) != base
        assert changed == (setting in cls.settings), f"{method}: {setting} is {'read' if changed else 'not read'}"
