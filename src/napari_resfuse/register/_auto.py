"""The automatic multimodal estimator behind :func:`napari_resfuse.register.register`.

:func:`estimate` finds the 3 × 3 matrix that maps a *visible* pixel ``(row, col, 1)`` to the
*infrared* pixel seen there (napari's order, pixel centres at integer coordinates), for two
images of unrelated or inverted contrast, different sizes and resolutions (1 to 8 either way),
a roll of up to ±10°, an offset of up to a quarter of the frame and a partial overlap.

Method, in five stages:

1. **Global search** (numpy/scipy FFT, no optimiser). Both images become edge-orientation
   fields ``(g_x + i g_y)² / (|g|² + ε²)``: the doubled angle makes them blind to the sign of
   the contrast (hot-bright against dark-visible) and the normalisation to its strength. For
   each candidate scale (1/8.5 to 8.5 infrared px per visible px in steps of 15 %, or ±16 %
   around ``scale_hint``) and roll (−10° to 10° in 5° steps) the infrared field is resampled
   onto a coarse visible grid (the larger field of view about 160 px across) and correlated
   with the visible one over *all* translations at once by FFT, normalised over each overlap
   (masked correlation). A translation is scored by its *significance*: the normalised
   correlation times √(overlap in coarse pixels), which a chance alignment keeps near
   N(0, 1); overlaps below ``min_overlap`` of the smaller frame are not considered. This is
   the global initialisation that puts the optimiser inside its capture range.
2. **Refinement** with SimpleITK's registration framework: Mattes mutual information (32
   bins; about :data:`SAMPLES` jittered regular samples per level, every pixel at the very
   last level), regular-step gradient descent with scales from the physical shift, a pyramid
   (shrink up to 8, then half that, for the best three distinct starts — the coarsest level
   keeps the visible ≥ 48 px and the infrared ≥ 32 px, a start that runs away by more than
   8 % of the frame is dropped, and a start whose edges agree with significance ≥
   :data:`SURE_PEAK` in the check of stage 4 ends the loop — then, with ``polish=False`` only,
   2, 1 for the one the edge check likes best), a similarity transform (a translation for
   ``model="translation"``). Both grids are smoothed by one working pixel at the finest
   level: without it linear interpolation makes mutual information peak half a pixel off.
   The visible working grid has pixels about half the infrared's (at most ``work_side`` px on
   its long side), the infrared is shrunk to match. When every start runs away (an infrared
   of about 100 px: its coarse levels have a few dozen pixels) the polish of stage 5 starts
   from the search's best start itself, and its result must pass the edge check with
   significance ≥ :data:`SURE_PEAK` (twice the usual), else the estimate is refused.
3. **Affine and projective tiles** (``polish=False`` only; the polish of stage 5 fits these
   models more accurately and faster on the benchmark): the overlap is cut into
   4 × 4 tiles; each is registered by a translation on top of the current estimate (SimpleITK,
   Mattes MI); the tile centres and their matches give the affine or the homography by least
   squares (normalised DLT for the homography), dropping disagreeing tiles, repeated (at most
   3 times) until it settles. An affine is kept only if it raises the mutual information over
   the similarity.
4. **Edge check** (:mod:`._verify`, a measure the optimiser never saw): with the infrared
   resampled through the estimate on a grid of at most 512 px, the edge-orientation correlation
   over all translations must peak on the estimate (within 2 working px, significance at least
   20). It picks among the refined starts (the one whose edges agree best), stops a final
   refinement or a polish that runs away elsewhere, and turns a result that
   fails it into ``converged=False`` ("implausible result", with the peak's offset and
   significance) instead of a silently wrong warp.
5. **Polish** (:mod:`._polish`; ``polish=False`` leaves it out): the normalised correlation of
   the two edge-orientation fields, on the coarser image's grid (at most 256 px, 384 for a
   homography; a smaller one enlarged towards 256 px, at most twice), maximised around the
   similarity (or translation) of stage 2 over the model's parameters (the displacements of
   1 to 4 control points: the affine and the homography are fitted here) by SciPy's L-BFGS-B
   from the measure's exact gradient (torch autograd), first on a grid twice as coarse, then,
   when the coarser image was shrunk for that grid, one Newton step on its own grid (finite
   differences). Mutual information on a coarse infrared (3 to 6 times the visible pixel)
   leaves 0.5 to 5 visible px of error; the polish brings the benchmark's median to 0.2 to
   0.8 px. The polished matrix must pass the edge check too, else the refined one is kept
   (and checked).

Why SimpleITK: its Mattes mutual information is the established multimodal measure (Mattes et
al. 2003), well kept and fast (multithreaded C++), with pyramids and optimisers built in. It has
no 2-D projective transform, hence stage 3's tile fit (with SimpleITK doing each tile's
optimisation) when the polish is left out; the edge-orientation search is
ours because SimpleITK has no global (exhaustive over translations) multimodal search that
fits a 2-second budget. The polish's optimiser is SciPy's L-BFGS-B (SimpleITK's
framework takes no custom measure; with the exact gradient it needs 17 to 60 evaluations
where SciPy's derivative-free Powell method needed 550 to 1200); its measure is measured more
accurate than mutual information at the end and faster than its finest level and the tiles it
replaces (benchmarks/bench_register.py --no-polish, README). The fine stage's single Newton step is
ours: L-BFGS-B iterated to convergence on the same full-resolution grid measured less
accurate (a 464 × 618 frame beside a 3000 × 4000 one: 0.16 / 0.19 visible px for a similarity
/ an affine, against the Newton step's 0.13 / 0.17 px; benchmarks/bench_fine_stage.py).

``AutoEstimate.score`` is the Mattes mutual information (in nats, higher is better; 0 for
independent images) of the result on the working grids smoothed by one pixel; ``metric`` is
``"mattes_mi"``. ``converged`` is False
(with the numbers in ``message``) when the global search's best significance is below
:data:`MIN_SIGNIFICANCE` (noise, constant or unrelated images), when every refinement start
failed (and, with the polish, the search's best start polished did not pass the edge check
with :data:`SURE_PEAK`), when an affine/projective fit found too few structured tiles, when
the edge check refuses the result, or when stopped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

from ._polish import polish
from ._refine import _distinct, _Judge, _moved, _refine, _robust_fit, _sitk_image, _tile_matches
from ._search import _DEBUG, _global_search, _normalise, _Pyramid, _Stopped
from ._verify import EdgeChecker

__all__ = ["AutoEstimate", "estimate"]

MODELS = ("translation", "similarity", "affine", "projective")

#: The name of :attr:`AutoEstimate.score`'s measure.
METRIC = "mattes_mi"

#: The smallest accepted significance of the global search's best alignment (its normalised
#: edge-orientation correlation times the square root of the overlap in coarse pixels): pure
#: noise gives about 4 to 6, the bundled sample pair (whose infrared shows almost none of the
#: visible image's edges) 14, and the known warps of the tests and of real (TNO) pairs 12 to 90.
#: A gate against hopeless pairs only: what decides is the edge check of stage 4.
MIN_SIGNIFICANCE = 12.0

#: An edge-check significance that ends the refinement of further starts (twice the check's
#: own threshold; unrelated images peak at 10 to 29, true alignments of the TNO pairs at 34 to
#: 97): the later starts are weaker search results.
SURE_PEAK = 40.0


@dataclass(frozen=True)
class _Settings:
    """The estimator's ``**settings`` (see :func:`estimate`), with their defaults."""

    min_overlap: float = 0.3
    candidates: int = 3
    work_side: int = 1024
    tiles: int = 4
    polish: bool = True

    @classmethod
    def parse(cls, settings: dict) -> _Settings:
        """Each setting cast to its default's type; a misspelt one would otherwise be
        ignored without a word, so an unknown name is a ``TypeError``."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(settings) - set(known))
        if unknown:
            raise TypeError(f"unknown estimator setting(s) {unknown}; known: {', '.join(known)}")
        default = cls()
        return cls(**{k: type(getattr(default, k))(v) for k, v in settings.items()})


@dataclass(frozen=True)
class AutoEstimate:
    """What :func:`estimate` found."""

    matrix: np.ndarray
    score: float
    metric: str
    converged: bool
    iterations: int
    message: str


def estimate(
    infrared: np.ndarray,
    visible: np.ndarray,
    *,
    model: str = "affine",
    scale_hint: float | None = None,
    progress: Callable[[str, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    **settings,
) -> AutoEstimate:
    """Estimate the matrix that maps a visible pixel to the infrared pixel seen there.

    Parameters
    ----------
    infrared, visible : ndarray
        2-D finite float planes of any range and shape (normalised here; not modified).
    model : str
        ``"translation"``, ``"similarity"``, ``"affine"`` or ``"projective"``.
    scale_hint : float, optional
        Infrared pixels per visible pixel, if known: the search then covers only ±16 % around
        it (faster, and safe from look-alike scales). Without it the search covers 1/8.5 to 8.5.
    progress : callable, optional
        ``progress(stage, fraction)`` with ``stage`` one of ``"search"``, ``"refine"``,
        ``"tiles"``, ``"polish"`` and ``fraction`` in ``[0, 1]`` within that stage.
    should_stop : callable, optional
        Polled often; when it returns True the estimate stops and returns ``converged=False``
        with the message ``"stopped"``.
    **settings
        ``min_overlap`` (0.3: the smallest fraction of the smaller frame the search
        considers), ``candidates`` (3: starts refined), ``work_side`` (1024: the largest side of
        the visible working grid), ``tiles`` (4: tiles per side for affine/projective),
        ``polish`` (True: stage 5, the edge-orientation polish).

    Returns
    -------
    AutoEstimate
        ``converged`` is False (with the reason in ``message``) when the pair shares no
        structure (search significance below :data:`MIN_SIGNIFICANCE`), when every start or the
        refinement failed, or when it was stopped; ``score`` is the Mattes mutual information
        at the optimum (:data:`METRIC`, higher is better).
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}")
    report = progress or (lambda stage, fraction: None)
    stop = should_stop or (lambda: False)
    opts = _Settings.parse(settings)
    ir = _normalise(infrared)
    vis = _normalise(visible)
    if model == "translation":
        scales, angles = np.array([1.0]), np.array([0.0])
    else:
        if scale_hint is None:
            scales = np.exp(np.arange(math.log(1 / 8.5), math.log(8.5), math.log(1.15)))
        else:
            scales = scale_hint * np.exp(np.arange(-2, 3) * math.log(1.08))
        angles = np.radians(np.arange(-10, 10.1, 5.0))
    try:
        return _estimate(ir, vis, model, scales, angles, opts, report, stop)
    except _Stopped:
        return _refused("stopped")


