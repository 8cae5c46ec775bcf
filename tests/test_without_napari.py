"""The library and the CLI import and run without napari or Qt (the core install)."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from napari_resfuse.io import write_image

from .conftest import textured_pair

SRC = Path(__file__).resolve().parents[1] / "src"

# A finder that makes napari, Qt and the widget libraries unimportable, as in a core install.
BLOCK = textwrap.dedent(
    """
    import sys

    BLOCKED = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "superqt",
               "npe2", "psygnal", "vispy")

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked (core install)")
            return None

    sys.meta_path.insert(0, Blocker())
    """
)


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    env_path = str(SRC)
    script = BLOCK + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )


def test_blocker_blocks():
    proc = _run("import napari\n")
    assert proc.returncode != 0 and "blocked (core install)" in proc.stderr


@pytest.mark.parametrize("command", ["fuse", "metrics", "compare", "batch"])
def test_cli_help_runs_without_napari(command):
    proc = _run(
        """
        import sys
        from napari_resfuse.cli import main
        try:
            main([sys.argv[1], "--help"])
        except SystemExit as exc:
            assert exc.code == 0, exc.code
        blocked = [m for m in sys.modules if m.split(".")[0] in BLOCKED]
        assert not blocked, blocked
        """,
        command,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"usage: resfuse {command}" in proc.stdout


def test_library_imports_and_fuses_without_napari(tmp_path):
    ir, vis = textured_pair()
    write_image(tmp_path / "ir.png", ir)
    write_image(tmp_path / "vis.png", vis)
    proc = _run(
        """
        import sys
        from pathlib import Path
        import napari_resfuse
        from napari_resfuse import FusionOptions, fuse, fuse_lazy, run_batch, open_stack
        from napari_resfuse import metrics, baselines, compare, stacks, lazy, batch
        from napari_resfuse.cli import main

        folder = Path(sys.argv[1])
        code = main(["fuse", str(folder / "ir.png"), str(folder / "vis.png"), "-o",
                     str(folder / "fused.png"), "--weights", "random", "--device", "cpu",
                     "--layers", "conv1"])
        assert code == 0, code
        assert (folder / "fused.png").is_file()
        blocked = [m for m in sys.modules if m.split(".")[0] in BLOCKED]
        assert not blocked, blocked
        """,
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
