"""The :class:`Registration` of an infrared image onto a visible image's pixel grid.

A registration is a 3 × 3 homogeneous matrix in napari's ``(row, col)`` order that maps a
*visible* pixel coordinate ``(r, c, 1)`` to the *infrared* pixel coordinate seen there, plus
the two image shapes it was made for. Pixel centres sit at integer coordinates (as in napari
and scipy.ndimage). Everything here is numpy/scipy; no napari, Qt or torch.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from . import _geometry

__all__ = [
    "FORMAT",
    "MODELS",
    "VERSION",
    "Registration",
    "RegistrationCancelled",
    "RegistrationError",
]

#: The transformation models, from the most to the least constrained.
MODELS = ("translation", "similarity", "affine", "projective")

#: The ``format`` and ``version`` fields of a registration file.
FORMAT = "napari-resfuse registration"
VERSION = 1

_INNER_LIST = re.compile(r"\[[^\[\]{}\"]*\]")

_CONVENTION = (
    "matrix maps a visible pixel (row, col, 1) to the infrared pixel (row, col, 1) seen there; "
    "pixel centres at integer coordinates"
)


class RegistrationError(ValueError):
    """A registration failed, is implausible, or does not fit the images it is applied to."""


class RegistrationCancelled(Exception):
    """An automatic registration was stopped (``should_stop`` returned True); no result."""


def check_model(model: str) -> str:
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}: expected one of {', '.join(MODELS)}")
    return model


def _shape(name: str, value) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        shape = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (height, width), got {value!r}") from None
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"{name} must be (height, width) of positive sizes, got {value!r}")
    return shape


def _read_only(array: np.ndarray) -> np.ndarray:
    """``array``, marked read-only (the record is immutable, so are the arrays it hands out)."""
    array.setflags(write=False)
    return array


def _matrix(value) -> np.ndarray:
    try:
        matrix = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"matrix must be a 3 x 3 array of numbers, got {value!r}") from None
    if matrix.shape == (2, 3):  # an affine matrix without its last row
        matrix = np.vstack([matrix, [0.0, 0.0, 1.0]])
    if matrix.shape != (3, 3):
        raise ValueError(f"matrix must be 3 x 3 (or 2 x 3 affine), got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError(f"matrix has non-finite entries: {matrix.tolist()}")
    # |det| against Hadamard's bound (the product of the row norms): scale-free per row, so
    # large translations or scale ratios do not count as "nearly singular".
    bound = float(np.prod(np.linalg.norm(matrix, axis=1)))
    if matrix[2, 2] == 0 or bound == 0 or abs(np.linalg.det(matrix)) <= 1e-14 * bound:
        raise ValueError(f"matrix is not invertible: {matrix.tolist()}")
    return _read_only(matrix / matrix[2, 2])


@dataclass(frozen=True, eq=False)
class Registration:
    """Where each visible pixel looks in the infrared image.

    Attributes
    ----------
    matrix : ndarray
        3 × 3 homogeneous, ``(row, col)`` order: maps a visible pixel ``(r, c, 1)`` to the
        infrared pixel coordinate seen there (normalised so that ``matrix[2, 2] == 1``; the
        last row is ``[0, 0, 1]`` except for ``"projective"``). A 2 × 3 affine matrix is
        accepted too.
    model : str
        ``"translation"``, ``"similarity"``, ``"affine"`` or ``"projective"``.
    infrared_shape, visible_shape : (int, int) or None
        The ``(height, width)`` the registration is for; images of other shapes are refused.
        ``None`` (landmarks given without shapes) binds to the first images it is applied to
        in :func:`~napari_resfuse.fuse`; see :meth:`with_shapes`.
    score : float or None
        The similarity at the optimum (automatic registration), see ``metric``.
    metric : str or None
        The similarity measure of ``score``.
    residuals : ndarray or None
        Landmarks only: per pair, the distance in visible pixels between the visible point and
        the infrared point mapped onto the visible grid (``inv(matrix)``).
    landmarks : (ndarray, ndarray) or None
        Landmarks only: the infrared and visible ``(N, 2)`` ``(row, col)`` points.
    method : str
        How it was made: ``"auto"``, ``"landmarks"`` or ``"matrix"``.
    info : dict
        Anything else worth keeping (automatic: ``converged``, ``iterations``, ``message``).
    """

    matrix: np.ndarray
    model: str = "affine"
    infrared_shape: tuple[int, int] | None = None
    visible_shape: tuple[int, int] | None = None
    score: float | None = None
    metric: str | None = None
    residuals: np.ndarray | None = None
    landmarks: tuple[np.ndarray, np.ndarray] | None = None
    method: str = "matrix"
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "matrix", _matrix(self.matrix))
        set_(self, "model", check_model(self.model))
        if self.model != "projective" and not _geometry.is_affine(self.matrix):
            raise ValueError(
                f"a {self.model} matrix must end with the row [0, 0, 1], got "
                f"{self.matrix[2].tolist()}"
            )
        set_(self, "infrared_shape", _shape("infrared_shape", self.infrared_shape))
        set_(self, "visible_shape", _shape("visible_shape", self.visible_shape))
        if self.score is not None:
            set_(self, "score", float(self.score))
        if self.residuals is not None:
            res = np.array(self.residuals, dtype=np.float64).reshape(-1)
            set_(self, "residuals", _read_only(res))
        if self.landmarks is not None:
            pts = tuple(
                _read_only(np.array(p, dtype=np.float64).reshape(-1, 2)) for p in self.landmarks
            )
            set_(self, "landmarks", pts)
        set_(self, "info", dict(self.info))

    # -- shapes ------------------------------------------------------------------------------

    def with_shapes(self, infrared_shape, visible_shape) -> Registration:
        """A copy for images of these ``(height, width)`` (shapes already set must agree)."""
        new = (_shape("infrared_shape", infrared_shape), _shape("visible_shape", visible_shape))
        for name, old, value in zip(
            ("infrared", "visible"), (self.infrared_shape, self.visible_shape), new, strict=True
        ):
            if old is not None and old != value:
                raise RegistrationError(
                    f"this registration is for a {name} image of {old[0]} x {old[1]} px, not "
                    f"{value[0]} x {value[1]} px"
                )
        return replace(self, infrared_shape=new[0], visible_shape=new[1])

    def check_shapes(self, infrared_shape, visible_shape) -> None:
        """Raise :class:`RegistrationError` unless the images have the recorded shapes."""
        self._require_shapes()
        got = (tuple(infrared_shape), tuple(visible_shape))
        want = (self.infrared_shape, self.visible_shape)
        if got != want:
            raise RegistrationError(
                f"this registration is for an infrared image of {want[0][0]} x {want[0][1]} px "
                f"and a visible image of {want[1][0]} x {want[1][1]} px, not infrared "
                f"{got[0][0]} x {got[0][1]} and visible {got[1][0]} x {got[1][1]}"
            )

    def _require_shapes(self) -> None:
        if self.infrared_shape is None or self.visible_shape is None:
            raise RegistrationError(
                "this registration has no image shapes: give infrared_shape and visible_shape "
                "(register_landmarks) or call .with_shapes(infrared_shape, visible_shape)"
            )

    def _pull(self, onto: str) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
        """``(matrix, source shape, target shape)`` of resampling onto the ``"visible"`` or the
        ``"infrared"`` grid; raises without recorded shapes."""
        self._require_shapes()
        if onto == "visible":
            return self.matrix, self.infrared_shape, self.visible_shape
        return self.inverse_matrix, self.visible_shape, self.infrared_shape

    # -- geometry ----------------------------------------------------------------------------

    @cached_property
    def inverse_matrix(self) -> np.ndarray:
        """Maps an infrared pixel coordinate to the visible pixel coordinate where it appears."""
        inverse = np.linalg.inv(self.matrix)
        return _read_only(inverse / inverse[2, 2])

    def to_infrared(self, visible_points) -> np.ndarray:
        """Map ``(N, 2)`` visible ``(row, col)`` points to infrared coordinates."""
        return _geometry.apply_matrix(self.matrix, visible_points)

    def to_visible(self, infrared_points) -> np.ndarray:
        """Map ``(N, 2)`` infrared ``(row, col)`` points to visible coordinates."""
        return _geometry.apply_matrix(self.inverse_matrix, infrared_points)

    @cached_property
    def valid(self) -> np.ndarray:
        """Visible-grid mask (``visible_shape``): pixels whose centre sees the infrared frame."""
        return _read_only(_geometry.valid_mask(*self._pull("visible")))

    @cached_property
    def valid_infrared(self) -> np.ndarray:
        """Infrared-grid mask: infrared pixels whose centre lies inside the visible frame."""
        return _read_only(_geometry.valid_mask(*self._pull("infrared")))

    @cached_property
    def overlap(self) -> float:
        """Fraction of the visible frame covered by the warped infrared image (0 to 1)."""
        return float(self.valid.mean())

    @cached_property
    def overlap_smaller(self) -> float:
        """Fraction of the smaller frame that both images see (areas on the visible grid).

        The shared area (``valid.sum()``) over the smaller of the visible frame and the
        infrared frame mapped onto the visible grid: 1 when one frame lies inside the other.
        """
        self._require_shapes()
        shared = float(self.valid.sum())
        ir_area = _geometry.frame_area_in_target(self.matrix, self.infrared_shape)
        smaller = min(float(np.prod(self.visible_shape)), ir_area)
        return min(1.0, shared / smaller) if smaller > 0 else 0.0

    def overlap_box(self, grid: str = "visible") -> tuple[int, int, int, int]:
        """The largest axis-aligned rectangle inside the overlap: ``(row0, col0, row1, col1)``.

        On the visible grid (inside :attr:`valid`) or, with ``grid="infrared"``, on the
        infrared grid (inside :attr:`valid_infrared`); ``image[row0:row1, col0:col1]``.
        """
        if grid not in ("visible", "infrared"):
            raise ValueError(f"grid must be 'visible' or 'infrared', got {grid!r}")
        mask = self.valid if grid == "visible" else self.valid_infrared
        return _geometry.largest_rectangle(mask)

    @property
    def rms(self) -> float | None:
        """Root mean square of :attr:`residuals` (visible pixels); ``None`` without landmarks."""
        if self.residuals is None or self.residuals.size == 0:
            return None
        return float(np.sqrt(np.mean(self.residuals**2)))

    @property
    def scale(self) -> float:
        """Infrared pixels per visible pixel (geometric mean over both axes, at the centre)."""
        jac = self._jacobian()
        return float(math.sqrt(abs(np.linalg.det(jac))))

    @property
    def rotation(self) -> float:
        """Rotation in degrees of the infrared image relative to the visible one (at the
        visible frame's centre; counter-clockwise as displayed, rows pointing down)."""
        jac = np.linalg.inv(self._jacobian())  # infrared → visible
        return float(math.degrees(math.atan2(-jac[0, 1] + jac[1, 0], jac[0, 0] + jac[1, 1])))

    def _jacobian(self) -> np.ndarray:
        m = self.matrix
        if self.visible_shape is None:
            point = np.zeros(2)
        else:
            point = (np.array(self.visible_shape, dtype=np.float64) - 1) / 2
        w = m[2, 0] * point[0] + m[2, 1] * point[1] + m[2, 2]
        xy = m[:2, :2] @ point + m[:2, 2]
        return (m[:2, :2] * w - np.outer(xy, m[2, :2])) / w**2

    # -- resampling --------------------------------------------------------------------------

    def warp(self, infrared, *, order: int = 1, fill: float = 0.0) -> np.ndarray:
        """The infrared image resampled onto the visible grid.

        Parameters
        ----------
        infrared : array_like
            ``(..., H, W)`` (stacks: every plane with the same matrix) or colour
            ``(..., H, W, 3)``, with ``(H, W) == infrared_shape``.
        order : int
            Spline order of the interpolation (0 nearest, 1 bilinear, 3 cubic).
        fill : float
            The value outside the infrared frame (``~valid``); 0 by default, ``np.nan`` to
            mark it.

        Returns
        -------
        ndarray
            ``(..., *visible_shape)`` (colour last), float64 for a float64 input, else
            float32. The input is not modified. Affine models use
            ``scipy.ndimage.affine_transform``, projective ones ``map_coordinates``.
        """
        return self._resample(infrared, "visible", order, fill)

    def warp_visible(self, visible, *, order: int = 1, fill: float = 0.0) -> np.ndarray:
        """The visible image resampled onto the infrared grid (``inv(matrix)``); see
        :meth:`warp` for the arguments. Used by ``fuse(..., grid="infrared")``."""
        return self._resample(visible, "infrared", order, fill)

    def _resample(self, image, onto: str, order: int, fill: float) -> np.ndarray:
        """:meth:`warp` (``onto="visible"``) or :meth:`warp_visible` (``"infrared"``)."""
        source = "infrared" if onto == "visible" else "visible"
        mask = self.valid if onto == "visible" else self.valid_infrared
        return _geometry.resample(
            image, *self._pull(onto), order=order, fill=fill, name=f"{source} image", mask=mask
        )

    # -- files -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready content of a registration file (see :meth:`to_json`)."""
        from .. import __version__

        out: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "model": self.model,
            "matrix": [[float(v) for v in row] for row in self.matrix],
            "convention": _CONVENTION,
            "infrared_shape": None if self.infrared_shape is None else list(self.infrared_shape),
            "visible_shape": None if self.visible_shape is None else list(self.visible_shape),
            "method": self.method,
            "score": self.score,
            "metric": self.metric,
            "residuals": None if self.residuals is None else self.residuals.tolist(),
            "rms": self.rms,
        }
        if self.infrared_shape is not None and self.visible_shape is not None:
            out["overlap"] = round(self.overlap, 6)
        if self.landmarks is not None:
            out["landmarks"] = {
                "infrared": self.landmarks[0].tolist(),
                "visible": self.landmarks[1].tolist(),
            }
        if self.info:
            out["info"] = self.info
        out["package_version"] = __version__
        return out

    def to_json(self) -> str:
        """A small, versioned, human-readable JSON document (see the README for the format)."""
        text = json.dumps(self.to_dict(), indent=2, default=_json_default)
        # One line per innermost list of numbers (a matrix row, a shape, a point).
        return _INNER_LIST.sub(_one_line, text) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "registration") -> Registration:
        """Rebuild a registration from :meth:`to_dict`'s output (checked)."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise RegistrationError(f"{source} is not a {FORMAT!r} document")
        version = data.get("version")
        if version != VERSION:
            raise RegistrationError(
                f"{source} has format version {version!r}; this version of napari-resfuse "
                f"reads version {VERSION}"
            )
        missing = [k for k in ("model", "matrix") if k not in data]
        if missing:
            raise RegistrationError(f"{source} lacks {', '.join(missing)}")
        landmarks = data.get("landmarks")
        try:
            return cls(
                matrix=data["matrix"],
                model=data["model"],
                infrared_shape=data.get("infrared_shape"),
                visible_shape=data.get("visible_shape"),
                score=data.get("score"),
                metric=data.get("metric"),
                residuals=data.get("residuals"),
                landmarks=None
                if landmarks is None
                else (landmarks["infrared"], landmarks["visible"]),
                method=data.get("method", "matrix"),
                info=data.get("info") or {},
            )
        except RegistrationError:
            raise
        except (ValueError, TypeError, KeyError) as exc:
            raise RegistrationError(f"{source}: {exc}") from None

    @classmethod
    def from_json(cls, text: str, *, source: str = "registration") -> Registration:
        """Parse :meth:`to_json`'s output."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RegistrationError(f"{source} is not valid JSON: {exc}") from None
        return cls.from_dict(data, source=source)

    def save(self, path) -> Path:
        """Write :meth:`to_json` to ``path``; returns the path."""
        path = Path(path)
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path) -> Registration:
        """Read a registration file written by :meth:`save` (or ``resfuse register``)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"registration file {str(path)!r} does not exist")
        return cls.from_json(path.read_text(encoding="utf-8"), source=f"file {str(path)!r}")

    def __repr__(self) -> str:
        shapes = f"infrared_shape={self.infrared_shape}, visible_shape={self.visible_shape}"
        extra = f", score={self.score:.4g}" if self.score is not None else ""
        if self.rms is not None:
            extra += f", rms={self.rms:.3g}"
        return f"Registration(model={self.model!r}, {shapes}{extra}, method={self.method!r})"


def _one_line(match: re.Match) -> str:
    return " ".join(match.group(0).split()).replace("[ ", "[").replace(" ]", "]")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
