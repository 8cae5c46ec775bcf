"""Two deep-feature fusion baselines by Li et al., on torchvision's pretrained networks.

* :func:`vgg19_li2018`: Li, Wu & Kittler (2018), VGG-19 features of the detail layers with a
  multi-layer l1-norm weight rule;
* :func:`resnet50_zca`: Li, Wu & Durrani (2019), ResNet-50 features whitened by ZCA, l1-norm
  weight maps, a weighted average of the source images.

Both port the semantics of their authors' published MATLAB code (``hli1221/
imagefusion_deeplearning`` and ``hli1221/imagefusion_resnet50``), each step noted in the
docstrings; the networks are torchvision's (through the engine's
:func:`~napari_resfuse.method.backbones.get_feature_network`: ImageNet weights from torch's cache
or a download, a ``state_dict`` file, or seeded random weights for tests), not the MatConvNet
models the authors used, so the numbers differ from theirs (see each function's Notes).

Unlike the other baselines this module needs torch; :mod:`napari_resfuse.baselines` registers
these functions through wrappers that import it on first call.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..method.backbones import get_feature_network, resolve_device
from ..method.published_code import LOWPASS_LAMBDA, LOWPASS_PAD, block_replicate, tikhonov_lowpass
from .simple import _as_unit_pair, _check_int, _check_odd, _check_positive

__all__ = [
    "LI2018_LAYERS",
    "VGG19_LAYERS",
    "ZCA_EPSILON",
    "ZCA_LEVELS",
    "DeepFusion",
    "imresize_bicubic",
    "resnet50_zca",
    "vgg19_li2018",
    "zca_whiten",
]

#: VGG-19 layers that ``vgg19_li2018`` can use: name -> (torchvision ``features`` index, stride).
#: ``convX_1`` is the convolution's output before its ReLU, ``reluX_1`` after it.
VGG19_LAYERS: dict[str, tuple[int, int]] = {
    "conv1_1": (0, 1),
    "relu1_1": (1, 1),
    "conv2_1": (5, 2),
    "relu2_1": (6, 2),
    "conv3_1": (10, 4),
    "relu3_1": (11, 4),
    "conv4_1": (19, 8),
    "relu4_1": (20, 8),
    "conv5_1": (28, 16),
    "relu5_1": (29, 16),
}

#: The four layers the authors' code reads: MatConvNet's ``res(2)``, ``res(7)``, ``res(12)`` and
#: ``res(21)`` of ``vl_simplenn``, i.e. the outputs of conv1_1, conv2_1, conv3_1 and conv4_1
#: before their ReLU (the code names them relu1_1 ... relu4_1; ``res(i + 1)`` is layer ``i``'s
#: output).
LI2018_LAYERS: tuple[str, ...] = ("conv1_1", "conv2_1", "conv3_1", "conv4_1")

#: ResNet-50 levels of ``resnet50_zca``: the MatConvNet variable -> torchvision graph node.
#: ``res4fx`` and ``res5cx`` are the outputs of the last block of stage 4 and 5 after the block's
#: final ReLU (MatConvNet's DAG import appends ``x`` to a ReLU's output name).
ZCA_LEVELS: dict[str, str] = {"res4f": "layer3", "res5c": "layer4"}

#: ε added to the singular values in ``zca.m``.
ZCA_EPSILON = 1e-5


class DeepFusion(NamedTuple):
    """What a deep baseline returns with ``full=True``.

    Attributes
    ----------
    fused : ndarray
        ``(H, W)`` float32, the fused image (unclipped).
    weights : ndarray
        ``(2, L, H, W)`` float32, each level's weight maps at image size, infrared first. Where a
        weight is 0 / 0 in the authors' code (both activities zero) it is reported as 0.5.
    levels : tuple of str
        The names of the ``L`` levels.
    """

    fused: np.ndarray
    weights: np.ndarray
    levels: tuple[str, ...]


# --------------------------------------------------------------------------------------------
# Shared steps
# --------------------------------------------------------------------------------------------


def _ratio(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``a / (a + b)`` and ``b / (a + b)``: NaN where both are 0, as MATLAB computes it."""
    total = a + b
    return a / total, b / total


