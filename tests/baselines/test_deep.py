"""The deep-feature baselines (Li et al. 2018 VGG-19, Li et al. 2019 ResNet-50 + ZCA) with seeded
random weights: closed-form properties, each step against a plain numpy computation, input checks.
"""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from napari_resfuse.baselines import BASELINES, DEEP_BASELINES
from napari_resfuse.baselines.deep import (
    LI2018_LAYERS,
    imresize_bicubic,
    resnet50_zca,
    vgg19_li2018,
    zca_whiten,
)
from napari_resfuse.method.backbones import get_feature_network
from napari_resfuse.method.published_code import tikhonov_lowpass

from ..conftest import textured_pair

RANDOM = {"weights": "random", "seed": 0, "device": "cpu"}


def _unit_pair(shape, seed=0):
    ir, vis = textured_pair(shape, seed=seed)
    return ir / 255.0, vis / 255.0


# --------------------------------------------------------------------------------------------
# Registry and lazy import
# --------------------------------------------------------------------------------------------


def test_registry_holds_the_deep_baselines_and_calls_them():
    assert set(DEEP_BASELINES) == {"vgg19_li2018", "resnet50_zca"} <= set(BASELINES)
    ir, vis = _unit_pair((32, 40))
    np.testing.assert_array_equal(
        BASELINES["resnet50_zca"](ir, vis, **RANDOM), resnet50_zca(ir, vis, **RANDOM)
    )


