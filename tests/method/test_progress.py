"""`run_with_progress`: the one loop that runs a progress generator to its end."""

import pytest

from napari_resfuse import FusionCancelled, run_with_progress


def _steps(log):
    try:
        yield from range(3)
        return "done"
    finally:
        log.append("cleaned up")


def test_events_reach_the_callback_and_the_value_is_returned():
    log, seen = [], []
    assert run_with_progress(_steps(log), seen.append) == "done"
    assert seen == [0, 1, 2] and log == ["cleaned up"]
    assert run_with_progress(_steps([])) == "done"


def test_a_callback_that_raises_stops_the_run_and_closes_the_generator():
    log = []

    def cancel(step):
        if step == 1:
            raise FusionCancelled("stop")

    with pytest.raises(FusionCancelled):
        run_with_progress(_steps(log), cancel)
    assert log == ["cleaned up"]
