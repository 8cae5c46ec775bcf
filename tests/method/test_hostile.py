"""What a hostile caller tries (issue 13): odd option values, bad weights files, inputs that
are not numpy arrays, and runs that would give NaN. Each is a clear error or works."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from torchvision.models import resnet152

from napari_resfuse import FusionOptions, NonFiniteResultError, fuse, imagenet_weights_file
from napari_resfuse.method import backbones
from napari_resfuse.method.backbones import get_feature_network, load_weights_checked

from ..conftest import textured_pair

FAST = {"weights": "random", "device": "cpu", "layers": ("conv1", "conv2_1")}
SHALLOW = ("conv1", "conv2_1")


def _shallow_state_dict():
    torch.manual_seed(0)
    full = resnet152(weights=None).state_dict()
    return {k: v for k, v in full.items() if k.split(".")[0] in {"conv1", "bn1", "layer1"}}


# -- options -----------------------------------------------------------------------------------


def test_coerce_resolves_options_and_overrides():
    assert FusionOptions.coerce() == FusionOptions()
    base = FusionOptions(weights="random", kernel_size=15)
    assert FusionOptions.coerce(base) is base
    assert FusionOptions.coerce(base, norm="l2") == FusionOptions(
        weights="random", kernel_size=15, norm="l2"
    )
    assert FusionOptions.coerce(None, seed=3).seed == 3
    with pytest.raises(ValueError, match="options must be a FusionOptions, got dict"):
        FusionOptions.coerce({"seed": 3})
    with pytest.raises(ValueError, match="unknown option kernal_size: the options are weights"):
        FusionOptions.coerce(None, kernal_size=3)


def test_numpy_scalars_are_accepted_as_plain_numbers():
    opts = FusionOptions(
        seed=np.int64(3),
        kernel_size=np.int32(15),
        batch_size=np.uint8(2),
        tile=np.int64(64),
        base_weights=np.array([0.7, 0.3]),
        value_range=(np.float32(0), np.float64(255)),
    )
    assert (opts.seed, opts.kernel_size, opts.batch_size, opts.tile) == (3, 15, 2, 64)
    assert all(type(v) is int for v in (opts.seed, opts.kernel_size, opts.batch_size, opts.tile))
    assert opts.base_weights == (0.7, 0.3)
    for bad in ({"seed": np.bool_(True)}, {"kernel_size": 31.0}, {"tile": "64"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            FusionOptions(**bad)


@pytest.mark.parametrize("seed", [2**70, -1, 2**64])
def test_seed_out_of_torch_range_is_a_clear_error(seed):
    with pytest.raises(ValueError, match=r"seed must be an integer from 0 to 2\*\*64 - 1"):
        FusionOptions(seed=seed)
    assert FusionOptions(seed=2**64 - 1).seed == 2**64 - 1


@pytest.mark.parametrize("spelling", ["Random", "RANDOM", "rANDOM"])
def test_weights_keywords_are_case_insensitive(spelling):
    assert FusionOptions(weights=spelling).weights == "random"
    imagenet = {"Random": "ImageNet", "RANDOM": "IMAGENET", "rANDOM": "iMAGENET"}[spelling]
    assert FusionOptions(weights=imagenet).weights == "imagenet"


def test_weights_random_in_capitals_is_the_seeded_network_not_a_path():
    ir, vis = textured_pair()
    result = fuse(ir, vis, **{**FAST, "weights": "Random"})
    assert result.params["weights_id"] == "random:seed=0"


def test_kernel_size_has_an_absolute_bound_and_one_from_the_image():
    with pytest.raises(ValueError, match="kernel_size must be an odd integer from 3 to 1001"):
        FusionOptions(kernel_size=10001)
    ir, vis = textured_pair((40, 64))
    with pytest.raises(ValueError, match=r"kernel_size 81 is too large for images of 40 x 64 px"):
        fuse(ir, vis, **FAST, kernel_size=81)
    assert fuse(ir, vis, **FAST, kernel_size=79).fused.shape == (40, 64)


@pytest.mark.parametrize(
    ("weights", "match"),
    [((2.0, -1.0), r"not both in \[0, 1\]"), ((0.7, 0.7), "do not sum to 1")],
)
def test_base_weights_outside_the_paper_warn(weights, match):
    with pytest.warns(UserWarning, match=match):
        FusionOptions(base_weights=weights)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FusionOptions(base_weights=(0.25, 0.75))


# -- inputs ------------------------------------------------------------------------------------


def test_tensor_that_requires_grad_is_fused_and_left_alone():
    ir, vis = textured_pair()
    ir_t = torch.from_numpy(ir.astype(np.float32) / 255).requires_grad_(True)
    before = ir_t.detach().clone()
    result = fuse(ir_t, vis.astype(np.float32) / 255, **FAST, value_range=(0.0, 1.0))
    expected = fuse(ir, vis, **FAST)
    np.testing.assert_allclose(result.fused, expected.fused, atol=1e-5)
    assert ir_t.requires_grad and torch.equal(ir_t.detach(), before)
    assert result.params["input_shapes"]["infrared"] == list(ir.shape)


# -- non-finite results ------------------------------------------------------------------------


def test_float16_on_the_cpu_is_refused_before_any_work():
    ir, vis = textured_pair()
    with pytest.raises(ValueError, match="precision 'float16' is not supported on the CPU"):
        fuse(ir, vis, **FAST, precision="float16")


def test_features_beyond_float32_are_an_error_naming_the_level(tmp_path):
    state = _shallow_state_dict()
    state["conv1.weight"] = state["conv1.weight"] * 1e38  # finite, but the conv overflows
    path = tmp_path / "huge.pth"
    torch.save(state, path)
    ir, vis = textured_pair()
    with pytest.raises(
        NonFiniteResultError, match=r"of level conv\w+ contain (inf|NaN): .* float32.s range"
    ):
        fuse(ir, vis, weights=path, layers=SHALLOW, device="cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_float16_overflow_on_the_gpu_names_the_precision():
    # Seeded random weights give conv5_1 features near 1e7, beyond float16's 65504.
    ir, vis = textured_pair()
    with pytest.raises(NonFiniteResultError, match="overflowed in float16 on cuda"):
        fuse(ir, vis, weights="random", device="cuda", precision="float16")
    result = fuse(ir, vis, weights="random", device="cuda", precision="bfloat16")
    assert np.isfinite(result.fused).all()


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_state_dict_with_non_finite_values_is_refused_at_load(tmp_path, bad):
    state = _shallow_state_dict()
    state["layer1.0.conv1.weight"][0, 0, 0, 0] = bad
    path = tmp_path / "nan.pth"
    torch.save(state, path)
    kind = "NaN" if np.isnan(bad) else "inf"
    match = f"the state_dict contains {kind} in layer1.0.conv1.weight"
    with pytest.raises(ValueError, match=match):
        get_feature_network(weights=str(path), layers=SHALLOW)
    with pytest.raises(ValueError, match=match):
        load_weights_checked("resnet152", str(path))


# -- weights files -----------------------------------------------------------------------------


class _NotATensor:
    pass


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)), "torch.save"),
        (b"", "the file is empty"),
        (b"PK\x03\x04 truncated zip", "torch.save"),
        (pickle.dumps({"a": 1}), "torch.save|not hold a state_dict"),
        (None, "objects other than tensors"),
    ],
)
def test_unreadable_weights_files_are_one_line_without_unsafe_advice(tmp_path, content, reason):
    path = tmp_path / "weights.pth"
    if content is None:
        torch.save({"conv1.weight": _NotATensor()}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        get_feature_network(weights=str(path), layers=SHALLOW)
    message = str(info.value)
    assert "\n" not in message and "weights_only" not in message
    assert message.startswith(f"weights file {str(path)!r}")
    assert info.match(reason)
    with pytest.raises(ValueError, match=reason):
        load_weights_checked("resnet152", str(path))


def test_weights_directory_says_it_is_a_directory(tmp_path):
    with pytest.raises(ValueError, match="is a directory"):
        get_feature_network(weights=str(tmp_path), layers=SHALLOW)
    with pytest.raises(ValueError, match="is a directory"):
        load_weights_checked("resnet152", str(tmp_path))


def test_public_names_for_what_batch_uses():
    backbones.clear_cache()
    assert backbones.cached_networks() == 0
    get_feature_network(weights="random", layers=SHALLOW)
    assert backbones.cached_networks() == 1 == len(backbones._CACHE)
    assert load_weights_checked("resnet152", "random") is None


def test_weights_enum_names_in_any_case_are_enum_names_not_paths():
    expected = imagenet_weights_file("resnet152", "IMAGENET1K_V2")
    assert imagenet_weights_file("resnet152", "imagenet1k_v2") == expected
