"""The method flags of `resfuse fuse` / `resfuse batch` are generated from FusionOptions."""

import argparse
import dataclasses

import pytest

from napari_resfuse import FusionOptions
from napari_resfuse.cli import main
from napari_resfuse.cli._options import add_fusion_options, options_from_args
from napari_resfuse.io import write_image

from .conftest import textured_pair


def _parser():
    parser = argparse.ArgumentParser()
    add_fusion_options(parser)
    return parser


def test_every_field_is_one_flag_with_its_default_and_choices():
    actions = {a.dest: a for a in _parser()._actions if a.dest != "help"}
    fields = {f.name: f for f in dataclasses.fields(FusionOptions)}
    assert set(actions) == set(fields)
    for name, field in fields.items():
        action = actions[name]
        assert action.option_strings == ["--" + name.replace("_", "-")]
        assert action.default == field.default
        assert action.choices == field.metadata.get("choices")
        assert field.metadata["help"].split(" (default")[0] in action.help


def test_no_flags_give_the_default_options():
    assert options_from_args(_parser().parse_args([])) == FusionOptions()


def test_flags_as_the_readme_spells_them():
    flags = (
        "--weights random --seed 5 --device cpu --backbone resnet50 --kernel-size 15 "
        "--base-weights 0.7 0.3 --layers conv1,conv5_1 --norm l2 --value-range 0 4095 "
        "--color gray --batch-size 2 --precision bfloat16 --tile 256"
    )
    args = _parser().parse_args(flags.split(" "))
    assert options_from_args(args) == FusionOptions(
        weights="random",
        seed=5,
        device="cpu",
        backbone="resnet50",
        kernel_size=15,
        base_weights=(0.7, 0.3),
        layers=("conv1", "conv5_1"),
        norm="l2",
        value_range=(0.0, 4095.0),
        color="gray",
        batch_size=2,
        precision="bfloat16",
        tile=256,
    )


def test_a_choice_outside_the_options_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["--norm", "l3"])
    assert "invalid choice: 'l3'" in capsys.readouterr().err


@pytest.fixture
def pair_files(tmp_path):
    ir, vis = textured_pair()
    return write_image(tmp_path / "ir.png", ir), write_image(tmp_path / "vis.png", vis)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--seed", str(2**70)], "seed must be an integer from 0 to 2**64 - 1"),
        (["--weights", "{dir}"], "is a directory"),
        (["--kernel-size", "10001"], "kernel_size must be an odd integer from 3 to 1001"),
    ],
)
def test_bad_option_values_are_one_line_and_exit_2(tmp_path, pair_files, capsys, flags, message):
    ir_path, vis_path = pair_files
    flags = [f.replace("{dir}", str(tmp_path)) for f in flags]
    code = main(["fuse", str(ir_path), str(vis_path), "-o", str(tmp_path / "f.png"), *flags])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "f.png").exists()
