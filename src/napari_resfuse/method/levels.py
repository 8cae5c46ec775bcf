"""Which feature maps each backbone and variant taps (METHOD.md eq. 4, and its extensions).

Pure data, no torch import: the options module validates ``layers`` against these tables.
Each level is a torchvision graph node (for ``create_feature_extractor``) and the total stride
of its feature map, which fixes the feature size ``ceil(H / stride)``.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "BACKBONES",
    "PUBLISHED_CODE_UNITS",
    "VARIANTS",
    "Tap",
    "default_layers",
    "level_taps",
]


class Tap(NamedTuple):
    node: str | None  # torchvision graph node; None: the network's input itself
    stride: int


# The paper's five levels (METHOD.md eq. 4): each the first block of a stage, after its ReLU.
_RESNET = {
    "conv1": Tap("relu", 2),  # relu(bn1(conv1(x)))
    "conv2_1": Tap("layer1.0", 4),
    "conv3_1": Tap("layer2.0", 8),
    "conv4_1": Tap("layer3.0", 16),
    "conv5_1": Tap("layer4.0", 32),
}
# Li, Wu & Kittler 2018: relu1_1 ... relu5_1 of VGG-19 (torchvision's features.* indices).
_VGG19 = {
    "relu1_1": Tap("features.1", 1),
    "relu2_1": Tap("features.6", 2),
    "relu3_1": Tap("features.11", 4),
    "relu4_1": Tap("features.20", 8),
    "relu5_1": Tap("features.29", 16),
}
# The authors' published MATLAB code (METHOD.md, last section), on torchvision's ResNet-152:
# the input, conv1 before BN, res2a_branch1 (the projection convolution of the first stage-2
# block, before BN), and the last block of stages 3-5. MatConvNet's Caffe importer renames the
# output of every in-place layer by appending "x" (import-caffe.py, "Split in-place layers"),
# so the code's vars res3b7x, res4b35x, res5cx are the outputs of the in-place ReLUs that end
# those blocks: the block outputs. The vars conv1 and res2a_branch1 (no "x") are the
# convolutions' outputs, before their in-place batch norms.
_PUBLISHED_CODE = {
    "data": Tap(None, 1),
    "conv1": Tap("conv1", 2),
    "res2a_branch1": Tap("layer1.0.downsample.0", 4),
    "res3b7": Tap("layer2.7", 8),
    "res4b35": Tap("layer3.35", 16),
    "res5c": Tap("layer4.2", 32),
}
#: Block-replication factors of the published code's weight upsampling, per level. The code
#: uses 31 (not 32) for res5c; kept, with its consequences (see ``published_code``).
PUBLISHED_CODE_UNITS = {
    "data": 1,
    "conv1": 2,
    "res2a_branch1": 4,
    "res3b7": 8,
    "res4b35": 16,
    "res5c": 31,
}

_TABLES = {
    ("resnet152", "paper"): _RESNET,
    ("resnet101", "paper"): _RESNET,
    ("resnet50", "paper"): _RESNET,
    ("vgg19", "paper"): _VGG19,
    ("resnet152", "published-code"): _PUBLISHED_CODE,
}

BACKBONES: tuple[str, ...] = ("resnet152", "resnet101", "resnet50", "vgg19")
VARIANTS: tuple[str, ...] = ("paper", "published-code")


def level_taps(backbone: str, variant: str = "paper") -> dict[str, Tap]:
    """The levels (name -> tap) of a backbone and variant, shallow to deep."""
    try:
        return _TABLES[(backbone, variant)]
    except KeyError:
        raise ValueError(
            f"variant {variant!r} is not defined for backbone {backbone!r}: "
            "'published-code' exists for resnet152 only"
        ) from None


def default_layers(backbone: str, variant: str = "paper") -> tuple[str, ...]:
    return tuple(level_taps(backbone, variant))
