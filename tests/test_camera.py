"""The camera's pan and zoom, fitted to a clip's frames and cancelled (--stabilise)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from data_fixtures import tiny_motion_family
from stts.camera import camera_motion, clip_cameras, explained_share, from_middle, stabilise, to_own_cameras
from stts.cli import main
from stts.clip import ClipSpec
from stts.data import ClipDataset, prepare_dataset, read_spec
from stts.data.drawing import colour_of_luma, textured_background
from stts.data.motion import FAMILIES, MOTIONS, render_scene
from stts.data.synthetic import write_avi
from stts.engine.inspect import CAMERA_MOTION, CAMERA_SHARE, camera_evidence, decide_stabilise, typical_camera_motion
from stts.engine.presets import PRESETS

SIDE = 48


def network_view(frames: np.ndarray, side: int = SIDE) -> np.ndarray:
    """The centre square of the short side resized to ``side``, as --view 1.0 shows it."""
    height, width = frames.shape[1:3]
    short = min(height, width)
    top, left = (height - short) // 2, (width - short) // 2
    return np.stack([np.asarray(Image.fromarray(f[top:top + short, left:left + short]).resize((side, side), Image.BILINEAR))
                     for f in frames])


def rendered_clips(family: str, frames: int = 16):
    """One clip of each class, every frame of it spread over the whole video, with the scenes they come from."""
    scenes, clips, picks = [], [], []
    for c, motion in enumerate(MOTIONS):
        scene = render_scene(family, motion, np.random.default_rng([7, list(FAMILIES).index(family), c]))
        pick = np.linspace(0, len(scene.frames) - 1, frames).round().astype(int)
        scenes.append(scene)
        picks.append(pick)
        clips.append(torch.from_numpy(network_view(scene.frames[pick])).permute(3, 0, 1, 2))
    return scenes, picks, torch.stack(clips).float() / 255


def test_the_fitted_camera_is_the_rendered_one_whatever_the_object_does():
    scenes, picks, clips = rendered_clips("camera")
    scale, shift = clip_cameras(clips)
    scale_errors, shift_errors, shifts = [], [], []
    for n, (scene, pick) in enumerate(zip(scenes, picks, strict=True)):
        middle, to_view = len(pick) // 2, SIDE / min(scene.frames.shape[1:3])
        for k, frame in enumerate(pick):
            # the middle frame's point x is, in frame k, at zoom_k / zoom_m * x + (centre_m - centre_k) * zoom_k
            true_scale = scene.zoom[frame] / scene.zoom[pick[middle]]
            true_shift = (scene.centre[pick[middle]] - scene.centre[frame]) * scene.zoom[frame] * to_view
            scale_errors.append(abs(float(scale[n, k]) / true_scale - 1))
            shift_errors.append(float(np.linalg.norm(shift[n, k].numpy() - true_shift)))
            shifts.append(float(np.linalg.norm(true_shift)))
    assert np.median(shifts) > 4  # the camera moves: several pixels of the 48-pixel view
    assert np.median(scale_errors) < 0.005 and np.percentile(scale_errors, 90) < 0.04
    assert np.median(shift_errors) < 0.2 and np.percentile(shift_errors, 90) < 1.5


def test_a_still_camera_is_left_alone():
    _, _, clips = rendered_clips("polarity")
    assert float(camera_motion(clips).max()) < 0.5  # pixels of the 48-pixel view
    assert float((stabilise(clips) - clips).abs().mean()) < 1 / 255 / 10


def panned_clip() -> torch.Tensor:
    """(1, 3, 8, 48, 48) a smooth random scene; the camera pans 1.5 px and zooms in 3 % a frame."""
    generator = torch.Generator().manual_seed(0)
    scene = F.interpolate(torch.rand((1, 3, 24, 24), generator=generator), size=(96, 96), mode="bicubic").clamp(0, 1)
    frames = []
    for k in range(8):
        zoom, pan = 1.03 ** k, 1.5 * k
        theta = torch.tensor([[[0.5 / zoom, 0, pan / 48], [0, 0.5 / zoom, pan / 96]]])
        grid = F.affine_grid(theta, (1, 3, 48, 48), align_corners=True)
        frames.append(F.grid_sample(scene, grid, align_corners=True))
    return torch.stack(frames, 2)


def test_cancelling_a_pan_and_zoom_stills_the_scene():
    clip = panned_clip()
    inner = (slice(None), slice(None), slice(None), slice(12, 36), slice(12, 36))
    before = (clip[:, :, 1:] - clip[:, :, :-1])[inner].abs().mean()
    steady = stabilise(clip)
    after = (steady[:, :, 1:] - steady[:, :, :-1])[inner].abs().mean()
    assert after < before / 10
    assert float(camera_motion(clip)[0]) > 10


def test_maps_over_the_stabilised_clip_go_back_onto_the_frames_as_filmed():
    clip = panned_clip()
    middle = stabilise(clip)[:, 0, 4]  # the scene as the middle frame's camera sees it
    own = to_own_cameras(middle[:, None].expand(1, 8, 48, 48), clip)
    inner = (slice(None), slice(None), slice(12, 36), slice(12, 36))
    assert (own - clip[:, 0])[inner].abs().mean() < 0.01  # each frame's own picture of the scene
    assert (middle[:, None] - clip[:, 0])[inner].abs().mean() > 0.05


def test_consecutive_cameras_chain_to_the_middle_frame():
    scale = torch.full((1, 4), 1.1)
    shift = torch.tensor([[[1.0, 0.0]] * 4])
    scales, shifts = from_middle(scale, shift)  # 5 frames, the middle is frame 2
    assert torch.allclose(scales[0], torch.tensor([1.1 ** -2, 1.1 ** -1, 1, 1.1, 1.1 ** 2]))
    # frame 3 = 1.1 * frame 2 + 1; frame 4 = 1.1 * frame 3 + 1; frame 1 = (frame 2 - 1) / 1.1
    assert torch.allclose(shifts[0, :, 0], torch.tensor([-(1 + 1.1) / 1.1 ** 2, -1 / 1.1, 0, 1, 2.1]))


def test_the_spec_carries_stabilisation_into_the_networks_input():
    spec = ClipSpec(clip_len=8, crop_size=48, normalisation="clip", temporal_residual=True, stabilise=True)
    assert ClipSpec.from_dict(spec.to_dict()) == spec
    assert "the camera's pan and zoom cancelled" in spec.describe()
    _, _, clips = rendered_clips("camera", frames=8)
    uint8 = (clips[:2] * 255).round().to(torch.uint8)
    plain = ClipSpec(clip_len=8, crop_size=48, normalisation="clip", temporal_residual=True)
    steady = (stabilise(uint8.float() / 255) * 255).round().to(torch.uint8)
    assert torch.equal(spec.as_seen(uint8), steady) and plain.as_seen(uint8) is uint8  # what show-clips draws
    given = spec.normalise(uint8)
    # the same as stabilising first, up to the rounding of the stabilised clip to whole grey levels
    assert (given - plain.normalise(steady)).abs().mean() < (given - plain.normalise(uint8)).abs().mean() / 5


@pytest.fixture(scope="module")
def camera_data(tmp_path_factory):
    return tiny_motion_family(tmp_path_factory.mktemp("camera"), "camera")


def test_auto_stabilises_where_the_training_videos_camera_moves(camera_data, tmp_path, capsys):
    spec = read_spec(camera_data).with_sampling(8, 4, 32, 1.0, None)
    assert typical_camera_motion(ClipDataset(camera_data, "train", spec)) > 2 * CAMERA_MOTION
    code = main(["show-clips", str(camera_data), "--out", str(tmp_path / "clips.png"), "--count", "2", "--frames", "2",
                 "--preset", "small", "--clip-len", "8", "--workers", "0"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "--stabilise auto: on" in printed and "the camera's pan and zoom cancelled" in printed


def still_scene(motion: str, textured: bool, rng: np.random.Generator, count: int = 40, width: int = 160,
                height: int = 120) -> np.ndarray:
    """uint8 (count, H, W, 3): a still camera on a faintly textured (or plain) background, and one large object
    of one colour crossing it: a bar a quarter of the frame across and the whole of it long (``bar-right``,
    ``bar-down``), a square a third of the frame's height (``block-right``) or of a third of its area (``big-left``)."""
    luma = rng.uniform(60, 190)
    background = (textured_background(width, height, luma, 8, rng) if textured
                  else np.broadcast_to(colour_of_luma(luma, rng), (height, width, 3)).astype(np.float32))
    colour = colour_of_luma(luma + rng.choice((-1, 1)) * rng.uniform(25, 90), rng)
    sigma = rng.uniform(2, 6)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for f in np.linspace(0, 1, count):
        if motion in ("bar-right", "bar-down"):  # from wholly outside the frame on one side to the other
            along, side = (xx, width) if motion == "bar-right" else (yy, height)
            start = -side / 4 + f * (side + side / 4)
            alpha = np.minimum(along - start, start + side / 4 - along)
        else:
            half = (height / 3 if motion == "block-right" else (width * height / 3) ** 0.5) / 2
            cx = width * (0.25 + 0.5 * f if motion == "block-right" else 0.75 - 0.5 * f)
            alpha = np.minimum(half - np.abs(xx - cx), half - np.abs(yy - height / 2))
        alpha = np.clip(alpha + 0.5, 0, 1)[..., None]
        frame = background + alpha * (colour - background) + rng.standard_normal((height, width, 3)) * sigma
        frames.append(np.clip(frame + 0.5, 0, 255).astype(np.uint8))
    return np.stack(frames)


