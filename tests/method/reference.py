"""An independent, readable implementation of METHOD.md in numpy/scipy, for the tests.

It shares no code with the package: features come from torchvision's full ResNet-152 through
forward hooks on its modules (not from ``create_feature_extractor``), and every equation after
that is written out in numpy.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from torchvision import models

LEVEL_MODULES = ("relu", "layer1.0", "layer2.0", "layer3.0", "layer4.0")
BACKBONE_MODULES = {
    "resnet152": LEVEL_MODULES,
    "resnet101": LEVEL_MODULES,
    "resnet50": LEVEL_MODULES,
    "vgg19": ("features.1", "features.6", "features.11", "features.20", "features.29"),
}


def box_filter(image, k):
    """Eq. 1: mean over k x k, borders reflected without repeating the edge (scipy 'mirror')."""
    pad = k // 2
    if pad >= min(image.shape):
        padded = np.pad(image, pad, mode="edge")
    else:
        padded = np.pad(image, pad, mode="reflect")  # numpy 'reflect' = d c b | a b c d
    out = np.zeros_like(image, dtype=np.float64)
    for dy in range(k):
        for dx in range(k):
            out += padded[dy : dy + image.shape[0], dx : dx + image.shape[1]]
    return out / (k * k)


def smooth(t):
    """Eq. 6: 3x3 kernel A with zero padding."""
    a = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=np.float64)
    return ndimage.correlate(t, a, mode="constant", cval=0.0)


def bilinear(image, out_h, out_w):
    """Eq. 8: bilinear resize, half-pixel centres (align_corners=False), edges clamped."""
    in_h, in_w = image.shape

    def axis(n_out, n_in):
        src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        src = np.maximum(src, 0.0)
        i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, src - i0

    y0, y1, fy = axis(out_h, in_h)
    x0, x1, fx = axis(out_w, in_w)
    top = image[y0][:, x0] * (1 - fx) + image[y0][:, x1] * fx
    bottom = image[y1][:, x0] * (1 - fx) + image[y1][:, x1] * fx
    return top * (1 - fy[:, None]) + bottom * fy[:, None]


def hooked_features(model, detail_ir, detail_vis, modules=LEVEL_MODULES):
    """Eq. 4: the five block outputs for the batch (ir, vis), by forward hooks."""
    outputs = {}

    class Stop(Exception):
        pass

    def hook(name):
        def fn(_module, _inputs, output):
            outputs[name] = output.detach().double().numpy().copy()
            if name == modules[-1]:
                raise Stop

        return fn

    handles = [model.get_submodule(n).register_forward_hook(hook(n)) for n in modules]
    x = torch.from_numpy(np.stack([detail_ir, detail_vis]).astype(np.float32))
    x = x[:, None].repeat(1, 3, 1, 1)
    try:
        with torch.no_grad():
            model(x)
    except Stop:
        pass
    finally:
        for h in handles:
            h.remove()
    return [outputs[n] for n in modules]


def weights_from_features(features, shape, norm="l1"):
    """Eq. 5-9 from per-level (2, C, h, w) features: returns (level weights, max weights)."""
    levels = []
    for feat in features:
        if norm == "l1":
            t = np.abs(feat).sum(axis=1)  # eq. 5
        else:
            t = np.sqrt((feat**2).sum(axis=1))
        t_ir, t_vis = smooth(t[0]), smooth(t[1])  # eq. 6
        total = t_ir + t_vis
        with np.errstate(invalid="ignore", divide="ignore"):
            w_ir = np.where(total == 0, 0.5, t_ir / total)  # eq. 7
            w_vis = np.where(total == 0, 0.5, t_vis / total)
        levels.append([bilinear(w_ir, *shape), bilinear(w_vis, *shape)])  # eq. 8
    level_w = np.array(levels).transpose(1, 0, 2, 3)  # (2, L, M, N)
    return level_w, level_w.max(axis=1)  # eq. 9


def reference_fusion(ir, vis, seed=0, k=31, lambdas=(0.6, 0.4), norm="l1", backbone="resnet152"):
    """The whole method on uint8 inputs with torchvision's seeded random backbone."""
    i1 = ir.astype(np.float64) / 255.0
    i2 = vis.astype(np.float64) / 255.0
    b1, b2 = box_filter(i1, k), box_filter(i2, k)  # eq. 1
    d1, d2 = i1 - b1, i2 - b2  # eq. 2
    torch.manual_seed(seed)
    model = getattr(models, backbone)(weights=None).eval()
    features = hooked_features(model, d1, d2, BACKBONE_MODULES[backbone])
    level_w, w = weights_from_features(features, i1.shape, norm)
    fb = lambdas[0] * b1 + lambdas[1] * b2  # eq. 3
    fd = w[0] * d1 + w[1] * d2  # eq. 10
    return {
        "base": np.stack([b1, b2]),
        "detail": np.stack([d1, d2]),
        "level_weights": level_w,
        "weights": w,
        "fused_base": fb,
        "fused_detail": fd,
        "fused": fb + fd,  # eq. 11
    }