def _l1(features: torch.Tensor) -> torch.Tensor:
    """``sum(abs(x), 3)`` of MATLAB's ``H × W × C`` array: ``(B, C, h, w) -> (B, 1, h, w)``."""
    return features.abs().sum(dim=1, keepdim=True)


def _pair_tensor(ir: np.ndarray, vis: np.ndarray) -> torch.Tensor:
    """``(2, 1, H, W)`` float64 on the CPU: only the network runs on the chosen device (so the
    float64 steps also work on devices without float64, such as MPS)."""
    return torch.from_numpy(np.stack([ir, vis])[:, None])


# --------------------------------------------------------------------------------------------
# Li, Wu & Kittler 2018: VGG-19
# --------------------------------------------------------------------------------------------


def _vgg_features(network, images: torch.Tensor, layers: tuple[str, ...]) -> list[torch.Tensor]:
    """Run torchvision's VGG-19 layers with ceil-rounding pools; the taps of ``layers``.

    MatConvNet's ``imagenet-vgg-verydeep-19`` pads each 2 × 2 pool by one pixel at the bottom
    and right, so a pool's output is ``ceil(h / 2)`` (MatConvNet's Caffe importer sets the
    bottom/right pad to ``min(pad + stride - 1, kernel - 1)`` to reproduce Caffe's ceil
    rounding); torchvision's pools round down. The layers (and their weights) are
    torchvision's; only the pools' rounding is MatConvNet's.
    """
    wanted = {VGG19_LAYERS[name][0]: name for name in layers}
    taps: dict[str, torch.Tensor] = {}
    x = images
    for index in range(max(wanted) + 1):
        layer = network.module.get_submodule(f"features.{index}")
        if isinstance(layer, nn.MaxPool2d):
            x = F.max_pool2d(x, layer.kernel_size, layer.stride, ceil_mode=True)
        else:
            x = layer(x)  # ReLUs are out of place (see backbones): taps stay intact
        if index in wanted:
            taps[wanted[index]] = x
    return [taps[name] for name in layers]


