"""What the widgets share about thread workers and layer lists."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, TypeVar

from napari.qt.threading import GeneratorWorker

__all__ = ["QuietGeneratorWorker", "follow_layer_list", "relay"]

_Y = TypeVar("_Y")
_R = TypeVar("_R")


def relay(runner: Generator[_Y, None, _R]) -> Generator[_Y, None, _R]:
    """A worker body that re-yields ``runner``'s items and returns its value; stopping the
    worker closes ``runner`` (so an engine run stops between stages)."""
    try:
        return (yield from runner)
    finally:
        runner.close()


class QuietGeneratorWorker(GeneratorWorker):
    """napari's generator worker without its generic error notification: the widgets show
    user errors as one line themselves (and bugs with their traceback)."""

    def _relay_error(self, exc: Exception) -> None:
        """No generic relay: it would add a traceback notification for user errors too."""


def follow_layer_list(viewer: Any, callback: Callable[..., Any]) -> None:
    """Call ``callback`` whenever layers are added, removed, reordered or renamed."""
    events = viewer.layers.events
    for event in (events.inserted, events.removed, events.reordered, events.renamed):
        event.connect(callback)
