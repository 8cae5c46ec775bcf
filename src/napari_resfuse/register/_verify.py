"""An independent check of an estimate (:mod:`._auto`): do the two images' edges agree there?

The mutual information that the refinement climbs has local maxima, and its value at the
optimum says little about whether the optimum is the right one (it favours small overlaps, and
a wrong scale can score as high as the right one). This check asks another question, with
another measure: on a working grid of at most :data:`SIDE` px, with the infrared resampled
through the estimate, where over *all* translations does the edge-orientation correlation (the
search's doubled-angle fields, zero-mean, normalised over each overlap, times √overlap) peak?
A right estimate sits on that peak (true alignments of the TNO pairs: significance 34 to 97,
the peak within a pixel of the estimate); a wrong one does not (the peak lies elsewhere, or
no peak stands out: unrelated images peak at 10 to 29, somewhere at random).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ._refine import _coordinates
from ._search import _correlate, _orientation, _Pyramid, _shrink, _VisFFT

#: The working grid's long side (px) for the check.
SIDE = 512

#: The smallest significance of the peak for the check to pass.
MIN_PEAK = 20.0

#: How far (working px) the peak may lie from the estimate.
MAX_OFFSET = 2


@dataclass(frozen=True)
class EdgeCheck:
    """The edge-orientation peak around an estimate."""

    significance: float  # of the peak (the best translation)
    offset: tuple[float, float]  # where the peak lies from the estimate, visible px (row, col)
    working_pixel: float  # visible px per working px
    passed: bool

    def describe(self) -> str:
        return (
            f"the two images' edges agree best {math.hypot(*self.offset):.0f} visible px away "
            f"from the estimate (offset {self.offset[0]:+.0f}, {self.offset[1]:+.0f}; "
            f"significance {self.significance:.1f}; at least {MIN_PEAK:g} within "
            f"{MAX_OFFSET * self.working_pixel:.0f} px needed)"
        )


class EdgeChecker:
    """The check against one visible plane, whose working plane and transforms are computed
    once: :func:`._auto._estimate` checks up to five matrices against the same image."""

    def __init__(self, vis: np.ndarray, pyramid: _Pyramid | None = None):
        self.working_pixel = max(1.0, max(vis.shape) / SIDE)  # visible px per working px
        shrink = pyramid.shrink if pyramid is not None else lambda f: _shrink(vis, f)
        self.orientation = _orientation(shrink(self.working_pixel))
        self._fft = _VisFFT(self.orientation)

    def _canvas(self, ir: np.ndarray, mat: np.ndarray):
        """The infrared's orientation field resampled through ``mat`` onto the working plane,
        and the mask of where it has (eroded) data."""
        fw = self.working_pixel
        scale = math.sqrt(abs(np.linalg.det(mat[:2, :2])))
        fi = max(1.0, scale * fw)  # infrared px per working px, never finer than its own
        ir_w = _shrink(ir, fi)
        h, w = self.orientation.shape
        rr, cc = (a.ravel() * fw for a in np.mgrid[0:h, 0:w].astype(np.float64))
        with np.errstate(divide="ignore", invalid="ignore"):
            coords = _coordinates(mat, rr, cc) / fi
        coords = np.nan_to_num(coords, nan=-1e6, posinf=-1e6, neginf=-1e6)
        canvas = ndimage.map_coordinates(ir_w, coords, order=1, mode="constant", cval=np.nan)
        canvas = canvas.reshape(h, w)
        mask = ndimage.binary_erosion(np.isfinite(canvas), iterations=3)
        return _orientation(np.where(np.isfinite(canvas), canvas, 0.0)), mask

    def agreement(self, ir: np.ndarray, mat: np.ndarray) -> float:
        """See :func:`edge_agreement`."""
        oc, mask = self._canvas(ir, mat)
        if mask.sum() < 64:
            return 0.0
        x, y = self.orientation[mask], oc[mask]
        x, y = x - x.mean(), y - y.mean()
        den = math.sqrt(float(np.vdot(x, x).real) * float(np.vdot(y, y).real))
        return float(np.vdot(y, x).real) / den if den > 0 else 0.0

    def check(self, ir: np.ndarray, mat: np.ndarray) -> EdgeCheck:
        """See :func:`edge_check`."""
        fw = self.working_pixel
        oc, mask = self._canvas(ir, mat)
        if mask.sum() < 64:
            return EdgeCheck(0.0, (0.0, 0.0), fw, False)
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        r0, c0 = rows[0], cols[0]
        box = (slice(r0, rows[-1] + 1), slice(c0, cols[-1] + 1))
        significance, d, _ = _correlate(self._fft, oc[box] * mask[box], mask[box], 0.5)
        if significance is None:
            return EdgeCheck(0.0, (0.0, 0.0), fw, False)
        # The box's pixel q sits at visible working px q + (r0, c0) under the estimate; the
        # peak puts it at q + d.
        off = (float(d[0] - r0), float(d[1] - c0))
        passed = significance >= MIN_PEAK and max(abs(off[0]), abs(off[1])) <= MAX_OFFSET
        return EdgeCheck(float(significance), (off[0] * fw, off[1] * fw), fw, bool(passed))


def edge_agreement(ir: np.ndarray, vis: np.ndarray, mat: np.ndarray) -> float:
    """The zero-mean normalised edge-orientation correlation at ``mat`` over the overlap.

    0 for unrelated images, 1 for identical edge orientations; true alignments of the TNO
    pairs score 0.01 to 0.33. Used by the benchmark to compare an estimate with a truth.
    """
    return EdgeChecker(vis).agreement(ir, mat)


def edge_check(ir: np.ndarray, vis: np.ndarray, mat: np.ndarray) -> EdgeCheck:
    """Check ``mat`` (visible px → infrared px) on normalised planes ``ir`` and ``vis``."""
    return EdgeChecker(vis).check(ir, mat)