def vgg19_li2018(
    infrared,
    visible,
    *,
    weights: str = "imagenet",
    seed: int = 0,
    layers: tuple[str, ...] = LI2018_LAYERS,
    lowpass_lambda: float = LOWPASS_LAMBDA,
    lowpass_pad: int = LOWPASS_PAD,
    device: str = "auto",
    full: bool = False,
):
    """Fuse with VGG-19 detail features, Li, Wu & Kittler (2018).

    Parameters
    ----------
    infrared, visible : array_like
        2-D images of the same shape, at least ``lowpass_pad`` pixels on each side, ``uint8``
        (divided by 255) or float in ``[0, 1]``. Not modified.
    weights : str
        ``"imagenet"`` (torchvision's ``VGG19_Weights.IMAGENET1K_V1``), another member name of
        that enum, the path of a torchvision VGG-19 ``state_dict``, or ``"random"`` (seeded,
        for tests only).
    seed : int
        Seed of the ``"random"`` weights.
    layers : tuple of str
        Feature layers (keys of :data:`VGG19_LAYERS`), default :data:`LI2018_LAYERS`, the
        four the authors' code uses. The paper names relu1_1 ... relu4_1; pass those for the
        post-ReLU features.
    lowpass_lambda, lowpass_pad : float, int
        λ and the symmetric padding of the Tikhonov low-pass (code: ``fltlmbd = 5``,
        ``npd = 16``).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    full : bool
        Return a :class:`DeepFusion` with the per-level weight maps instead of the image.

    Returns
    -------
    ndarray or DeepFusion
        The fused image, float32, the input shape, unclipped (or the :class:`DeepFusion`).

    Raises
    ------
    ValueError
        Bad images (not 2-D, empty, NaN/inf, unsupported dtype, different shapes, a side
        shorter than ``lowpass_pad``), unknown ``layers``, or bad low-pass parameters.
    FileNotFoundError
        ``"imagenet"`` weights neither cached nor downloadable, or a missing weights file.

    Notes
    -----
    Following ``fusion_method_multi_layers.m``, ``fusion_strategy.m`` and ``lowpass.m``:

    1. Decomposition: ``I_k^b`` = the Tikhonov low-pass (SPORCO ``lowpass``): the minimiser of
       ``‖b − I_k‖² + λ(‖∇_x b‖² + ‖∇_y b‖²)``, solved by FFT on the image padded by
       ``lowpass_pad`` pixels of symmetric mirroring; ``I_k^d = I_k − I_k^b``
       (:func:`~napari_resfuse.method.published_code.tikhonov_lowpass`).
    2. Base: ``F_b = (I_1^b + I_2^b) / 2``.
    3. Features: ``I_k^d`` repeated to three channels, fed unnormalised to VGG-19; for each
       layer ``i`` the l1-norm over channels ``C_k^i = ‖φ_k^i‖_1`` and its 3 × 3 mean
       ``Ĉ_k^i`` with zero padding (the code's zero border and ``sum / 9``).
    4. Weights: ``W_k^i = Ĉ_k^i / (Ĉ_1^i + Ĉ_2^i)``, each feature pixel repeated over a
       ``s × s`` block (``s`` = the layer's stride, 1, 2, 4, 8) and cropped to the image.
    5. Detail: ``F_d^i = W_1^i I_1^d + W_2^i I_2^d`` per layer, ``F_d = max_i F_d^i`` (the
       signed maximum), and ``F = F_b + F_d``.

    Where ``Ĉ_1^i + Ĉ_2^i = 0`` the code divides 0 by 0; MATLAB's ``max`` skips the NaN, and
    so does this port (``torch.fmax``); a pixel where every layer is NaN gets ``F_d = 0``
    (MATLAB writes NaN, which ``imwrite`` stores as 0). Identical inputs are returned
    unchanged.

    Deviations: torchvision's VGG-19 and its ImageNet weights stand in for MatConvNet's
    ``imagenet-vgg-verydeep-19`` (the same architecture, separately trained weights), so the
    features, and the fused images, differ from the authors'. MatConvNet pads each pool by one
    pixel at the bottom and right (ceil rounding), which we reproduce; with floor rounding the
    deepest layers' blocks would leave the last rows and columns of odd-sized images without
    weights (the authors' published outputs show no such border).

    References
    ----------
    .. [1] H. Li, X.-J. Wu, J. Kittler, "Infrared and visible image fusion using a deep
       learning framework", 24th International Conference on Pattern Recognition (ICPR),
       2018, pp. 2705–2710. Code: https://github.com/hli1221/imagefusion_deeplearning
    """
    ir, vis = _as_unit_pair(infrared, visible)
    layers = _check_layers(layers)
    lam = _check_positive(lowpass_lambda, "lowpass_lambda")
    pad = _check_int(lowpass_pad, "lowpass_pad")
    if min(ir.shape) < max(pad, 1):
        raise ValueError(
            f"vgg19_li2018 needs images of at least {pad} x {pad} pixels (the low-pass mirrors "
            f"{pad} pixels at each border); got shape {ir.shape}"
        )
    dev = resolve_device(device)
    nodes = tuple(f"features.{VGG19_LAYERS[name][0]}" for name in layers)
    network = get_feature_network("vgg19", weights, seed=seed, nodes=nodes, device=dev)

    sources = _pair_tensor(ir, vis)  # (2, 1, H, W) float64
    low, detail = tikhonov_lowpass(sources, lam, pad)  # eq. (base, detail), float64
    fused_base = (low[0, 0] + low[1, 0]) / 2.0
    size = tuple(ir.shape)
    with torch.inference_mode():
        images = detail.float().to(dev).expand(-1, 3, -1, -1)  # (2, 3, H, W), single
        features = _vgg_features(network, images, layers)
        candidates, level_weights = [], []
        for name, feature in zip(layers, features, strict=True):
            unit = VGG19_LAYERS[name][1]
            energy = _l1(feature).cpu().double()  # (2, 1, h, w), summed in single
            energy = F.avg_pool2d(energy, 3, stride=1, padding=1, count_include_pad=True)
            w_ir, w_vis = _ratio(energy[0:1], energy[1:2])  # (1, 1, h, w), NaN where 0 / 0
            w = block_replicate(torch.cat([w_ir, w_vis]), unit, size)[:, 0]  # (2, H, W)
            candidates.append(w[0] * detail[0, 0] + w[1] * detail[1, 0])
            level_weights.append(w)
        fused_detail = candidates[0]
        for candidate in candidates[1:]:
            fused_detail = torch.fmax(fused_detail, candidate)  # MATLAB's max skips NaN
        fused = fused_base + torch.nan_to_num(fused_detail, nan=0.0)
        fused = fused.float().cpu().numpy()
        if not full:
            return fused
        stacked = torch.stack(level_weights, dim=1)  # (2, L, H, W)
        stacked = torch.nan_to_num(stacked, nan=0.5).float().cpu().numpy()
    return DeepFusion(fused, stacked, layers)


