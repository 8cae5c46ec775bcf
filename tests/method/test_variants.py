"""Backbones, norms and variant="published-code", each against an independent computation."""

import numpy as np
import pytest
import torch
from scipy import ndimage
from torchvision.models import resnet152

from napari_resfuse import FusionOptions, fuse
from napari_resfuse.method import published_code as pc

from ..conftest import textured_pair
from .reference import reference_fusion

RANDOM = {"weights": "random", "seed": 0, "device": "cpu"}


@pytest.mark.parametrize("backbone", ["resnet50", "resnet101", "vgg19"])
@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_backbones_and_norms_match_reference(backbone, norm):
    ir, vis = textured_pair((48, 64), seed=4)
    ours = fuse(ir, vis, backbone=backbone, norm=norm, **RANDOM)
    ref = reference_fusion(ir, vis, seed=0, norm=norm, backbone=backbone)
    assert ours.levels == FusionOptions(backbone=backbone).layers
    np.testing.assert_allclose(ours.fused_unclipped, ref["fused"], atol=1e-4)
    np.testing.assert_allclose(ours.level_weights, ref["level_weights"], atol=1e-3)
    assert ours.params["backbone"] == backbone


def test_vgg19_levels_are_li_wu_kittler_relus():
    assert FusionOptions(backbone="vgg19").layers == (
        "relu1_1",
        "relu2_1",
        "relu3_1",
        "relu4_1",
        "relu5_1",
    )
    with pytest.raises(ValueError, match="subset"):
        FusionOptions(backbone="vgg19", layers=("conv1",))
    with pytest.raises(ValueError, match="resnet152 only"):
        FusionOptions(backbone="vgg19", variant="published-code")


# --- published-code pieces, each against a plain numpy transcription of the MATLAB code ---


def _matlab_lowpass(s, lam=5.0, npad=16):
    """lowpass.m: fft2 of [-1 1] kernels padded to the image, Tikhonov solve, crop."""
    sp = np.pad(s, npad, mode="symmetric")  # padarray(..., 'symmetric')
    grv = np.zeros(sp.shape)
    grv[0, 0], grv[0, 1] = -1, 1
    gcv = np.zeros(sp.shape)
    gcv[0, 0], gcv[1, 0] = -1, 1
    gr, gc = np.fft.fft2(grv), np.fft.fft2(gcv)
    a = 1 + lam * np.conj(gr) * gr + lam * np.conj(gc) * gc
    slp = np.real(np.fft.ifft2(np.fft.fft2(sp) / a))
    sl = slp[npad:-npad, npad:-npad]
    return sl, s - sl


def test_symmetric_pad_repeats_the_edge_pixel(rng):
    a = rng.random((5, 7))
    ours = pc.symmetric_pad(torch.from_numpy(a)[None, None], 4)[0, 0].numpy()
    np.testing.assert_array_equal(ours, np.pad(a, 4, mode="symmetric"))


def test_tikhonov_lowpass_matches_sporco(rng):
    s = rng.random((37, 45))
    low, high = pc.tikhonov_lowpass(torch.from_numpy(s)[None, None])
    ref_low, ref_high = _matlab_lowpass(s)
    np.testing.assert_allclose(low[0, 0].numpy(), ref_low, atol=1e-10)
    np.testing.assert_allclose(high[0, 0].numpy(), ref_high, atol=1e-10)


def test_squared_activity_is_conv2_same_of_squared_l1(rng):
    feat = rng.standard_normal((1, 4, 6, 9))
    ours = pc.squared_activity(torch.from_numpy(feat))[0, 0].numpy()
    l1 = np.abs(feat[0]).sum(axis=0)
    w = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16
    np.testing.assert_allclose(ours, ndimage.convolve(l1**2, w, mode="constant"), rtol=1e-5)


def test_block_replication_with_the_codes_units():
    m = torch.arange(6.0).view(1, 1, 2, 3)
    out = pc.block_replicate(m, 31, (70, 80))[0, 0].numpy()
    expected = np.zeros((70, 80))
    big = np.kron(np.arange(6.0).reshape(2, 3), np.ones((31, 31)))  # 62 x 93
    expected[:62, :80] = big[:, :80]
    np.testing.assert_array_equal(out, expected)