STILL_MOTIONS = ("bar-right", "bar-down", "block-right", "big-left")


@pytest.fixture(scope="module")
def still_data(tmp_path_factory):
    """A folder data set: a still camera and large objects crossing the frame, 3 videos a class (one on a plain
    background), prepared as --preset small stores frames (48 pixels high)."""
    root = tmp_path_factory.mktemp("still")
    for c, motion in enumerate(STILL_MOTIONS):
        for i in range(3):
            write_avi(root / "videos" / motion / f"{motion}_{i}.avi",
                      still_scene(motion, textured=i > 0, rng=np.random.default_rng([c, i])))
    prepare_dataset("folder", [root / "videos"], root / "prepared", height=48, workers=1, progress=False)
    return root / "prepared"


def preset_clips(root) -> ClipDataset:
    """The training clips --stabilise auto looks at under --preset small: 16 frames spanning the median video,
    the preset's view (its region at 1.0) resized to 48 pixels."""
    stored = read_spec(root)
    frames = float(np.median(ClipDataset(root, "train", stored.replace(view=1.0)).frame_counts()))
    return ClipDataset(root, "train", stored.with_sampling(16, ClipSpec.spanning_stride(16, frames), 48, 1.0, None,
                                                           region=PRESETS["small"]["region"]))


