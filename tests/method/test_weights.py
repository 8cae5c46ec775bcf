"""Eq. 5-9 on hand-made feature maps, against the numpy reference."""

import numpy as np
import pytest
import torch

from napari_resfuse.method.weights import activity, level_weights, max_select, smooth, upsample

from .reference import bilinear, weights_from_features
from .reference import smooth as ref_smooth


def test_l1_activity_is_sum_of_absolute_values():
    feat = torch.tensor([[[[1.0, -2.0]], [[-3.0, 4.0]]]])  # (1, C=2, 1, 2)
    assert activity(feat, "l1").flatten().tolist() == [4.0, 6.0]
    assert activity(feat, "l2").flatten().tolist() == pytest.approx([10**0.5, 20**0.5])


def test_smooth_is_the_3x3_kernel_with_zero_padding(rng):
    t = rng.random((7, 9))
    ours = smooth(torch.from_numpy(t)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(ours, ref_smooth(t), atol=1e-12)
    # A lone 1 in a corner: the zero border means the corner sees only 4 (its own weight).
    corner = np.zeros((3, 3))
    corner[0, 0] = 1.0
    out = smooth(torch.from_numpy(corner)[None, None])[0, 0].numpy()
    assert out[0, 0] == 4.0 and out[1, 1] == 1.0 and out[0, 1] == 2.0


def test_level_weights_are_ratios_and_half_where_both_zero():
    a = torch.tensor([[[[3.0, 0.0, 0.0]]]])
    b = torch.tensor([[[[1.0, 0.0, 2.0]]]])
    w1, w2 = level_weights(a, b)
    assert w1.flatten().tolist() == [0.75, 0.5, 0.0]
    assert w2.flatten().tolist() == [0.25, 0.5, 1.0]


@pytest.mark.parametrize(("h", "w", "out"), [(3, 4, (5, 7)), (2, 2, (64, 64)), (13, 17, (97, 131))])
def test_upsample_matches_reference_bilinear(rng, h, w, out):
    small = rng.random((h, w))
    ours = upsample(torch.from_numpy(small)[None, None], out)[0, 0].numpy()
    np.testing.assert_allclose(ours, bilinear(small, *out), atol=1e-12)


def test_max_select_returns_first_of_ties():
    stack = torch.tensor([[[[0.2, 0.7]], [[0.5, 0.7]], [[0.1, 0.3]]]])  # (1, L=3, 1, 2)
    values, index = max_select(stack)
    assert values.flatten().tolist() == pytest.approx([0.5, 0.7])
    assert index.flatten().tolist() == [1, 0]


def test_eq5_to_9_pipeline_on_hand_made_features(rng):
    """The package's steps chained as in fuse(), against the reference on random features."""
    shape = (37, 45)
    feats = [rng.random((2, 4, -(-37 // 2**i), -(-45 // 2**i))) for i in range(1, 6)]
    feats[2][:, :, 1, 1] = 0.0  # a zero spot: both activities vanish there
    ref_levels, ref_max = weights_from_features(feats, shape, "l1")
    ups = []
    for f in feats:
        s = smooth(activity(torch.from_numpy(f), "l1").double())
        w1, w2 = level_weights(s[:1], s[1:])
        ups.append(upsample(torch.cat([w1, w2]), shape))
    levels = torch.cat(ups, dim=1)  # (2, L, M, N)
    w_max, _ = max_select(levels)
    np.testing.assert_allclose(levels.numpy(), ref_levels, atol=1e-12)
    np.testing.assert_allclose(w_max.numpy(), ref_max, atol=1e-12)


def test_constant_activity_gives_half_weights():
    t = torch.full((2, 1, 5, 6), 3.0)
    s = smooth(t)
    w1, w2 = level_weights(s[:1], s[1:])
    assert torch.allclose(w1, torch.tensor(0.5)) and torch.allclose(w2, torch.tensor(0.5))