def _matlab_fusion_strategy(e1, e2, d1, d2, unit):
    """my_fusion_strategy.m with its loops: block fill into zeros, then divide."""
    m1, n1 = d1.shape
    ave1 = np.zeros((max(m1, e1.shape[0] * unit), max(n1, e1.shape[1] * unit)))
    ave2 = np.zeros_like(ave1)
    for i in range(e1.shape[0]):
        for j in range(e1.shape[1]):
            ave1[i * unit : (i + 1) * unit, j * unit : (j + 1) * unit] = e1[i, j]
            ave2[i * unit : (i + 1) * unit, j * unit : (j + 1) * unit] = e2[i, j]
    a1, a2 = ave1[:m1, :n1], ave2[:m1, :n1]
    with np.errstate(invalid="ignore", divide="ignore"):
        w1, w2 = a1 / (a1 + a2), a2 / (a1 + a2)
    return d1 * w1 + d2 * w2


def test_detail_fusion_is_max_over_levels_of_fused_details(rng):
    size, units = (40, 50), [1, 2, 4, 8, 16, 31]
    d = rng.standard_normal((2, 1, *size))
    energies = [rng.random((2, 1, -(-40 // u), -(-50 // u))) for u in (1, 2, 4, 8, 16, 32)]
    energies[2][:, :, 0, 0] = 0.0  # 0 / 0 in one block of one level: NaN, ignored by max
    _, fused, _, winning = pc.fuse_details(
        [torch.from_numpy(e) for e in energies], units, torch.from_numpy(d), 1
    )
    gens = [
        _matlab_fusion_strategy(e[0, 0], e[1, 0], d[0, 0], d[1, 0], u)
        for e, u in zip(energies, units, strict=True)
    ]
    expected = gens[0]
    for g in gens[1:]:
        expected = np.fmax(expected, g)  # MATLAB max ignores NaN
    np.testing.assert_allclose(fused[0].numpy(), expected, atol=1e-12)
    stacked = np.nan_to_num(np.stack(gens), nan=-np.inf)
    np.testing.assert_array_equal(winning[0].numpy(), stacked.argmax(axis=0))


def _published_reference(ir, vis, seed=0):
    """The published code's pipeline, features tapped by forward hooks on the full network."""
    i1, i2 = ir / 255.0, vis / 255.0
    (b1, d1), (b2, d2) = _matlab_lowpass(i1), _matlab_lowpass(i2)
    torch.manual_seed(seed)
    model = resnet152(weights=None).eval()
    taps = {}
    hooks = [
        model.conv1.register_forward_hook(lambda m, i, o: taps.__setitem__("conv1", o.clone())),
        model.layer1[0]
        .downsample[0]
        .register_forward_hook(lambda m, i, o: taps.__setitem__("res2a", o.clone())),
    ]
    for name, block in (
        ("res3b7", model.layer2[7]),
        ("res4b35", model.layer3[35]),
        ("res5c", model.layer4[2]),
    ):
        # MatConvNet's res3b7x etc.: the output of the block's final (in-place) ReLU.
        hooks.append(
            block.register_forward_hook(
                lambda m, i, o, name=name: taps.__setitem__(name, o.clone())
            )
        )
    x = torch.from_numpy(np.stack([d1, d2]).astype(np.float32))[:, None].repeat(1, 3, 1, 1)
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    feats = [x.double().numpy(), taps["conv1"], taps["res2a"]] + [
        taps[n].double().numpy() for n in ("res3b7", "res4b35", "res5c")
    ]
    w = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16
    gens = []
    for f, u in zip(feats, [1, 2, 4, 8, 16, 31], strict=True):
        l1 = np.abs(np.asarray(f, dtype=np.float64)).sum(axis=1)
        e = [ndimage.convolve(l1[k] ** 2, w, mode="constant") for k in range(2)]
        gens.append(_matlab_fusion_strategy(e[0], e[1], d1, d2, u))
    f_sal = gens[0]
    for g in gens[1:]:
        f_sal = np.fmax(f_sal, g)
    return (b1 + b2) / 2 + f_sal


def test_published_code_variant_matches_reference():
    ir, vis = textured_pair((64, 96), seed=6)
    ours = fuse(ir, vis, variant="published-code", **RANDOM)
    assert ours.levels == ("data", "conv1", "res2a_branch1", "res3b7", "res4b35", "res5c")
    assert ours.params["base_weights"] == [0.5, 0.5]
    ref = _published_reference(ir, vis)
    np.testing.assert_allclose(ours.fused_unclipped, ref, rtol=1e-4, atol=1e-4)
    assert ours.level_weights.shape == (2, 6, 64, 96)


def test_published_code_with_itself_returns_the_image():
    ir, _ = textured_pair((64, 64), seed=2)
    r = fuse(ir, ir, variant="published-code", **RANDOM)
    np.testing.assert_allclose(r.fused, ir / 255.0, atol=1e-5)
