"""The whole run (eq. 1-11) against the independent reference, and its properties."""

import numpy as np
import pytest

from napari_resfuse import FusionOptions, fuse, iter_fuse

from ..conftest import textured_pair
from .reference import reference_fusion

RANDOM = {"weights": "random", "seed": 0, "device": "cpu"}


def test_full_pipeline_matches_independent_reference():
    ir, vis = textured_pair((64, 96))
    ours = fuse(ir, vis, **RANDOM)
    ref = reference_fusion(ir, vis, seed=0)
    for name in ("base", "detail", "fused_base", "fused_detail"):
        np.testing.assert_allclose(getattr(ours, name), ref[name], atol=1e-4, err_msg=name)
    np.testing.assert_allclose(ours.fused_unclipped, ref["fused"], atol=1e-4)
    np.testing.assert_allclose(ours.fused, np.clip(ref["fused"], 0, 1), atol=1e-4)
    np.testing.assert_allclose(ours.level_weights, ref["level_weights"], atol=1e-3)
    np.testing.assert_allclose(ours.weights, ref["weights"], atol=1e-3)


def test_odd_size_and_l2_norm_match_reference():
    ir, vis = textured_pair((33, 45), seed=3)
    ours = fuse(ir, vis, norm="l2", kernel_size=7, base_weights=(0.7, 0.3), **RANDOM)
    ref = reference_fusion(ir, vis, seed=0, k=7, lambdas=(0.7, 0.3), norm="l2")
    assert ours.fused.shape == (33, 45)
    np.testing.assert_allclose(ours.fused_unclipped, ref["fused"], atol=1e-4)
    np.testing.assert_allclose(ours.weights, ref["weights"], atol=1e-3)


def test_result_shapes_and_dtypes_for_odd_size():
    ir, vis = textured_pair((97, 131), seed=1)
    r = fuse(ir, vis, **RANDOM)
    assert r.fused.shape == (97, 131) and r.fused.dtype == np.float32
    assert r.base.shape == r.detail.shape == r.weights.shape == (2, 97, 131)
    assert r.level_weights.shape == (2, 5, 97, 131)
    assert r.winning_level.shape == (2, 97, 131) and r.winning_level.max() <= 4
    assert r.fused.min() >= 0.0 and r.fused.max() <= 1.0
    # winning_level indexes the level that gave the max.
    picked = np.take_along_axis(r.level_weights, r.winning_level[:, None].astype(int), axis=1)
    np.testing.assert_array_equal(picked[:, 0], r.weights)


def test_fusing_an_image_with_itself_returns_it():
    ir, _ = textured_pair((64, 64), seed=2)
    r = fuse(ir, ir, **RANDOM)
    np.testing.assert_allclose(r.level_weights, 0.5, atol=1e-6)
    np.testing.assert_allclose(r.fused_detail, r.detail[0], atol=1e-6)
    np.testing.assert_allclose(r.fused_base, r.base[0], atol=1e-6)
    np.testing.assert_allclose(r.fused, ir / 255.0, atol=1e-5)


def test_layer_subset_uses_only_those_levels():
    ir, vis = textured_pair()
    r = fuse(ir, vis, layers=("conv1", "conv3_1"), **RANDOM)
    full = reference_fusion(ir, vis)
    assert r.levels == ("conv1", "conv3_1")
    np.testing.assert_allclose(r.level_weights, full["level_weights"][:, [0, 2]], atol=1e-3)


def test_stack_equals_plane_by_plane_runs():
    planes = [textured_pair((48, 64), seed=s) for s in range(3)]
    ir = np.stack([p[0] for p in planes])
    vis = np.stack([p[1] for p in planes])
    stacked = fuse(ir, vis, batch_size=2, **RANDOM)
    assert stacked.fused.shape == (3, 48, 64)
    assert stacked.level_weights.shape == (2, 5, 3, 48, 64)
    for i in range(3):
        # Scaling: uint8 is /255 per value, so each plane alone is scaled the same way.
        single = fuse(ir[i], vis[i], **RANDOM)
        np.testing.assert_allclose(stacked.fused[i], single.fused, atol=1e-5)
        np.testing.assert_allclose(stacked.weights[:, i], single.weights, atol=1e-5)


def test_rgb_visible_fuses_luminance_and_keeps_chroma():
    ir, vis = textured_pair((48, 64))
    rgb = np.stack([vis, np.flipud(vis), np.full_like(vis, 90)], axis=-1)
    r = fuse(ir, rgb, **RANDOM)
    assert r.fused.shape == (48, 64, 3)
    y = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]) / 255.0
    grey = fuse(ir, y.astype(np.float32), value_range=((0, 255), (0, 1)), **RANDOM)
    np.testing.assert_allclose(r.fused_base, grey.fused_base, atol=1e-5)
    # Back to YCbCr: Y is the fused grey image, Cb/Cr those of the visible image.
    fr = r.fused_unclipped.astype(np.float64)
    y_out = 0.299 * fr[..., 0] + 0.587 * fr[..., 1] + 0.114 * fr[..., 2]
    np.testing.assert_allclose(y_out, grey.fused_unclipped, atol=1e-4)
    cb_in = -0.168736 * rgb[..., 0] - 0.331264 * rgb[..., 1] + 0.5 * rgb[..., 2]
    cb_out = -0.168736 * fr[..., 0] - 0.331264 * fr[..., 1] + 0.5 * fr[..., 2]
    np.testing.assert_allclose(cb_out, cb_in / 255.0, atol=1e-4)
    assert fuse(ir, rgb, color="gray", **RANDOM).fused.shape == (48, 64)


