"""Eq. 1-2: box filter, its borders, and the base/detail split."""

import numpy as np
import pytest
import torch

from napari_resfuse.method.decompose import box_filter, decompose

from .reference import box_filter as ref_box_filter


def _t(a):
    return torch.from_numpy(np.asarray(a, np.float32))[None, None]


@pytest.mark.parametrize("shape", [(40, 50), (33, 97), (97, 131)])
@pytest.mark.parametrize("k", [3, 31])
def test_box_filter_matches_reference(rng, shape, k):
    image = rng.random(shape)
    ours = box_filter(_t(image), k)[0, 0].numpy()
    np.testing.assert_allclose(ours, ref_box_filter(image, k), atol=1e-6)


def test_box_filter_border_reflects_without_repeating_edge():
    # One row [0, 1, 2, 3, 4] (tall enough for the vertical pad): with k = 3, the mean at x = 0
    # reflects to (1 + 0 + 1) / 3, not the edge-repeating (0 + 0 + 1) / 3.
    image = np.tile(np.arange(5, dtype=np.float32), (5, 1))
    out = box_filter(_t(image), 3)[0, 0].numpy()
    assert out[2, 0] == pytest.approx(2 / 3)
    assert out[2, 4] == pytest.approx((3 + 4 + 3) / 3)
    assert out[2, 2] == pytest.approx(2.0)


def test_box_filter_falls_back_to_replicate_when_image_smaller_than_pad():
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = box_filter(_t(image), 9)[0, 0].numpy()  # pad 4 >= 3 and >= 4
    np.testing.assert_allclose(out, ref_box_filter(image.astype(np.float64), 9), atol=1e-5)


def test_decompose_sums_back_to_image(rng):
    image = _t(rng.random((48, 64)))
    base, detail = decompose(image, 31)
    torch.testing.assert_close(base + detail, image)
    np.testing.assert_allclose(
        base[0, 0].numpy(), ref_box_filter(image[0, 0].double().numpy(), 31), atol=1e-6
    )


def test_constant_image_has_zero_detail():
    base, detail = decompose(torch.full((1, 1, 40, 40), 0.3), 31)
    assert torch.allclose(base, torch.tensor(0.3))
    assert detail.abs().max() < 1e-6
