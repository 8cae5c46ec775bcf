"""Weights loading: files written by the tests, seeded random weights, and the offline
ImageNet path (only the network edge, torch's downloader, is replaced)."""

import urllib.error

import numpy as np
import pytest
import torch
from torchvision.models import resnet152

from napari_resfuse import WeightsNotAvailableError, fuse, imagenet_weights_file
from napari_resfuse.method import backbones
from napari_resfuse.method.backbones import get_feature_network

from ..conftest import textured_pair

SHALLOW = ("conv1", "conv2_1")  # needs only conv1, bn1 and layer1: a small state_dict


def _small_state_dict(seed):
    torch.manual_seed(seed)
    full = resnet152(weights=None).state_dict()
    return {k: v for k, v in full.items() if k.split(".")[0] in {"conv1", "bn1", "layer1"}}


@pytest.fixture
def state_files(tmp_path):
    paths = []
    for seed in (1, 2):
        state = _small_state_dict(seed)
        # Non-trivial batch-norm statistics so that the file's content matters everywhere.
        for key, value in state.items():
            if key.endswith("running_var"):
                value.fill_(2.0 + seed)
        path = tmp_path / f"weights_{seed}.pth"
        torch.save(state, path)
        paths.append(path)
    return paths


def test_state_dict_file_is_loaded_and_used(state_files):
    ir, vis = textured_pair()
    a = fuse(ir, vis, weights=state_files[0], layers=SHALLOW, device="cpu")
    b = fuse(ir, vis, weights=str(state_files[1]), layers=SHALLOW, device="cpu")
    r = fuse(ir, vis, weights="random", seed=1, layers=SHALLOW, device="cpu")
    assert a.params["pretrained"] is True and a.params["weights_id"].startswith("file:")
    assert not np.allclose(a.level_weights, b.level_weights)
    # Same conv weights as seeded random 1, but other BN statistics: the file was used.
    assert not np.allclose(a.level_weights, r.level_weights)
    net = get_feature_network(weights=str(state_files[0]), layers=SHALLOW, device="cpu")
    expected = torch.load(state_files[0])["layer1.0.conv3.weight"]
    assert torch.equal(net.module.get_submodule("layer1.0.conv3").weight, expected)


def test_file_without_num_batches_tracked_loads(tmp_path):
    """torchvision's ImageNet checkpoints predate BatchNorm's num_batches_tracked buffers."""
    state = {k: v for k, v in _small_state_dict(3).items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "old_style.pth"
    torch.save(state, path)
    net = get_feature_network(weights=str(path), layers=SHALLOW)
    assert torch.equal(net.module.get_submodule("conv1").weight, state["conv1.weight"])


def test_network_is_built_once_per_settings():
    one = get_feature_network(weights="random", seed=5, layers=SHALLOW)
    two = get_feature_network(weights="random", seed=5, layers=SHALLOW)
    other = get_feature_network(weights="random", seed=6, layers=SHALLOW)
    assert one is two and one is not other


def test_truncated_network_computes_nothing_after_last_level():
    net = get_feature_network(weights="random", layers=tuple(backbones.RESNET_NODES))
    names = {name for name, _ in net.module.named_modules()}
    assert "layer4.0.conv3" in names
    assert not any(n.startswith(("layer4.1", "layer4.2", "avgpool", "fc")) for n in names)
    shallow = get_feature_network(weights="random", layers=SHALLOW)
    assert not any(n.startswith("layer2") for n, _ in shallow.module.named_modules())


def test_random_weights_are_seeded_and_leave_global_rng_alone():
    torch.manual_seed(99)
    before = torch.rand(1)
    torch.manual_seed(99)
    backbones.clear_cache()
    get_feature_network(weights="random", seed=3, layers=SHALLOW)
    assert torch.rand(1) == before


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        get_feature_network(weights=str(tmp_path / "nope.pth"))


def test_corrupt_file_is_clear_error(tmp_path):
    path = tmp_path / "corrupt.pth"
    path.write_bytes(b"not a torch file at all")
    with pytest.raises(ValueError, match="could not be read as a PyTorch state_dict"):
        get_feature_network(weights=str(path))


def test_file_for_another_architecture_is_clear_error(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, path)  # a VGG-like key
    with pytest.raises(ValueError, match="not a torchvision resnet152 state_dict"):
        get_feature_network(weights=str(path), layers=SHALLOW)
    wrong_shape = _small_state_dict(0)
    wrong_shape["conv1.weight"] = torch.zeros(32, 3, 7, 7)
    torch.save(wrong_shape, path)
    with pytest.raises(ValueError, match="does not fit"):
        get_feature_network(weights=str(path), layers=SHALLOW)


def test_offline_imagenet_error_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache

    def no_network(url, *args, **kwargs):  # the network edge: torch's downloader
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    backbones.clear_cache()
    with pytest.raises(WeightsNotAvailableError) as info:
        get_feature_network(weights="imagenet", layers=SHALLOW)
    message = str(info.value)
    assert "resnet152-394f9c45.pth" in message
    assert str(tmp_path / "hub" / "checkpoints") in message
    assert "pass its path" in message
    assert isinstance(info.value, FileNotFoundError)
    assert imagenet_weights_file() == tmp_path / "hub" / "checkpoints" / "resnet152-394f9c45.pth"


def test_cached_imagenet_file_is_used_without_network(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    target = imagenet_weights_file()
    target.parent.mkdir(parents=True)
    torch.manual_seed(0)
    state = resnet152(weights=None).state_dict()
    # like torchvision's real file: no num_batches_tracked buffers
    torch.save({k: v for k, v in state.items() if "num_batches_tracked" not in k}, target)

    def no_network(*args, **kwargs):
        raise AssertionError("the cached file should have been used")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    # torchvision checks the file's hash prefix only when downloading, so a cached file loads.
    backbones.clear_cache()
    net = get_feature_network(weights="imagenet", layers=SHALLOW)
    assert net.pretrained and net.weights_id == "imagenet:IMAGENET1K_V1"
