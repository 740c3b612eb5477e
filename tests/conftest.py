"""Shared test helpers: random weights and BN statistics so that every code path carries information."""
from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def randomize_model(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BN random affine parameters and running statistics, every conv/linear fresh weights of a
    variance-preserving scale, and the navigation random logits, so that no block is an identity and the
    constant maps of the focal blocks are non-trivial."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                mod.weight.copy_(0.5 + 0.5 * torch.rand(c, generator=g))
                mod.bias.copy_(0.2 * torch.randn(c, generator=g))
                mod.running_mean.copy_(0.2 * torch.randn(c, generator=g))
                mod.running_var.copy_(0.5 + torch.rand(c, generator=g))
            elif isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = mod.weight[0].numel()
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) / fan_in ** 0.5)
                if mod.bias is not None:
                    mod.bias.copy_(0.5 * torch.randn(mod.bias.shape, generator=g))
    return model


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(1234)
