"""The automatic estimator (``napari_resfuse.register._auto``) on known warps.

Each test views an aligned made-up multimodal scene (:func:`._warps.scene`: shared edges,
unrelated brightness) through two simulated cameras and checks that :func:`estimate` recovers
the known registration; errors are in visible pixels (see :mod:`._warps`).
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_resfuse.register._auto import METRIC, MIN_SIGNIFICANCE, AutoEstimate, estimate

from . import _warps

#: Known warps: (model, warp_pair keywords). Scale ratios 1, 2, 4, 6, 1/2, 1/4 and 1/6 (the
#: infrared finer), rolls up to ±10°, offsets, a 50 % overlap, inverted infrared contrast and a
#: homography.
SUB_PIXEL = {
    "translation": ("translation", {"offset": (0.1, -0.15)}),
    "ratio 2, roll 8°": ("similarity", {"ratio": 2, "rotation": 8, "offset": (0.05, 0.05)}),
    "ratio 1/2, roll -8°": ("similarity", {"ratio": 0.5, "rotation": -8, "offset": (-0.05, 0.1)}),
    "ratio 1/4, affine": ("affine", {"ratio": 0.25, "rotation": 6, "visible_pixel": 2.0}),
    "ratio 1/6, roll -5°": ("similarity", {"ratio": 1 / 6, "rotation": -5, "visible_pixel": 2.5}),
    "overlap 50 %, affine": (
        "affine",
        {"ratio": 1.5, "rotation": -6, "infrared_side": 0.75, "offset": (0.12, 0.2)},
    ),
    "inverted infrared, roll 10°": (
        "affine",
        {"ratio": 2, "rotation": 10, "invert": True, "offset": (0.1, -0.1)},
    ),
    # A coarse infrared (4 and 6 times the visible pixel: only 120 × 160 and 100 × 133 px),
    # where mutual information alone stops 1 to 2 visible px off and the polish (stage 5)
    # brings it home, and a projective warp.
    "ratio 4, affine": ("affine", {"ratio": 4, "rotation": -9, "visible_pixel": 0.5}),
    "ratio 6, roll 5°": ("similarity", {"ratio": 6, "rotation": 5, "visible_pixel": 0.4}),
    "projective": ("projective", {"ratio": 2, "rotation": 4, "tilt": (4e-4, -3e-4)}),
}


@pytest.fixture(scope="module")
def base():
    return _warps.scene((240, 320), seed=1)


def _run(base, model, kw):
    ir, vis, true = _warps.warp_pair(*base, **kw)
    ir_in, vis_in = ir.copy(), vis.copy()
    found = estimate(ir, vis, model=model)
    assert np.array_equal(ir, ir_in) and np.array_equal(vis, vis_in)  # inputs untouched
    return found, true, ir.shape, vis.shape


@pytest.mark.parametrize("case", list(SUB_PIXEL))
def test_known_warp_recovered_to_half_a_visible_pixel(base, case):
    model, kw = SUB_PIXEL[case]
    found, true, ir_shape, vis_shape = _run(base, model, kw)
    assert isinstance(found, AutoEstimate)
    assert found.converged, found.message
    assert found.metric == METRIC and found.score > 0.3
    assert found.matrix.shape == (3, 3) and found.matrix.dtype == np.float64
    if model != "projective":
        np.testing.assert_allclose(found.matrix[2], (0.0, 0.0, 1.0))
    assert _warps.overlap_rms(true, found.matrix, ir_shape, vis_shape) <= 0.5


def test_when_mutual_information_runs_away_from_every_start_the_search_start_is_polished():
    # A 101 x 135 px infrared seeing the top half of the scene with a tilt: mutual information
    # leaves every start by more than the leash (its coarse levels have a few dozen pixels),
    # while the search's best start is 4 px off. The polish from that start must find the
    # warp, and say which way it went.
    ir, vis, true = _warps.warp_pair(
        *_warps.scene((540, 720), seed=3), ratio=2.8425, rotation=-4.981, infrared_side=0.5341,
        offset=(-0.19689, 0.087314), tilt=(-7.594e-5, 7.671e-5),
    )  # fmt: skip
    found = estimate(ir, vis, model="projective")
    assert found.converged, found.message
    assert "mutual information ran away" in found.message
    assert _warps.overlap_rms(true, found.matrix, ir.shape, vis.shape) <= 1.0


def test_scale_hint_narrows_the_search_to_the_same_answer(base):
    ir, vis, true = _warps.warp_pair(*base, ratio=2, rotation=-4, offset=(0.05, 0.0))
    found = estimate(ir, vis, model="similarity", scale_hint=0.5)
    assert found.converged, found.message
    assert _warps.overlap_rms(true, found.matrix, ir.shape, vis.shape) <= 0.5


@pytest.mark.parametrize("kind", ["noise", "constant", "smooth noise"])
def test_pairs_without_shared_structure_do_not_converge(kind):
    rng = np.random.default_rng(3)
    if kind == "noise":
        ir, vis = rng.random((120, 160)), rng.random((150, 200))
    elif kind == "constant":
        ir, vis = np.full((120, 160), 7.0), np.ones((150, 200))
    else:
        from scipy import ndimage

        ir = ndimage.gaussian_filter(rng.random((120, 160)), 3)
        vis = ndimage.gaussian_filter(rng.random((150, 200)), 3)
    found = estimate(ir, vis)
    assert not found.converged
    assert found.message


def test_bundled_sample_shares_too_little_structure_and_is_refused():
    # The bundled pair's infrared holds warm targets on a smooth background and the visible
    # holds textures without the targets: almost no shared edge. The estimate says so rather
    # than returning a wrong matrix (it lands ~14 px off when forced).
    from napari_resfuse.sample import load_sample

    ir0, vis0 = load_sample()
    ir, vis, _ = _warps.warp_pair(ir0.astype(float), vis0.astype(float), ratio=2, rotation=5)
    found = estimate(ir, vis, model="similarity")
    assert not found.converged
    # Refused by the search's significance or by the edge check (the estimate lands ~14 px off
    # the place where the few shared edges agree).
    assert "share no structure" in found.message or found.message.startswith("implausible")


def test_significance_threshold_is_documented_in_the_message():
    rng = np.random.default_rng(5)
    found = estimate(rng.random((100, 120)), rng.random((100, 120)), model="similarity")
    assert not found.converged
    assert f"at least {MIN_SIGNIFICANCE:g}" in found.message


def test_should_stop_stops_with_a_message(base):
    ir, vis, _ = _warps.warp_pair(*base, ratio=2, rotation=3)
    stages = []
    found = estimate(
        ir,
        vis,
        progress=lambda stage, fraction: stages.append((stage, fraction)),
        should_stop=lambda: len(stages) > 3,
    )
    assert not found.converged
    assert found.message == "stopped"
    assert stages and all(0.0 <= f <= 1.0 for _, f in stages)


def test_progress_reports_each_stage(base):
    ir, vis, _ = _warps.warp_pair(*base, ratio=2, rotation=3)
    stages = set()
    found = estimate(ir, vis, model="affine", progress=lambda s, f: stages.add(s))
    assert found.converged
    assert stages == {"search", "refine", "polish"}
    stages.clear()
    found = estimate(ir, vis, model="affine", polish=False, progress=lambda s, f: stages.add(s))
    assert found.converged
    assert stages == {"search", "refine", "tiles"}


def test_the_polish_can_be_left_out(base):
    # Without stage 5 the estimate is mutual information's: converged, within an infrared
    # pixel here, and not the polished matrix.
    ir, vis, true = _warps.warp_pair(*base, ratio=4, rotation=-9, visible_pixel=0.5)
    plain = estimate(ir, vis, model="similarity", polish=False)
    polished = estimate(ir, vis, model="similarity")
    assert plain.converged and polished.converged
    assert _warps.overlap_rms(true, plain.matrix, ir.shape, vis.shape) <= 2.0
    assert not np.allclose(plain.matrix, polished.matrix)


def test_a_misspelt_setting_is_refused_not_ignored(base):
    ir, vis, _ = _warps.warp_pair(*base, ratio=2)
    with pytest.raises(TypeError, match=r"unknown estimator setting\(s\) \['polsh'\]"):
        estimate(ir, vis, model="similarity", polsh=False)


def test_unknown_model_is_refused():
    with pytest.raises(ValueError, match="unknown model"):
        estimate(np.zeros((32, 32)), np.zeros((32, 32)), model="elastic")


def test_warp_truth_includes_the_base_pairs_own_misalignment(base):
    # A curated pair whose infrared is off by a shift: the truth of a warp of it moves with it.
    shift = np.eye(3)
    shift[:2, 2] = (2.0, -3.0)
    kw = {"ratio": 1.0, "offset": (0.05, 0.0)}
    ir, vis, plain = _warps.warp_pair(*base, **kw)
    ir2, vis2, true = _warps.warp_pair(*base, base_registration=shift, **kw)
    assert np.array_equal(ir, ir2) and np.array_equal(vis, vis2)
    np.testing.assert_allclose(true[:2, 2], plain[:2, 2] + (2.0, -3.0), atol=1e-9)
    np.testing.assert_allclose(true[:2, :2], plain[:2, :2], atol=1e-12)
