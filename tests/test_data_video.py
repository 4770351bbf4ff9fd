"""Decoding: a phone video's rotation metadata turns its frames upright, as players show them."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from stts.clip import ClipSpec
from stts.data.video import read_kept_frames, read_video


def write_rotated(path: Path, degrees: int, frames: int = 6, width: int = 64, height: int = 32) -> Path:
    """Stored landscape, left half white and right half black, with a display rotation of ``degrees``."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = 255
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.set_display_rotation(degrees)
        for _ in range(frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return path


# counter-clockwise degrees, as FFmpeg's display matrix and players read them: the stored left
# half ends at the bottom after a quarter turn anticlockwise, at the top after one clockwise
@pytest.mark.parametrize(("degrees", "bright"), [(90, "bottom"), (270, "top"), (-90, "top")])
def test_rotation_metadata_turns_frames_upright(tmp_path, degrees, bright):
    path = write_rotated(tmp_path / "phone.mp4", degrees)
    video, fps = read_video(path)
    assert video.shape == (6, 64, 32, 3) and fps == 25
    top, bottom = video[:, :28].mean(), video[:, 36:].mean()
    assert (bottom > 200 and top < 50) if bright == "bottom" else (top > 200 and bottom < 50)


def test_rotated_video_is_resized_by_its_upright_height(tmp_path):
    # stored 64x56, upright 56 wide and 64 high: height 32 gives 32x28; resizing the stored frame
    # to height 32 first would give 36x32 after the turn
    path = write_rotated(tmp_path / "phone.mp4", 90, width=64, height=56)
    video, _ = read_video(path, ClipSpec(height=32))
    assert video.shape == (6, 32, 28, 3)
    kept = read_kept_frames(path, ClipSpec(height=32, min_kept=4))
    frames, step, count = kept.frames, kept.step, kept.decoded
    assert frames[0].shape == (32, 28, 3) and count == 6 and len(frames) == len(range(0, count, step))
    assert frames[0][20:].mean() > 200 and frames[0][:12].mean() < 50


def test_unrotated_video_is_untouched(tmp_path):
    path = write_rotated(tmp_path / "plain.mp4", 0)
    video, _ = read_video(path)
    assert video.shape == (6, 32, 64, 3)
    assert video[:, :, :28].mean() > 200 and video[:, :, 36:].mean() < 50