def test_a_moving_object_under_a_still_camera_does_not_turn_stabilisation_on(still_data):
    clips = preset_clips(still_data)
    motion, explained = camera_evidence(clips)
    # the fit follows the objects in some clips (the old measure, corner motion alone, was fooled there) ...
    assert motion.max() > CAMERA_MOTION
    # ... but in no clip does it explain the change of the view it would need to: the still background is no camera's
    assert explained.max() < CAMERA_SHARE
    on, reason = decide_stabilise(clips)
    assert not on and f"0 of {len(clips)} training clips" in reason


def test_show_clips_says_why_it_leaves_a_still_camera_alone(still_data, tmp_path, capsys):
    code = main(["show-clips", str(still_data), "--out", str(tmp_path / "clips.png"), "--count", "2", "--frames", "2",
                 "--preset", "small", "--workers", "0"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "stts: --stabilise auto: off (the camera fitted to 0 of 4 training clips" in printed
    assert "cancelled" not in printed


def test_a_moving_camera_turns_stabilisation_on(camera_data):
    clips = preset_clips(camera_data)
    motion, explained = camera_evidence(clips)
    assert np.median(motion) > 2 * CAMERA_MOTION and np.median(explained) > CAMERA_SHARE
    on, reason = decide_stabilise(clips)
    assert on and "of the view" in reason


def test_the_camera_explains_a_pan_everywhere_and_an_object_nowhere_else():
    clip = panned_clip()
    assert float(explained_share(clip, *clip_cameras(clip))[0]) > 0.9
    # an object of a quarter of the view moving across a still textured scene, with the camera forced onto it
    still = clip[:, :, :1].expand(-1, -1, 8, -1, -1).clone()
    for k in range(8):
        still[:, :, k, 18:30, 4 + 4 * k:16 + 4 * k] = 0.9
    scale, shift = torch.ones(1, 8), torch.zeros(1, 8, 2)
    shift[0, :, 0] = 4.0 * (torch.arange(8) - 4)  # the object's motion, which a fit that follows it finds
    assert float(explained_share(still, scale, shift)[0]) < 0.15


def test_stabilisation_turns_on_when_a_quarter_of_the_clips_pan(monkeypatch):
    """motion-body pans in half its videos, and 9 of 24 sampled clips moved: cancelling its camera learned faster."""
    from stts.engine import inspect

    def evidence(moving: int, total: int = 24):
        motion = np.array([0.2] * moving + [0.0] * (total - moving))
        explained = np.array([0.8] * moving + [0.0] * (total - moving))
        return lambda dataset: (motion, explained)

    for moving, on in ((9, True), (6, True), (5, False), (0, False)):
        monkeypatch.setattr(inspect, "camera_evidence", evidence(moving))
        decided, reason = inspect.decide_stabilise([None] * 24)
        assert decided is on and f"{moving} of 24 training clips" in reason, (moving, reason)
    # a large object fools the corner motion but not the explained share: such clips do not count
    assert not inspect.camera_moves(np.array([0.8]), np.array([0.24]))[0]
