"""CPU starvation: both cores and the X server loaded while key presses repaint the window.

Every slot of the timeline gets its frame, every fresh frame's grab time lies inside its own
slot, no frame shows a key press that happened after its slot ended, and every key press is
logged with the frame_ref its time says. (The 60 s figures: benchmarks/bench_starvation.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.capture.starvation import check_slots, record_under_load

pytestmark = [pytest.mark.x11, pytest.mark.slow]


def test_starved_capture_keeps_every_slot_and_shows_nothing_early(
    xvfb: str, tmp_path: Path
) -> None:
    run = record_under_load(tmp_path, seconds=12, fps=30)
    assert run["rc"] == 0, run["stderr"]
    figures = check_slots(Path(run["stdout"].strip()), run["presses"])
    assert figures["frames"] == 360 == figures["video_frames"], figures
    assert figures["fresh"] + figures["padded"] + figures["dropped"] == 360, figures
    assert figures["fresh_outside_slot"] == [], figures
    assert figures["frames_showing_a_later_key"] == [], figures
    assert figures["key_presses_recorded"] == figures["key_presses_injected"] > 40, figures
    assert figures["frame_ref_mismatches"] == 0, figures
    # The window repaints late under this load, so the last presses may not be on screen yet.
    assert figures["colour_changes_seen"] >= 0.75 * figures["key_presses_injected"], figures
    assert figures["valid"], figures["problems"]
