"""Shared fixtures. Tests never download weights: they use seeded random weights or state_dict
files that they write themselves."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def textured_pair(shape=(64, 96), seed=0):
    """A small uint8 pair with distinct structure in each image."""
    g = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    ir = 60 + 40 * np.exp(-((yy - shape[0] / 2) ** 2 + (xx - shape[1] / 3) ** 2) / 60.0)
    ir = ir + 8 * g.standard_normal(shape)
    vis = 120 + 50 * np.sin(xx / 2.5) * np.cos(yy / 3.5) + 10 * g.standard_normal(shape)
    return np.clip(ir, 0, 255).astype(np.uint8), np.clip(vis, 0, 255).astype(np.uint8)


@pytest.fixture
def small_pair():
    return textured_pair()
