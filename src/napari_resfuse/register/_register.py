"""Automatic registration: input checks, the estimate, and the plausibility checks.

:func:`register` turns what a user has (any dtype, RGB, stacks) into the two grey, finite
planes that :func:`._auto.estimate` works on, and refuses a result that did not converge or
whose overlap or geometry is implausible, with the numbers (never a silently wrong warp).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..method.inputs import RGB_LUMA
from ._registration import (
    Registration,
    RegistrationCancelled,
    RegistrationError,
    check_model,
)

__all__ = ["MIN_OVERLAP", "MIN_SIDE", "grey_plane", "register"]

#: The smallest accepted image side for automatic registration.
MIN_SIDE = 16
#: The smallest accepted shared fraction of the smaller frame (``overlap_smaller``).
MIN_OVERLAP = 0.25
#: The largest accepted ratio of the two grids' scales along one axis to the other
#: (a camera's pixels are square: more than this means a wrong solution, not a rig).
MAX_ANISOTROPY = 1.5
#: The largest accepted scale ratio between the two grids, either way.
MAX_SCALE_RATIO = 16.0


def grey_plane(name: str, image) -> np.ndarray:
    """The 2-D grey float64 plane that registration works on.

    ``(H, W)`` as is; RGB ``(H, W, 3)`` (or RGBA, alpha ignored) by its BT.601 luma; a stack
    ``(..., H, W)`` (or ``(..., H, W, 3)``) by its first plane: a rig is fixed, and the first
    frame is what a user sees first. Refuses non-numeric, NaN/inf, constant or small images
    with a one-line message naming ``name``. The input is not modified.
    """
    array = np.asarray(image)
    if array.dtype.kind not in "uif" or array.ndim < 2:
        raise ValueError(
            f"{name} must be a numeric array of at least 2 dimensions, got shape "
            f"{array.shape} and dtype {array.dtype}"
        )
    colour = array.ndim >= 3 and array.shape[-1] in (3, 4) and min(array.shape[-3:-1]) > 4
    if colour:
        plane = array.reshape((-1, *array.shape[-3:]))[0]
        plane = plane[..., :3].astype(np.float64) @ RGB_LUMA
    else:
        plane = array.reshape((-1, *array.shape[-2:]))[0].astype(np.float64)
    if not np.isfinite(plane).all():
        bad = "NaN" if np.isnan(plane).any() else "infinite"
        raise ValueError(f"{name} contains {bad} values; replace them before registering")
    if min(plane.shape) < MIN_SIDE:
        raise ValueError(
            f"{name} of {plane.shape[0]} x {plane.shape[1]} px is too small to register: each "
            f"side must be at least {MIN_SIDE} px"
        )
    lo, hi = plane.min(), plane.max()
    if lo == hi:
        raise ValueError(f"{name} is constant (every value is {lo}): nothing to register")
    return (plane - lo) / (hi - lo)


def check_plausible(reg: Registration, *, min_overlap: float = MIN_OVERLAP) -> None:
    """Raise :class:`RegistrationError` when ``reg``'s geometry cannot be a camera rig's.

    Checked: the shared fraction of the smaller frame (``overlap_smaller ≥ min_overlap``), the
    scale ratio (within ``1/16`` to ``16``), square pixels (anisotropy ``≤ 1.5``) and no
    mirror image.
    """
    jac = reg._jacobian()
    det = float(np.linalg.det(jac))
    sing = np.linalg.svd(jac, compute_uv=False)
    numbers = f"scale {reg.scale:.3g} infrared px per visible px, rotation {reg.rotation:.1f}°"
    if det <= 0:
        raise RegistrationError(f"implausible registration: it mirrors the image ({numbers})")
    if not 1 / MAX_SCALE_RATIO <= reg.scale <= MAX_SCALE_RATIO:
        raise RegistrationError(
            f"implausible registration: a scale ratio of {reg.scale:.3g} between the grids is "
            f"outside 1/{MAX_SCALE_RATIO:g} to {MAX_SCALE_RATIO:g} ({numbers})"
        )
    if sing[0] > MAX_ANISOTROPY * sing[1]:
        raise RegistrationError(
            f"implausible registration: it stretches one axis {sing[0] / sing[1]:.2f} times more "
            f"than the other (at most {MAX_ANISOTROPY} for square pixels; {numbers})"
        )
    shared = reg.overlap_smaller
    if shared < min_overlap:
        raise RegistrationError(
            f"the images overlap on only {100 * shared:.1f} % of the smaller frame (at least "
            f"{100 * min_overlap:.0f} % needed; {100 * reg.overlap:.1f} % of the visible frame; "
            f"{numbers})"
        )


def register(
    infrared,
    visible,
    *,
    model: str = "affine",
    scale_hint: float | None = None,
    min_overlap: float = MIN_OVERLAP,
    progress: Callable[..., Any] | None = None,
    should_stop: Callable[[], bool] | None = None,
    **settings: Any,
) -> Registration:
    """Register the infrared image onto the visible image's pixel grid, automatically.

    Parameters
    ----------
    infrared, visible : array_like
        ``(H, W)`` images of any numeric dtype and unrelated (even inverted) contrast; RGB
        ``(H, W, 3)`` is registered on its luma; a stack ``(..., H, W)`` on its first plane
        (the registration then applies to every plane: a fixed rig).
    model : str
        ``"translation"``, ``"similarity"``, ``"affine"`` (default) or ``"projective"``.
    scale_hint : float, optional
        Infrared pixels per visible pixel if known (e.g. from the two fields of view); the
        search otherwise covers ratios of 1 to 8 either way.
    min_overlap : float
        The smallest accepted fraction of the smaller frame that both images see.
    progress : callable, optional
        Called by the estimator as it goes (see ``napari_resfuse.register._auto``).
    should_stop : callable, optional
        Polled by the estimator; returning True stops it with
        :class:`RegistrationCancelled`.
    **settings
        Further settings of the estimator (``candidates``, ``work_side``, ``tiles``,
        ``polish``: see ``napari_resfuse.register._auto.estimate``); an unknown one is a
        ``TypeError``.

    Returns
    -------
    Registration
        With ``score`` and ``metric`` of the similarity at the optimum and ``info`` holding
        ``converged``, ``iterations`` and the estimator's ``message``.

    Raises
    ------
    ValueError
        Bad input (naming the image): wrong dimensions, NaN/inf, constant, smaller than
        16 px, or an unknown model.
    RegistrationCancelled
        ``should_stop`` returned True.
    RegistrationError
        The optimisation did not converge, or its result is implausible (overlap below
        ``min_overlap``, mirror image, non-square pixels, scale ratio beyond 16): the message
        gives the numbers.
    """
    check_model(model)
    if not 0.0 <= min_overlap <= 1.0:
        raise ValueError(f"min_overlap must be between 0 and 1, got {min_overlap}")
    ir = grey_plane("infrared image", infrared)
    vis = grey_plane("visible image", visible)
    from ._auto import estimate

    try:
        found = estimate(
            ir,
            vis,
            model=model,
            scale_hint=scale_hint,
            progress=progress,
            should_stop=should_stop,
            **settings,
        )
    except Exception:
        if should_stop is not None and should_stop():
            raise RegistrationCancelled("automatic registration stopped on request") from None
        raise
    if should_stop is not None and should_stop():
        raise RegistrationCancelled("automatic registration stopped on request")
    summary = f"score {found.score:.4g} ({found.metric}) after {found.iterations} iterations" + (
        f": {found.message}" if found.message else ""
    )
    if not found.converged:
        raise RegistrationError(f"automatic registration did not converge ({summary})")
    if not np.isfinite(found.score):
        raise RegistrationError(f"automatic registration gave a non-finite score ({summary})")
    try:
        reg = Registration(
            matrix=found.matrix,
            model=model,
            infrared_shape=ir.shape,
            visible_shape=vis.shape,
            score=found.score,
            metric=found.metric,
            method="auto",
            info={
                "converged": bool(found.converged),
                "iterations": int(found.iterations),
                "message": str(found.message),
            },
        )
    except ValueError as exc:
        raise RegistrationError(f"automatic registration gave a bad matrix: {exc}") from None
    check_plausible(reg, min_overlap=min_overlap)
    return reg
