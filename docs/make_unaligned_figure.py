"""Make docs/images/unaligned.png: the bundled unaligned pair before alignment, aligned, fused.

Three panels on the visible image's 240 x 320 grid, composed the way the napari viewer shows
the layers of the "Unaligned infrared + visible pair" sample (infrared in ``magma``, additive
blending at opacity 0.7, over the grey visible image):

1. before: both layers with identity transforms, as the sample opens (the 128 x 160 infrared
   frame sits in the top-left corner, coarser, rotated and shifted against the visible one);
2. aligned: the infrared image placed by the sample's known transform (the ``Registration``
   that ``load_unaligned_sample()`` returns; "Load…" of the align widget applies such a file),
   i.e. resampled onto the visible grid;
3. fused: ``fuse(ir, vis, registration=reg, crop=None)`` (what the fusion widget and
   ``fuse_layers`` do with the aligned layers) with seeded random weights (``weights="random",
   seed=0``): no ImageNet weights can be downloaded where this picture was made.

Run from the repository root: ``python docs/make_unaligned_figure.py [OUT.png]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from napari.utils.colormaps import ensure_colormap
from PIL import Image, ImageDraw

from napari_resfuse import fuse
from napari_resfuse.sample import load_unaligned_sample

OUT = Path(__file__).parent / "images" / "unaligned.png"
OPACITY = 0.7  # the sample's infrared layer
GAP = 8


def overlay(visible: np.ndarray, infrared: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Grey visible plus ``OPACITY`` x magma(infrared) where ``mask``: napari's additive
    blending of the two layers (contrast limits 0-255 both)."""
    grey = np.repeat(visible[..., None] / 255.0, 3, axis=-1)
    magma = ensure_colormap("magma").map(np.clip(infrared, 0, 255).ravel() / 255.0)[:, :3]
    magma = magma.reshape(*infrared.shape, 3) * mask[..., None]
    return np.clip(grey + OPACITY * magma, 0.0, 1.0)


def main(out: Path = OUT) -> None:
    ir, vis, truth = load_unaligned_sample()
    height, width = vis.shape

    # 1. As the sample opens: identity transforms, the infrared frame at the top-left.
    placed = np.zeros(vis.shape)
    placed[: ir.shape[0], : ir.shape[1]] = ir
    inside = np.zeros(vis.shape, bool)
    inside[: ir.shape[0], : ir.shape[1]] = True
    before = overlay(vis, placed, inside)

    # 2. Aligned by the known transform.
    reg = truth
    after = overlay(vis, reg.warp(ir), reg.valid)

    # 3. Fused on the visible grid, the whole frame kept.
    result = fuse(ir, vis, registration=reg, crop=None, weights="random", seed=0)
    fused = np.repeat(result.fused[..., None], 3, axis=-1)

    panels = [before, after, fused]
    titles = [
        "before: infrared over visible",
        "aligned: known transform",
        "fused (random weights)",
    ]
    label_h = 18
    canvas = Image.new("RGB", (3 * width + 2 * GAP, height + label_h), "white")
    draw = ImageDraw.Draw(canvas)
    for k, (panel, title) in enumerate(zip(panels, titles, strict=True)):
        x = k * (width + GAP)
        canvas.paste(Image.fromarray(np.round(255 * panel).astype(np.uint8)), (x, label_h))
        draw.text((x + 4, 3), title, fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out, optimize=True)
    print(
        f"wrote {out}: known transform ({reg.model}, scale {reg.scale:.3f}, rotation "
        f"{reg.rotation:.1f} deg, overlap {reg.overlap:.0%}); fusion with "
        f"{result.params['weights_id']}"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