def _check_layers(layers) -> tuple[str, ...]:
    chosen = (layers,) if isinstance(layers, str) else tuple(layers)
    unknown = [name for name in chosen if name not in VGG19_LAYERS]
    if not chosen or unknown or len(set(chosen)) != len(chosen):
        raise ValueError(
            f"layers must be distinct names from {tuple(VGG19_LAYERS)}; got {layers!r}"
        )
    return chosen


# --------------------------------------------------------------------------------------------
# Li, Wu & Durrani 2019: ResNet-50 + ZCA
# --------------------------------------------------------------------------------------------


def _zca(features: torch.Tensor, epsilon: float) -> torch.Tensor:
    """``zca.m`` on a stack of matrices ``(..., h, w)`` (float64), each whitened on its own."""
    mean = features.mean(dim=(-2, -1), keepdim=True)  # MATLAB's mean2
    centred = features - mean
    covariance = centred @ centred.transpose(-1, -2)  # (..., h, h), not divided by w
    # The covariance is symmetric positive semi-definite: its SVD U S U' is its eigen-
    # decomposition, with S the eigenvalues (|λ|, which only differs by rounding).
    eigenvalues, vectors = torch.linalg.eigh(covariance)
    scale = 1.0 / torch.sqrt(eigenvalues.abs() + epsilon)
    whitening = (vectors * scale[..., None, :]) @ vectors.transpose(-1, -2)  # U S^-1/2 U'
    whitened = whitening @ centred
    # The code leaves a matrix whose mean is exactly 0 as it is.
    return torch.where(mean == 0, features, whitened)


def zca_whiten(features, *, epsilon: float = ZCA_EPSILON) -> np.ndarray:
    """ZCA-whiten each matrix of a stack, as ``zca.m`` of Li, Wu & Durrani does per channel.

    Parameters
    ----------
    features : array_like
        ``(..., h, w)``: one or more real matrices (for a feature map, one per channel, rows
        of the image as rows).
    epsilon : float
        Added to the singular values before the inverse square root (the code's ``0.00001``).

    Returns
    -------
    ndarray
        float64, the shape of ``features``.

    Notes
    -----
    For each matrix ``X`` with mean ``μ`` (over all its entries) and ``X̄ = X − μ``: the
    ``h × h`` matrix ``C = X̄ X̄ᵀ`` (not divided by the number of columns), its SVD
    ``C = U S Uᵀ``, and

    .. math:: Y = U (S + ε)^{-1/2} U^T \\bar X.

    A matrix whose mean is exactly 0 is returned unchanged, as in the code.

    Examples
    --------
    >>> import numpy as np
    >>> y = zca_whiten(np.array([[1.0, 2.0, 3.0], [2.0, 0.0, 5.0]]))
    >>> y.shape
    (2, 3)
    """
    array = np.asarray(features, dtype=np.float64)
    if array.ndim < 2 or array.size == 0:
        raise ValueError(f"features must be a non-empty (..., h, w) array; got shape {array.shape}")
    eps = _check_positive(epsilon, "epsilon")
    return _zca(torch.from_numpy(array), eps).numpy()


def _cubic(x: np.ndarray) -> np.ndarray:
    """MATLAB imresize's bicubic kernel (Keys, a = −0.5)."""
    ax = np.abs(x)
    return (1.5 * ax**3 - 2.5 * ax**2 + 1.0) * (ax <= 1) + (
        -0.5 * ax**3 + 2.5 * ax**2 - 4.0 * ax + 2.0
    ) * ((ax > 1) & (ax <= 2))


