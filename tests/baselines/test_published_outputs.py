"""CBF and WLS against their authors' published outputs on TNO pairs (opt-in).

The seed authors' repository (github.com/diylife/imagefusion_deeplearning) carries the MATLAB
code of CBF and WLS with its fused outputs on 21 TNO pairs. The images are third-party data and
are not part of this project: set ``RESFUSE_SEED_REPO`` to a checkout of that repository to run
these tests. Outputs are compared after MATLAB's ``uint8`` rounding (half away from zero).
"""

import os
from pathlib import Path

import numpy as np
import pytest

from napari_resfuse.baselines import cbf, wls

SEED = os.environ.get("RESFUSE_SEED_REPO")
pytestmark = pytest.mark.skipif(
    not SEED, reason="set RESFUSE_SEED_REPO to a checkout of diylife/imagefusion_deeplearning"
)


def _to_uint8_like_matlab(image):
    return np.clip(np.floor(np.clip(image.astype(np.float64), 0, None) * 255 + 0.5), 0, 255)


@pytest.mark.parametrize(
    ("method", "folder", "suffix"),
    [(cbf, "CBF_Image_Fusion_Codes", "cbf"), (wls, "WLS_Image_Fusion_Codes", "wls")],
)
@pytest.mark.parametrize("pair", [2, 11, 19])
def test_matches_the_published_output(method, folder, suffix, pair):
    import imageio.v3 as iio

    root = Path(SEED) / "compared methods" / folder
    ir = iio.imread(root / "IV_images" / f"IR{pair}.png")
    vis = iio.imread(root / "IV_images" / f"VIS{pair}.png")
    published = iio.imread(root / "fused" / f"fused{pair}_{suffix}.png").astype(np.float64)
    diff = np.abs(_to_uint8_like_matlab(method(ir, vis)) - published)
    assert diff.max() <= 1  # rounding ties only
    assert np.count_nonzero(diff) <= 1e-4 * diff.size