def test_float_input_scaled_by_min_max_or_value_range():
    ir, vis = textured_pair()
    r8 = fuse(ir, vis, **RANDOM)
    # uint16 with the same values and an explicit range reproduces the uint8 run.
    r16 = fuse(ir.astype(np.uint16), vis.astype(np.uint16), value_range=(0, 255), **RANDOM)
    np.testing.assert_allclose(r16.fused, r8.fused, atol=1e-6)
    # Floats without a range are scaled by their own min/max.
    f = fuse(ir.astype(np.float64), vis.astype(np.float64), **RANDOM)
    assert f.params["value_range"] == [
        [float(ir.min()), float(ir.max())],
        [float(vis.min()), float(vis.max())],
    ]


def test_inputs_are_not_modified():
    ir, vis = textured_pair()
    ir_f = ir.astype(np.float32)
    copies = (ir.copy(), ir_f.copy(), vis.copy())
    fuse(ir, vis, **RANDOM)
    fuse(ir_f, vis, **RANDOM)
    for before, after in zip(copies, (ir, ir_f, vis), strict=True):
        np.testing.assert_array_equal(before, after)


def test_params_mark_random_weights_and_reproduce_the_run():
    ir, vis = textured_pair()
    r = fuse(ir, vis, **RANDOM)
    assert r.params["pretrained"] is False
    assert "random" in r.params["weights_id"] and "not the pretrained" in r.params["warning"]
    assert r.params["kernel_size"] == 31 and r.params["base_weights"] == [0.6, 0.4]
    assert {"load model", "features", "total"} <= set(r.timings)
    opts = {k: r.params[k] for k in ("weights", "seed", "kernel_size", "norm", "layers")}
    again = fuse(ir, vis, device="cpu", **opts)
    np.testing.assert_array_equal(again.fused, r.fused)


def test_iter_fuse_reports_every_stage_and_can_stop():
    ir, vis = textured_pair()
    stack_ir, stack_vis = np.stack([ir, ir]), np.stack([vis, vis])
    runner = iter_fuse(stack_ir, stack_vis, batch_size=1, **RANDOM)
    events = []
    with pytest.raises(StopIteration) as done:
        while True:
            events.append(next(runner))
    assert [e.stage for e in events[:5]] == [
        "load model",
        "decompose",
        "features",
        "weights",
        "reconstruct",
    ]
    assert events[-1].step == events[-1].total == 9 and events[-1].planes_done == 2
    assert done.value.value.fused.shape == (2, 64, 96)
    stopped = iter_fuse(ir, vis, **RANDOM)
    next(stopped)
    stopped.close()  # stopping between stages is clean


def test_options_object_and_overrides():
    opts = FusionOptions(weights="random", kernel_size=15)
    ir, vis = textured_pair()
    r = fuse(ir, vis, opts, device="cpu")
    assert r.params["kernel_size"] == 15 and r.params["device"] == "cpu"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kernel_size": 4}, "kernel_size"),
        ({"norm": "l3"}, "norm"),
        ({"layers": ("conv9",)}, "layers"),
        ({"batch_size": 0}, "batch_size"),
        ({"device": "tpu"}, "device"),
        ({"value_range": (1, 1)}, "value_range"),
        ({"tile": 100}, "tile"),
    ],
)
def test_bad_options_are_clear_errors(kwargs, match):
    ir, vis = textured_pair()
    with pytest.raises(ValueError, match=match):
        fuse(ir, vis, **{**RANDOM, **kwargs})


def test_base_weights_not_summing_to_one_warn():
    with pytest.warns(UserWarning, match="do not sum to 1"):
        FusionOptions(base_weights=(0.6, 0.6))


def test_bfloat16_autocast_runs_on_cpu_close_to_float32():
    ir, vis = textured_pair()
    ref = fuse(ir, vis, **RANDOM)
    try:
        low = fuse(ir, vis, precision="bfloat16", **RANDOM)
    except RuntimeError as exc:  # a torch build without CPU autocast for these operators
        pytest.skip(f"bfloat16 autocast is not supported on this CPU build: {exc}")
    assert low.params["dtype"] == "autocast-bfloat16" and ref.params["dtype"] == "float32"
    assert low.fused.dtype == np.float32
    # bfloat16 keeps 8 bits of mantissa: the weights move, the fused image hardly.
    assert np.abs(low.fused - ref.fused).max() < 5e-3
    assert np.abs(low.weights - ref.weights).max() < 5e-2
    assert not np.array_equal(low.weights, ref.weights)  # the autocast path really ran
