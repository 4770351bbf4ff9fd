"""The clip spec: the frame rule, stored sizes, windows, crops and views, the network's input; pure functions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stts.clip import ClipSpec, local_contrast, normal_flow
from stts.errors import SttsError


@pytest.mark.parametrize(("frames", "step"), [(200, 4), (125, 4), (124, 3), (94, 3), (93, 2), (63, 2), (62, 1), (5, 1)])
def test_the_seeds_frame_rule(frames, step):
    assert ClipSpec().keep_step(frames) == step


def test_a_stream_of_unknown_length_keeps_every_nth_frame():
    assert ClipSpec().keep_step(None) == 4 and ClipSpec(keep_every=3).keep_step(None) == 3


def test_stored_shape_follows_the_seed():
    spec = ClipSpec()
    assert spec.stored_shape(240, 320) == (128, 170)
    assert spec.stored_shape(320, 240) == (170, 128)  # too narrow: width 128, height in proportion
    assert ClipSpec(height=64).stored_shape(96, 128) == (64, 85)


def test_windows_with_a_temporal_stride():
    spec = ClipSpec(clip_len=4, clip_stride=2)
    assert spec.span == 7
    assert spec.window_indices(5, 40).tolist() == [5, 7, 9, 11]
    assert spec.window_starts(20, 5) == [0, 5, 10, 13]  # the last window ends on the last frame
    assert spec.window_starts(7, 2) == [0] and spec.window_starts(3, 2) == [0]


def test_a_short_video_is_stretched_over_the_clip_in_order():
    assert ClipSpec(clip_len=8).window_indices(0, 3).tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    assert ClipSpec(clip_len=4, clip_stride=3).window_indices(0, 6).tolist() == [0, 1, 3, 4]


def test_spaced_starts_and_the_middle_window():
    spec = ClipSpec()
    assert spec.spaced_starts(40, 1) == [4] and spec.spaced_starts(40, 3) == [0, 4, 8]
    assert spec.spaced_starts(10, 2) == [0, 0]


def test_train_samples_cover_every_window_and_crop_and_flip_only_when_allowed():
    spec = ClipSpec(clip_len=32, crop_size=4)
    rng = np.random.default_rng(0)
    samples = [spec.train_sample(40, 6, 8, rng) for _ in range(300)]
    assert {int(s.indices[0]) for s in samples} == set(range(9))
    assert {s.box[:2] for s in samples} == {(t, l) for t in range(3) for l in range(5)}
    assert {s.flip for s in samples} == {True, False}
    unflipped = spec.replace(hflip=False)
    assert not any(unflipped.train_sample(40, 6, 8, rng).flip for _ in range(50))


def test_scaled_train_views_and_the_evaluation_view():
    spec = ClipSpec(clip_len=2, crop_size=16, view=0.75, train_views=(0.5, 1.0))
    rng = np.random.default_rng(1)
    sides = {spec.train_sample(10, 64, 96, rng).box[2] for _ in range(200)}
    assert min(sides) >= 32 and max(sides) <= 64 and len(sides) > 10
    (centre,) = spec.eval_samples(10, 64, 96)
    assert centre.box == (8, 24, 48, 48)  # 0.75 of the short side, in the middle
    three = spec.eval_samples(10, 64, 96, windows=2, crops=3)
    assert [s.box[:2] for s in three] == [(8, 0), (8, 24), (8, 48)] * 2
    frames = np.zeros((2, 64, 96, 3), np.uint8)
    frames[:, 24:40, 40:56] = 255  # a square in the middle survives the view; the corners do not
    frames[:, :8, :8] = 255
    view = spec.centre_view(frames)
    assert view.shape == (2, 16, 16, 3) and view[:, 6:10, 6:10].min() > 200 and view[:, :2, :2].max() < 30


@pytest.mark.parametrize("height, width", [(64, 96), (96, 64)])
def test_a_frame_region_keeps_the_frames_shape_and_sees_its_sides(height, width):
    # a figure at the side of a 3:2 frame is cut away by the square of the short side, kept by the frame's region
    spec = ClipSpec(clip_len=2, crop_size=16, view=1.0, train_views=(0.5, 1.0), region="frame")
    (whole,) = spec.eval_samples(10, height, width, crops=3)  # its three crops are one region
    assert whole.box == (0, 0, height, width)
    rng = np.random.default_rng(1)
    boxes = [spec.train_sample(10, height, width, rng).box for _ in range(200)]
    for top, left, box_h, box_w in boxes:
        assert 0 <= top <= height - box_h and 0 <= left <= width - box_w
        assert abs(box_h / height - box_w / width) < 0.03  # the frame's shape, scaled
    assert min(b[2] for b in boxes) >= height // 2 and len({b[2] for b in boxes}) > 10
    frames = np.zeros((2, height, width, 3), np.uint8)
    # a bar along the end of the longer side, outside the centre square
    if width > height:
        frames[:, :, -12:] = 255
    else:
        frames[:, -12:] = 255
    framed, squared = spec.centre_view(frames), spec.replace(region="square").centre_view(frames)
    assert framed.shape == squared.shape == (2, 16, 16, 3)
    edge = framed[:, :, -1] if width > height else framed[:, -1]
    assert edge.min() > 200 and squared.max() == 0
    top, left, box_h, box_w = spec.centre_box(height * 4, width * 4)
    assert (top, left) == (0, 0) and (box_h, box_w) == pytest.approx((height * 4, width * 4), rel=0.02)
    assert "the whole frame resized to 16x16" in spec.describe()
    with pytest.raises(SttsError, match="region 'frame' needs a view"):
        ClipSpec(region="frame")
    with pytest.raises(SttsError, match="region must be one of square, frame"):
        ClipSpec(view=1.0, region="circle")


@pytest.mark.parametrize("height, width", [(120, 160), (120, 120), (160, 90)])
def test_three_crops_are_three_regions_unless_the_region_is_the_whole_frame(height, width):
    whole = ClipSpec(clip_len=4, crop_size=16, view=1.0, region="frame")
    samples = whole.eval_samples(40, height, width, windows=2, crops=3)
    assert [s.box for s in samples] == [(0, 0, height, width)] * 2 and whole.distinct_crops(3) == 1
    for spec in (whole.replace(view=0.8), ClipSpec(clip_len=4, crop_size=16, view=0.9),
                 ClipSpec(clip_len=4, crop_size=16)):
        boxes = [s.box for s in spec.eval_samples(40, height, width, windows=2, crops=3)]
        assert len(boxes) == 6 and len(set(boxes[:3])) == 3 and boxes[3:] == boxes[:3], spec
        assert spec.distinct_crops(3) == 3 and spec.distinct_crops(1) == 1
    assert whole.distinct_crops(1) == 1


def test_the_seeds_view_is_an_unscaled_crop():
    spec = ClipSpec(crop_size=4)
    frames = np.arange(2 * 6 * 8 * 3, dtype=np.uint8).reshape(2, 6, 8, 3)
    np.testing.assert_array_equal(spec.centre_view(frames), frames[:, 1:5, 2:6])
    with pytest.raises(SttsError, match="smaller than the 112-pixel crop"):
        ClipSpec().check_frame_size(64, 85, "data/x")


@pytest.mark.parametrize("spec, height, width", [
    (ClipSpec(height=64, crop_size=32, view=1.0), 240, 320),  # landscape, the whole short side resized
    (ClipSpec(height=64, crop_size=16, view=0.5), 300, 200),  # portrait, half the short side
    (ClipSpec(height=48, crop_size=32), 96, 128),  # the seed's unscaled crop
    (ClipSpec(height=24, crop_size=32), 48, 64),  # a stored frame smaller than the crop is grown first
])
def test_the_centre_box_is_where_the_view_lies_in_the_decoded_frame(spec, height, width):
    from stts.data.video import resize_to_stored

    top, left, box_h, box_w = spec.centre_box(height, width)
    assert 0 <= top and 0 <= left and top + box_h <= height + 1e-6 and left + box_w <= width + 1e-6
    frame = np.zeros((1, height, width, 3), np.uint8)
    # bright inside the box, one pixel in from its edges (resampling blurs them); dark outside
    frame[:, round(top) + 2:round(top + box_h) - 2, round(left) + 2:round(left + box_w) - 2] = 255
    view = spec.centre_view(resize_to_stored(frame, spec))[0]
    inner = view[2:-2, 2:-2]
    assert inner.min() > 200, inner.min()
    outer = spec.centre_view(resize_to_stored(255 - frame, spec))[0][2:-2, 2:-2]
    assert outer.max() < 55, outer.max()  # nothing from outside the box reaches the view's inside


def test_model_input_scales_normalises_and_orders_channels():
    clips = torch.zeros(1, 3, 2, 2, 2, dtype=torch.uint8)
    clips[:, 0] = 255  # red
    x = ClipSpec().model_input(clips)
    assert x.dtype == torch.float32 and x[:, 0].min() == 1 and x[:, 1:].max() == 0
    assert x.is_contiguous(memory_format=torch.channels_last_3d)
    bgr = ClipSpec(channels="BGR").model_input(clips)
    assert bgr[:, 2].min() == 1 and bgr[:, :2].max() == 0
    normalised = ClipSpec(mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0)).model_input(clips)
    assert normalised[0, :, 0, 0, 0].tolist() == [2.0, -1.0, -0.5]


def test_the_spec_round_trips_and_bad_ones_are_refused_in_one_line():
    spec = ClipSpec(clip_len=16, clip_stride=2, crop_size=64, view=0.8, train_views=(0.6, 1.0), channels="BGR")
    assert ClipSpec.from_dict(spec.to_dict()) == spec
    framed = spec.replace(region="frame")
    assert ClipSpec.from_dict(framed.to_dict()) == framed
    older = {k: v for k, v in spec.to_dict().items() if k != "region"}  # a checkpoint from before regions
    assert ClipSpec.from_dict(older).region == "square"
    with pytest.raises(SttsError, match="run.pt: no clip spec"):
        ClipSpec.from_dict(None, "run.pt")
    with pytest.raises(SttsError, match="unknown fields colour"):
        ClipSpec.from_dict({**spec.to_dict(), "colour": 1})
    with pytest.raises(SttsError, match="clip_len must be a positive integer"):
        ClipSpec.from_dict({"clip_len": 0})
    with pytest.raises(SttsError, match="channels must be one of RGB, BGR"):
        ClipSpec(channels="YUV")
    assert "16 frames, every 2nd stored frame" in spec.describe()


def test_clip_normalisation_removes_each_clips_own_brightness_and_contrast():
    generator = torch.Generator().manual_seed(0)
    clips = torch.randint(0, 256, (2, 3, 4, 8, 8), generator=generator, dtype=torch.uint8)
    spec = ClipSpec(normalisation="clip")
    x = spec.model_input(clips)
    assert torch.allclose(x.mean(dim=(2, 3, 4)), torch.zeros(2, 3), atol=1e-5)
    assert torch.allclose(x.square().mean(dim=(2, 3, 4)), torch.ones(2, 3), atol=1e-4)
    brighter = (clips.float() * 0.5 + 60).round().to(torch.uint8)  # the same scene, dimmer and lifted
    assert (spec.model_input(brighter) - x).abs().max() < 0.05
    flat = torch.full((1, 3, 2, 4, 4), 77, dtype=torch.uint8)
    assert torch.isfinite(spec.model_input(flat)).all() and spec.model_input(flat).abs().max() == 0


def test_the_temporal_residual_keeps_what_moves_and_cancels_what_stands_still():
    clips = torch.zeros(1, 3, 4, 8, 8, dtype=torch.uint8)
    clips[:, :, :, :, :4] = 200  # a still background half
    for t in range(4):
        clips[:, :, t, t, 4 + t] = 255  # a dot moving over the dark half
    spec = ClipSpec(normalisation="clip", temporal_residual=True)
    x = spec.model_input(clips)
    assert x.shape == (1, spec.network_channels, 4, 8, 8) == (1, 6, 4, 8, 8)
    assert torch.equal(x[:, :3], ClipSpec(normalisation="clip").model_input(clips))
    residual = x[0, 3]
    assert residual[:, :, :4].abs().max() == 0  # the still half cancels
    moving = torch.zeros(4, 8, 8, dtype=torch.bool)
    for t in range(4):
        moving[t, t, 4 + t] = True
    assert residual[moving].min() > residual[~moving].max()
    assert ClipSpec.from_dict(spec.to_dict()) == spec and "temporal residual" in spec.describe()


def moving_square(dx: int, dy: int, bright: bool, frames: int = 6, side: int = 24) -> torch.Tensor:
    """uint8 clips (1, 3, T, side, side): a 6-pixel square moving (dx, dy) pixels a frame over a flat background."""
    clips = torch.full((1, 3, frames, side, side), 60 if bright else 200, dtype=torch.uint8)
    for t in range(frames):
        top, left = 9 + dy * (t - frames // 2), 9 + dx * (t - frames // 2)
        clips[0, :, t, top:top + 6, left:left + 6] = 200 if bright else 60
    return clips


@pytest.mark.parametrize("bright", [True, False])
def test_the_normal_flow_points_where_edges_move_whatever_their_contrast(bright):
    spec = ClipSpec(normalisation="clip", temporal_residual=True, normal_flow=True)
    assert spec.network_channels == 8
    for (dx, dy), (x_sign, y_sign) in {(1, 0): (1, 0), (-1, 0): (-1, 0), (0, 1): (0, 1), (0, -1): (0, -1)}.items():
        flow = spec.model_input(moving_square(dx, dy, bright))[0, 6:, 1:-1]  # the end frames have one-sided changes
        across, along = flow.sum(dim=(1, 2, 3)).tolist()
        assert torch.isfinite(flow).all()
        if x_sign:
            assert across * x_sign > 0 and abs(along) < 1e-3 * abs(across)
        else:
            assert along * y_sign > 0 and abs(across) < 1e-3 * abs(along)
    # the temporal residual, by contrast, flips sign with the contrast: alone it cannot tell left from right
    residual = spec.model_input(moving_square(1, 0, bright))[0, 3, -1, 12]
    assert (residual[16] > 0) == bright


def test_a_still_clip_has_no_normal_flow():
    still = moving_square(0, 0, True)
    flow = ClipSpec(normalisation="clip", normal_flow=True).model_input(still)[:, 3:]
    assert flow.shape == (1, 2, 6, 24, 24) and flow.abs().max() == 0
    spec = ClipSpec(normalisation="clip", normal_flow=True)
    assert ClipSpec.from_dict(spec.to_dict()) == spec and "normal flow" in spec.describe()
    old = {k: v for k, v in spec.to_dict().items() if k != "normal_flow"}  # a spec written before the field
    assert ClipSpec.from_dict(old).normal_flow is False


def creeping_edge(speed: float, noise: float, frames: int = 16, side: int = 32) -> torch.Tensor:
    """(1, 3, frames, side, side) values in [0, 1]: a soft vertical edge, bright on its left, moving right ``speed``
    px a frame, under sensor noise of standard deviation ``noise`` (seeded)."""
    columns = torch.arange(side, dtype=torch.float32)
    edges = side / 2 - 4 + speed * torch.arange(frames, dtype=torch.float32)
    rows = 0.3 + 0.3 * torch.sigmoid(edges[:, None] - columns[None, :])  # (frames, side)
    clip = rows[:, None, :].expand(frames, side, side).expand(1, 3, frames, side, side)
    noisy = clip + noise * torch.randn(clip.shape, generator=torch.Generator().manual_seed(0))
    return noisy.clamp(0, 1)


def test_a_longer_flow_baseline_sees_sub_pixel_motion_through_noise():
    spec = ClipSpec(normalisation="clip", temporal_residual=True, normal_flow=True, flow_baselines=2)
    assert spec.network_channels == 10 and "over 1..2 clip steps" in spec.describe()
    # a quarter of a pixel a frame under motion-clutter's noise (12 grey levels)
    flow = normal_flow(creeping_edge(0.25, 12 / 255), baselines=2)[0, :, 2:-2, 4:-4, 10:22]  # inner frames, the edge
    right = [(flow[channel] > 0).float().mean().item() for channel in (0, 2)]  # x over 1 step, over 2 steps
    assert 0.6 < right[0] < right[1] - 0.05, right
    signal_to_noise = [flow[channel].mean(dim=(1, 2)) for channel in (0, 2)]  # per frame, over the edge
    assert (signal_to_noise[1].mean() / signal_to_noise[1].std()) > 2 * (signal_to_noise[0].mean() / signal_to_noise[0].std())
    # one baseline: the same channels as before the option existed
    assert torch.equal(normal_flow(creeping_edge(0.25, 0.0), baselines=2)[:, :2], normal_flow(creeping_edge(0.25, 0.0)))
    old = {k: v for k, v in spec.to_dict().items() if k != "flow_baselines"}  # a spec written before the field
    assert ClipSpec.from_dict(old).flow_baselines == 1
    with pytest.raises(SttsError, match="flow_baselines must be a positive integer"):
        ClipSpec(flow_baselines=0)


def flickering_and_moving(frames: int = 6) -> torch.Tensor:
    """uint8 clips (1, 3, T, 24, 48): on the left a still square whose brightness jumps every frame, on the right
    a faint square moving right a pixel a frame."""
    clips = torch.full((1, 3, frames, 24, 48), 60, dtype=torch.uint8)
    for t in range(frames):
        clips[0, :, t, 9:15, 6:12] = (150, 230, 180, 120, 210, 160)[t % 6]
        left = 28 + t - frames // 2
        clips[0, :, t, 9:15, left:left + 6] = 110
    return clips


def test_the_normal_flow_on_local_contrast_takes_flicker_for_no_motion():
    spec = ClipSpec(normalisation="clip", temporal_residual=True, normal_flow=True, flow_local_contrast=True)
    assert spec.network_channels == 8 and "evened local contrast" in spec.describe()
    shares = {}
    for evened in (False, True):
        flow = spec.replace(flow_local_contrast=evened).model_input(flickering_and_moving())[0, 6:, 1:-1]
        energy = flow.square().sum(dim=0)
        shares[evened] = (energy[..., :24].sum() / energy.sum()).item()  # the flickering square's share
        assert flow[0, ..., 24:].sum() > 0 and flow[1, ..., 24:].sum().abs() < 1e-3 * flow[0, ..., 24:].sum()
    assert shares[False] > 0.5 and shares[True] < 0.01, shares
    frames = local_contrast(flickering_and_moving().float() / 255)
    assert frames.shape == (1, 3, 6, 24, 48) and torch.isfinite(frames).all()
    old = {k: v for k, v in spec.to_dict().items() if k != "flow_local_contrast"}  # a spec written before the field
    assert ClipSpec.from_dict(old).flow_local_contrast is False
    assert ClipSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("clip_len, frames, stride", [(16, 48, 3), (16, 46, 3), (16, 45, 2), (16, 10, 1), (1, 90, 1)])
def test_the_spanning_stride_is_the_largest_whose_clip_fits_the_video(clip_len, frames, stride):
    assert ClipSpec.spanning_stride(clip_len, frames) == stride
    assert ClipSpec(clip_len=clip_len, clip_stride=stride).span <= max(frames, clip_len)


@pytest.mark.parametrize("pool", [2, 4])
def test_pooled_frames_average_every_frames_input_channels(pool):
    generator = torch.Generator().manual_seed(0)
    clips = torch.randint(0, 256, (2, 3, 16, 12, 12), dtype=torch.uint8, generator=generator)
    options = dict(clip_len=16, normalisation="clip", temporal_residual=True, normal_flow=True)
    full = ClipSpec(**options).model_input(clips)
    pooled_spec = ClipSpec(**options, pool_frames=pool)
    pooled = pooled_spec.model_input(clips)
    assert pooled_spec.network_frames == 16 // pool
    assert pooled.shape == (2, full.shape[1], 16 // pool, 12, 12)
    # each time step is the mean of `pool` consecutive frames' channels, each computed over the whole clip
    expected = full.reshape(2, full.shape[1], 16 // pool, pool, 12, 12).mean(3)
    torch.testing.assert_close(pooled, expected)
    assert pooled_spec.input_shape()[:2] == (3, 16)  # what the network is given is the whole clip
    assert ClipSpec.from_dict(pooled_spec.to_dict()) == pooled_spec
    assert f"averaged over {pool} frames at a time ({16 // pool} time steps)" in pooled_spec.describe()


def test_pooled_frames_must_divide_the_clip():
    with pytest.raises(SttsError, match=r"clip_len \(16\) must be a multiple of pool_frames \(3\)"):
        ClipSpec(clip_len=16, pool_frames=3)
    with pytest.raises(SttsError, match="pool_frames must be a positive integer"):
        ClipSpec(pool_frames=0)