def _resize_matrix(in_length: int, out_length: int) -> np.ndarray:
    """``(out, in)`` matrix of MATLAB ``imresize``'s bicubic weights along one axis."""
    scale = out_length / in_length
    width = 4.0
    kernel = _cubic
    if scale < 1:  # shrinking: MATLAB widens the kernel (antialiasing)

        def kernel(x):
            return scale * _cubic(scale * x)

        width = 4.0 / scale
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)  # output pixel centre in input coordinates
    left = np.floor(u - width / 2.0)
    taps = int(np.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]  # 1-based
    weights = kernel(u[:, None] - indices)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length)[::-1]])  # symmetric
    columns = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    matrix = np.zeros((out_length, in_length))
    np.add.at(matrix, (np.repeat(np.arange(out_length), taps), columns.ravel()), weights.ravel())
    return matrix


def imresize_bicubic(image, size: tuple[int, int]) -> np.ndarray:
    """MATLAB's ``imresize(image, size)`` (bicubic, the default method) for a 2-D array.

    Parameters
    ----------
    image : array_like
        2-D real array.
    size : (int, int)
        Output ``(rows, columns)``.

    Returns
    -------
    ndarray
        float64 of shape ``size``.

    Notes
    -----
    Separable Keys cubic convolution with ``a = −0.5``; output pixel ``x`` (1-based) samples
    the input at ``u = x / s + (1 − 1/s) / 2`` (``s`` = output / input length); the weights
    of each output pixel are normalised to sum to 1 and indices outside the image are
    mirrored (symmetric, the edge pixel repeated). When shrinking, the kernel is stretched by
    ``1 / s`` (MATLAB's default antialiasing). Unlike ``torch``'s bicubic (``a = −0.75``,
    clamped borders) this matches MATLAB to rounding.
    """
    array = np.asarray(image, dtype=np.float64)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"image must be a non-empty 2-D array; got shape {array.shape}")
    rows, cols = (int(n) for n in size)
    if rows < 1 or cols < 1:
        raise ValueError(f"size must be two positive integers; got {size!r}")
    return _resize_matrix(array.shape[0], rows) @ array @ _resize_matrix(array.shape[1], cols).T