def test_importing_the_baselines_does_not_import_the_deep_module():
    code = (
        "import sys, napari_resfuse.baselines as b; "
        "print('napari_resfuse.baselines.deep' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------------------------
# Closed-form behaviour
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("function", [vgg19_li2018, resnet50_zca])
@pytest.mark.parametrize("shape", [(48, 64), (37, 53)])
def test_identical_inputs_give_that_input_back(function, shape):
    image, _ = _unit_pair(shape, seed=3)
    fused = function(image, image, **RANDOM)
    assert fused.shape == shape and fused.dtype == np.float32
    np.testing.assert_allclose(fused, image, atol=1e-6)


@pytest.mark.parametrize("shape", [(37, 53), (16, 17), (64, 96)])
def test_vgg_weights_are_ratios_on_every_pixel_of_odd_sizes(shape):
    ir, vis = _unit_pair(shape)
    result = vgg19_li2018(ir, vis, full=True, **RANDOM)
    assert result.fused.shape == shape and result.fused.dtype == np.float32
    assert np.all(np.isfinite(result.fused))
    assert result.levels == LI2018_LAYERS
    assert result.weights.shape == (2, 4, *shape)
    assert result.weights.min() >= 0.0 and result.weights.max() <= 1.0
    # Sum 1 everywhere, the last rows and columns included: with MatConvNet's ceil-rounding
    # pools every level's blocks reach the border (floor rounding would leave zeros there).
    np.testing.assert_allclose(result.weights.sum(axis=0), 1.0, atol=1e-6)


@pytest.mark.parametrize("level", ["res4f", "res5c"])
@pytest.mark.parametrize("shape", [(37, 53), (64, 96)])
def test_zca_weights_sum_to_one_and_weight_the_sources(level, shape):
    ir, vis = _unit_pair(shape, seed=1)
    result = resnet50_zca(ir, vis, level=level, full=True, **RANDOM)
    assert result.levels == (level,)
    assert result.weights.shape == (2, 1, *shape)
    np.testing.assert_allclose(result.weights.sum(axis=0), 1.0, atol=1e-6)
    w_ir, w_vis = result.weights[:, 0].astype(np.float64)
    np.testing.assert_allclose(result.fused, w_ir * ir + w_vis * vis, atol=1e-6)


def test_random_weights_are_reproducible_and_seeded():
    ir, vis = _unit_pair((32, 48), seed=2)
    first = vgg19_li2018(ir, vis, **RANDOM)
    np.testing.assert_array_equal(first, vgg19_li2018(ir, vis, **RANDOM))
    other = vgg19_li2018(ir, vis, weights="random", seed=1, device="cpu")
    assert np.abs(first - other).max() > 1e-4


def test_uint8_input_is_divided_by_255():
    ir, vis = textured_pair((32, 40), seed=4)
    np.testing.assert_allclose(
        resnet50_zca(ir, vis, **RANDOM), resnet50_zca(ir / 255.0, vis / 255.0, **RANDOM), atol=1e-6
    )


# --------------------------------------------------------------------------------------------
# Each step of vgg19_li2018 against numpy (Li, Wu & Kittler's fusion_strategy.m)
# --------------------------------------------------------------------------------------------


def _mean3_zero_padded(a):
    """sum(sum(A(i-1:i+1, j-1:j+1))) / 9 on the zero-bordered map, as the MATLAB loop does."""
    h, w = a.shape
    padded = np.zeros((h + 2, w + 2))
    padded[1:-1, 1:-1] = a
    out = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            out[i, j] = padded[i : i + 3, j : j + 3].sum() / 9.0
    return out


def test_vgg_weight_rule_and_max_selection_match_a_numpy_transcription():
    shape = (24, 32)  # even: torchvision's floor pools give the ceil sizes too
    ir, vis = _unit_pair(shape, seed=5)
    result = vgg19_li2018(ir, vis, full=True, **RANDOM)

    sources = torch.from_numpy(np.stack([ir, vis])[:, None])
    low, detail = (t[:, 0].numpy() for t in tikhonov_lowpass(sources))
    network = get_feature_network(
        "vgg19", "random", seed=0, nodes=("features.0", "features.5", "features.10", "features.19")
    )
    with torch.inference_mode():
        images = torch.from_numpy(detail[:, None]).float().expand(-1, 3, -1, -1)
        features = network.module(images)
    for level, (node, unit) in enumerate((("features.0", 1), ("features.5", 2))):
        l1 = np.abs(features[node].double().numpy()).sum(axis=1)  # (2, h, w)
        a_ir, a_vis = _mean3_zero_padded(l1[0]), _mean3_zero_padded(l1[1])
        w_ir = a_ir / (a_ir + a_vis)
        expected = np.kron(w_ir, np.ones((unit, unit)))[: shape[0], : shape[1]]
        np.testing.assert_allclose(result.weights[0, level], expected, atol=1e-6)

    w = result.weights.astype(np.float64)
    candidates = w[0] * detail[0] + w[1] * detail[1]  # (levels, H, W)
    expected_fused = (low[0] + low[1]) / 2.0 + candidates.max(axis=0)
    np.testing.assert_allclose(result.fused, expected_fused, atol=1e-5)


def test_vgg_layers_select_the_levels():
    ir, vis = _unit_pair((24, 32))
    result = vgg19_li2018(ir, vis, layers=("conv1_1", "conv2_1"), full=True, **RANDOM)
    assert result.levels == ("conv1_1", "conv2_1")
    assert result.weights.shape == (2, 2, 24, 32)


# --------------------------------------------------------------------------------------------
# ZCA, imresize and the ResNet-50 weight maps against numpy
# --------------------------------------------------------------------------------------------


def _zca_reference(matrix, eps):
    """zca.m for one channel, with numpy's SVD."""
    mean = matrix.mean()
    if mean == 0:
        return matrix
    centred = matrix - mean
    u, s, _ = np.linalg.svd(centred @ centred.T)
    return u @ np.diag(1.0 / np.sqrt(s + eps)) @ u.T @ centred


def test_zca_matches_an_svd_computation():
    rng = np.random.default_rng(7)
    stack = rng.random((4, 5, 7)) * 3.0
    stack[1] = rng.integers(-3, 4, (5, 7))
    stack[1, 0, 0] -= stack[1].sum()  # integers: the mean is exactly 0
    assert stack[1].mean() == 0
    stack[3] = rng.random((5, 7)) @ np.diag([1, 1, 1, 1, 0, 0, 0.0])  # rank-deficient rows
    for eps in (1e-5, 0.3):
        out = zca_whiten(stack, epsilon=eps)
        assert out.shape == stack.shape and out.dtype == np.float64
        for k in range(4):
            np.testing.assert_allclose(out[k], _zca_reference(stack[k], eps), rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(zca_whiten(stack)[1], stack[1])


def test_zca_whitens_the_rows():
    # With eps -> 0, rows of the whitened centred matrix are orthonormal: Y Yᵀ = I.
    matrix = np.random.default_rng(8).random((4, 50))
    out = zca_whiten(matrix, epsilon=1e-12)
    np.testing.assert_allclose(out @ out.T, np.eye(4), atol=1e-6)


def _imresize_reference(a, rows, cols):
    """MATLAB's imresize (bicubic) written per output pixel, over the mirrored signal."""

    def cubic(x):
        x = abs(x)
        if x <= 1:
            return 1.5 * x**3 - 2.5 * x**2 + 1
        if x <= 2:
            return -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2
        return 0.0

    def resize_1d(vector, n_out):
        n_in = len(vector)
        scale = n_out / n_in
        stretch = min(scale, 1.0)  # shrinking stretches the kernel
        out = np.zeros(n_out)
        for x in range(1, n_out + 1):
            u = x / scale + 0.5 * (1 - 1 / scale)
            total = value = 0.0
            for j in range(int(np.floor(u - 2 / stretch)), int(np.ceil(u + 2 / stretch)) + 1):
                weight = stretch * cubic(stretch * (u - j))
                k = (j - 1) % (2 * n_in)  # mirror: 1..n, n..1, 1..n, ...
                k = k if k < n_in else 2 * n_in - 1 - k
                total += weight
                value += weight * vector[k]
            out[x - 1] = value / total
        return out

    tmp = np.array([resize_1d(row, cols) for row in a])
    return np.array([resize_1d(col, rows) for col in tmp.T]).T


@pytest.mark.parametrize(("shape", "size"), [((3, 4), (7, 9)), ((9, 7), (4, 3)), ((5, 6), (5, 6))])
def test_imresize_matches_a_per_pixel_transcription(shape, size):
    a = np.random.default_rng(9).random(shape)
    np.testing.assert_allclose(imresize_bicubic(a, size), _imresize_reference(a, *size), atol=1e-12)


def test_imresize_hand_values_identity_and_pillow_interior():
    # imresize([0 1], [1 4]): weights h(1.75), h(0.75), h(0.25), h(1.25) of the a = -0.5 kernel.
    np.testing.assert_allclose(
        imresize_bicubic(np.array([[0.0, 1.0]]), (1, 4)),
        [[-0.09375, 0.203125, 0.796875, 1.09375]],
        atol=1e-12,
    )
    a = np.random.default_rng(10).random((6, 8)).astype(np.float32)
    np.testing.assert_array_equal(imresize_bicubic(a, (6, 8)), a)
    # Pillow's bicubic is the same kernel with clamped borders: equal away from the border.
    pil = np.asarray(Image.fromarray(a, mode="F").resize((32, 24), Image.BICUBIC))
    np.testing.assert_allclose(
        imresize_bicubic(a, (24, 32))[6:-6, 6:-6], pil[6:-6, 6:-6], atol=1e-5
    )


def _box_l1_reference(features, block):
    """l1_norm of whitening_norm.m: mean over the block of sum(|x|, channels), zero padded."""
    c, h, w = features.shape
    pad = block // 2
    padded = np.zeros((c, h + 2 * pad, w + 2 * pad))
    padded[:, pad : pad + h, pad : pad + w] = features
    out = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            out[i, j] = np.abs(padded[:, i : i + block, j : j + block]).sum() / block**2
    return out


def test_resnet50_zca_weight_maps_match_a_numpy_computation():
    shape = (40, 56)
    ir, vis = _unit_pair(shape, seed=6)
    result = resnet50_zca(ir, vis, full=True, **RANDOM)
    network = get_feature_network("resnet50", "random", seed=0, nodes=("layer3",))
    with torch.inference_mode():
        images = torch.from_numpy(np.stack([ir, vis])[:, None]).float().expand(-1, 3, -1, -1)
        features = network.module(images)["layer3"].double().numpy()  # (2, 1024, 3, 4)
    activity = []
    for k in range(2):
        whitened = np.stack([_zca_reference(ch, 1e-5) for ch in features[k]])
        activity.append(_imresize_reference(_box_l1_reference(whitened, 5), *shape))
    expected = activity[0] / (activity[0] + activity[1])
    np.testing.assert_allclose(result.weights[0, 0], expected, atol=1e-5)


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("function", [vgg19_li2018, resnet50_zca])
def test_bad_images_are_rejected_with_clear_messages(function):
    with pytest.raises(ValueError, match=r"infrared \(20, 24\).*visible \(20, 25\)"):
        function(np.zeros((20, 24)), np.zeros((20, 25)), **RANDOM)
    with pytest.raises(ValueError, match="2-D"):
        function(np.zeros((20, 24, 3)), np.zeros((20, 24, 3)), **RANDOM)
    bad = np.zeros((20, 24))
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        function(bad, np.zeros((20, 24)), **RANDOM)


def test_bad_options_are_rejected():
    ir, vis = _unit_pair((32, 32))
    with pytest.raises(ValueError, match="at least 16 x 16"):
        vgg19_li2018(ir[:15], vis[:15], **RANDOM)
    with pytest.raises(ValueError, match="layers must be distinct names"):
        vgg19_li2018(ir, vis, layers=("conv9_1",), **RANDOM)
    with pytest.raises(ValueError, match="level must be one of"):
        resnet50_zca(ir, vis, level="res3d", **RANDOM)
    with pytest.raises(ValueError, match="block must be an odd integer"):
        resnet50_zca(ir, vis, block=4, **RANDOM)
    with pytest.raises(ValueError, match="epsilon"):
        zca_whiten(np.ones((2, 3)), epsilon=0)
    with pytest.raises(ValueError, match="size must be two positive"):
        imresize_bicubic(np.ones((2, 3)), (0, 3))