def _refused(message: str, matrix=None, score=float("-inf"), iterations=0) -> AutoEstimate:
    """An estimate that did not converge, with why in ``message`` (the identity and no score
    when it did not get as far as a matrix)."""
    matrix = np.eye(3) if matrix is None else matrix
    return AutoEstimate(matrix, score, METRIC, False, iterations, message)


def _estimate(ir, vis, model, scales, angles, opts: _Settings, report, stop):
    t0 = time.perf_counter()
    timing = {}
    ir_pyr = _Pyramid(ir)
    vis_pyr = _Pyramid(vis)
    found = _global_search(ir_pyr, vis_pyr, scales, angles, opts.min_overlap, report, stop)
    timing["search"] = round(time.perf_counter() - t0, 2)
    if not found:
        return _refused("no overlap found")
    for r in found[:5]:
        _DEBUG(f"search {r[0]:.1f} s={r[1]:.3f} a={math.degrees(r[2]):+.1f}", r[3], r[3])
    cands = _distinct(found, opts.candidates)
    significance = cands[0][0]
    if significance < MIN_SIGNIFICANCE:
        return _refused(
            f"the two images share no structure: the best alignment's edge-orientation "
            f"significance is {significance:.1f} (chance gives about 4 to 6; at least "
            f"{MIN_SIGNIFICANCE:g} needed)",
            cands[0][3],
        )
    scale = cands[0][1]
    # Working grids: the visible at the infrared's pixel size (never finer than its own, never
    # larger than work_side), the infrared no finer than that.
    fw = max(1.0, max(vis.shape) / opts.work_side, 0.5 / scale)
    fixed = _sitk_image(vis_pyr.shrink(fw), fw)
    fi = max(1.0, 0.5 * scale * fw)
    moving = _sitk_image(ir_pyr.shrink(fi), fi)
    kind0 = "translation" if model == "translation" else "similarity"
    checker = EdgeChecker(vis, vis_pyr)
    best = None
    cands = [c for c in cands if c[0] >= 0.6 * cands[0][0]]
    # Coarsest level: at most 8 times coarser, and the visible ~48 px on its short side.
    # (SimpleITK shrinks both images by the same factor: the infrared keeps ~32 px too.)
    short = min(min(fixed.GetSize()) / 48.0, min(moving.GetSize()) / 32.0)
    coarse = int(max(1, min(8, 2 ** math.floor(math.log2(max(short, 1.0))))))
    levels = (coarse, max(1, coarse // 2))
    # A start may move by a few of the search's coarse pixels; more means it ran away.
    leash = 0.08 * max(vis.shape)
    for k, cand in enumerate(cands):
        try:
            mat, mi, it, msg = _refine(
                fixed,
                moving,
                cand[3],
                kind0,
                shrink=levels,
                sigmas=tuple(lv / 2.0 for lv in levels),
                iterations=100,
                stop=stop,
            )
        except RuntimeError:
            continue
        if _moved(cand[3], mat, vis.shape) > leash:
            continue
        check = checker.check(ir, mat)
        # The start whose edges agree (the strongest agreement first), else the best MI.
        rank = (check.passed, check.significance if check.passed else mi)
        _DEBUG(f"cand {k} search {cand[0]:.1f} s={cand[1]:.3f} -> mi {mi:.4f} {rank}", cand[3], mat)
        if best is None or rank > best[0]:
            best = (rank, mat, mi, it, msg, check)
        report("refine", (k + 1) / len(cands))
        if opts.polish and check.passed and check.significance >= SURE_PEAK:
            break  # edges that agree this well: the later (weaker) starts are not needed
    timing["candidates"] = round(time.perf_counter() - t0, 2)
    unrefined = best is None and opts.polish
    if unrefined:
        # Mutual information ran away from every start (a small infrared frame: its coarse
        # levels have a few dozen pixels): the polish starts from the search's best result
        # itself, and the result must then pass the edge check with SURE_PEAK.
        best = (None, cands[0][3], float("-inf"), 0, "mutual information ran away", None)
    if best is None:
        return _refused("every start failed")
    _, mat, start_mi, iters, msg, check = best
    start_passed = check is not None and check.passed
    # Without the polish: mutual information's finest stage, then the tiles (affine and
    # projective). The polish replaces both (as accurate or more on the benchmark, and faster).
    stages = [] if opts.polish else [(kind0, (2, 1), (1, 1), 1.0)]
    judge = _Judge(fixed, moving)
    # The stages and tiles compare mutual informations; the polish needs it at the end only.
    mi = None if opts.polish else judge(mat)
    for kind, shrink, sigmas, step in stages:
        try:
            new, _, it, msg = _refine(
                fixed,
                moving,
                mat,
                kind,
                shrink=shrink,
                sigmas=sigmas,
                iterations=200,
                stop=stop,
                step=step,
                full_last=True,
            )
        except RuntimeError as exc:
            return _refused(f"{kind}: {exc}", mat, start_mi, iters)
        new_mi = judge(new)
        _DEBUG(f"stage {kind} mi {mi:.4f} -> {new_mi:.4f} {msg[:50]}", mat, new)
        # A higher MI away from where the edges agree is a run-away (small overlaps score high).
        if new_mi > mi:
            new_check = checker.check(ir, new) if start_passed else None
            if new_check is None or new_check.passed:
                mat, mi, check = new, new_mi, new_check  # None: to be checked at the end
        iters += it
    timing["refine"] = round(time.perf_counter() - t0, 2)
    if model in ("affine", "projective") and not opts.polish:
        vis_w = vis_pyr.shrink(fw)
        passes = 3
        for rnd in range(passes):
            src, dst = _tile_matches(vis_w, fw, moving, mat, opts.tiles, stop)
            report("tiles", (rnd + 1) / passes)
            fitted = _robust_fit(src, dst, model, fw)
            _DEBUG(f"tiles {len(src)} {model}", mat, fitted if fitted is not None else mat)
            if fitted is None:
                return _refused(
                    f"too few structured tiles in the overlap for {model} ({len(src)})",
                    mat,
                    mi,
                    iters,
                )
            if model == "affine":
                fitted_mi = judge(fitted)
                if fitted_mi <= mi:  # the similarity explains the pair as well: keep it
                    break
                mi = fitted_mi
            moved = _moved(mat, fitted, vis.shape)
            mat, check = fitted, None
            if moved < 0.05 * fw:  # settled
                break
        report("tiles", 1.0)
        timing["tiles"] = round(time.perf_counter() - t0, 2)
    note = msg.split(":")[-1].strip()
    if opts.polish:
        polished, before, after = polish(ir, vis, mat, model, stop, (ir_pyr, vis_pyr))
        report("polish", 1.0)
        if polished is not mat:
            polished_check = checker.check(ir, polished)
            _DEBUG(f"polish {polished_check}", mat, polished)
            if polished_check.passed:  # else it ran away: the refined estimate is checked
                mat, check = polished, polished_check
                note += f"; polished (edge correlation {before:.3f} -> {after:.3f})"
        mi = judge(mat)
        timing["polish"] = round(time.perf_counter() - t0, 2)
    if not np.isfinite(mi):
        return _refused("the alignment has no overlap", mat, mi, iters)
    if check is None:  # the matrix changed since it was last checked
        check = checker.check(ir, mat)
    timing["total"] = round(time.perf_counter() - t0, 2)
    _DEBUG(f"timing {timing} fw={fw:.2f} fi={fi:.2f} check {check}", mat, mat)
    if unrefined and check.significance < SURE_PEAK:
        return _refused(
            f"every start failed: mutual information ran away from each, and the search's best "
            f"start, polished, has an edge-check significance of {check.significance:.1f} "
            f"({SURE_PEAK:g} needed without the refinement)",
            mat,
            mi,
            iters,
        )
    if not check.passed:
        return _refused(f"implausible result: {check.describe()}", mat, mi, iters)
    return AutoEstimate(
        mat,
        mi,
        METRIC,
        True,
        iters,
        f"search significance {significance:.1f}; {note}",
    )