def _resize_stack(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """:func:`imresize_bicubic` of each ``(h, w)`` map of ``(B, 1, h, w)`` (float64)."""
    h, w = maps.shape[-2:]
    rows = torch.from_numpy(_resize_matrix(h, size[0])).to(maps)
    cols = torch.from_numpy(_resize_matrix(w, size[1])).to(maps)
    return rows @ maps @ cols.T


def resnet50_zca(
    infrared,
    visible,
    *,
    weights: str = "imagenet",
    seed: int = 0,
    level: str = "res4f",
    epsilon: float = ZCA_EPSILON,
    block: int = 5,
    device: str = "auto",
    full: bool = False,
):
    """Fuse with whitened ResNet-50 features, Li, Wu & Durrani (2019).

    Parameters
    ----------
    infrared, visible : array_like
        2-D images of the same shape, ``uint8`` (divided by 255) or float in ``[0, 1]``. Not
        modified.
    weights : str
        ``"imagenet"`` (torchvision's ``ResNet50_Weights.IMAGENET1K_V1``), another member name
        of that enum, the path of a torchvision ResNet-50 ``state_dict``, or ``"random"``
        (seeded, for tests only).
    seed : int
        Seed of the ``"random"`` weights.
    level : {"res4f", "res5c"}
        The feature map: the last block of stage 4 (the code's ``res4fx``, "Conv4", stride 16,
        1024 channels) or of stage 5 (``res5cx``, "Conv5", stride 32, 2048 channels). The code
        writes both results; the default is the one its file list writes first.
    epsilon : float
        ZCA's ε (:data:`ZCA_EPSILON`, the code's value).
    block : int
        Odd side of the window of the l1-norm average (the code's ``unit = 5``).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    full : bool
        Return a :class:`DeepFusion` with the weight maps instead of the image.

    Returns
    -------
    ndarray or DeepFusion
        The fused image, float32, the input shape, unclipped (or the :class:`DeepFusion`).

    Raises
    ------
    ValueError
        Bad images (see :func:`vgg19_li2018`), an unknown ``level``, a bad ``epsilon`` or
        ``block``.
    FileNotFoundError
        ``"imagenet"`` weights neither cached nor downloadable, or a missing weights file.

    Notes
    -----
    Following ``fusion_method_ResNet50_main.m``, ``whitening_norm.m``, ``zca.m`` and
    ``fusion_strategy.m``:

    1. Features: each source ``I_k`` repeated to three channels and fed, unnormalised
       (values in ``[0, 1]``), to ResNet-50; ``φ_k`` is the ``level`` output.
    2. ZCA: every channel of ``φ_k`` whitened on its own (:func:`zca_whiten`), giving ``φ̂_k``.
    3. Activity: ``C_k(x, y) = Σ_{window} ‖φ̂_k‖_1 / block²`` over the ``block × block``
       window around each feature pixel, zero outside the map.
    4. Weights: ``Ĉ_k`` = ``C_k`` resized to the image size by MATLAB's bicubic ``imresize``
       (:func:`imresize_bicubic`), ``W_k = Ĉ_k / (Ĉ_1 + Ĉ_2)`` (the paper's "soft-max").
    5. ``F = W_1 I_1 + W_2 I_2``.

    ``W_1 + W_2 = 1`` everywhere, so identical inputs are returned unchanged. Bicubic
    interpolation can overshoot, so a weight can leave ``[0, 1]`` slightly next to a sharp
    step of the activity (as in the code). Where ``Ĉ_1 + Ĉ_2 = 0`` (the code's 0 / 0) both
    weights are 0.5.

    Deviations: torchvision's ResNet-50 and its ImageNet weights stand in for MatConvNet's
    ``imagenet-resnet-50-dag`` (a conversion of the original Caffe model): torchvision puts
    each downsampling stride in the 3 × 3 convolution (Caffe: in the first 1 × 1) and pads
    its first pooling symmetrically, and the weights were trained separately. The feature
    maps, and so the fused images, differ from the authors'.

    References
    ----------
    .. [1] H. Li, X.-J. Wu, T. S. Durrani, "Infrared and visible image fusion with ResNet and
       zero-phase component analysis", Infrared Physics & Technology 102 (2019) 103039.
       Code: https://github.com/hli1221/imagefusion_resnet50
    """
    ir, vis = _as_unit_pair(infrared, visible)
    if level not in ZCA_LEVELS:
        raise ValueError(f"level must be one of {tuple(ZCA_LEVELS)}; got {level!r}")
    eps = _check_positive(epsilon, "epsilon")
    block = _check_odd(block, "block")
    dev = resolve_device(device)
    node = ZCA_LEVELS[level]
    network = get_feature_network("resnet50", weights, seed=seed, nodes=(node,), device=dev)

    sources = _pair_tensor(ir, vis)  # (2, 1, H, W) float64
    with torch.inference_mode():
        images = sources.float().to(dev).expand(-1, 3, -1, -1)  # single, as in the code
        features = network.module(images)[node].cpu().double()  # (2, C, h, w)
        whitened = _zca(features, eps)
        activity = F.avg_pool2d(  # sum over the window / block², zeros outside
            _l1(whitened), block, stride=1, padding=block // 2, count_include_pad=True
        )
        resized = _resize_stack(activity, tuple(ir.shape))  # (2, 1, H, W)
        w_ir, w_vis = _ratio(resized[0, 0], resized[1, 0])
        w_ir = torch.nan_to_num(w_ir, nan=0.5)
        w_vis = torch.nan_to_num(w_vis, nan=0.5)
        fused = (w_ir * sources[0, 0] + w_vis * sources[1, 0]).float().cpu().numpy()
        if not full:
            return fused
        maps = torch.stack([w_ir, w_vis])[:, None].float().cpu().numpy()  # (2, 1, H, W)
    return DeepFusion(fused, maps, (level,))
