"""The motion suite's body family: jointed figures whose limbs move as the class says, with the suite's hardships."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from stts.data import prepare_dataset, read_info, read_video
from stts.data.motion import SUITE, render_video
from stts.data.motion_body import ACTIONS, FLIP_PAIRS, JOINTS, LIMBS, SEGMENTS, SIZE, STATURE, render_body
from stts.errors import SttsError

IN_PLACE = ACTIONS[:6]
J = {name: i for i, name in enumerate(JOINTS)}


def scene_of(action: str, video: int, seed: int = 0):
    """The scene ``generate_family`` writes as train video ``video`` of ``action``."""
    return render_body(action, np.random.default_rng([seed, list(SUITE).index("body"), ACTIONS.index(action), video]))


def in_scene(scene, *names):
    """(T, len(names), 2) those joints in scene coordinates (the camera's pan added back), in statures."""
    return (scene.joints[:, [J[n] for n in names]] + scene.camera[:, None]) / scene.stature


def test_classes_flip_pairs_and_the_data_set():
    from stts.data.registry import get_dataset

    assert ACTIONS == ("WaveOneArm", "WaveBothArms", "JumpingJack", "Punch", "Kick", "Squat", "WalkLeft", "WalkRight")
    assert FLIP_PAIRS == (("WalkLeft", "WalkRight"),)
    body = SUITE["body"]
    assert body.classes == ACTIONS and body.flip_pairs == FLIP_PAIRS and sum(body.videos) == 60
    kind = get_dataset("motion-body")
    assert kind.flip_pairs == FLIP_PAIRS and kind.preset == "small"
    assert kind.options == {"train_per_class": 42, "val_per_class": 6, "test_per_class": 12}
    with pytest.raises(SttsError, match="Cartwheel"):
        render_video("body", "Cartwheel", np.random.default_rng(0))
    with pytest.raises(SttsError, match="Kick"):
        render_video("polarity", "Kick", np.random.default_rng(0))


def test_same_seed_same_video_other_index_other_video():
    frames, masks, fps = render_video("body", "Kick", np.random.default_rng([0, 8, 4, 3]))
    again, again_masks, again_fps = render_video("body", "Kick", np.random.default_rng([0, 8, 4, 3]))
    assert np.array_equal(frames, again) and np.array_equal(masks, again_masks) and fps == again_fps == 25
    assert frames.dtype == np.uint8 and frames.shape[1:] == (SIZE[1], SIZE[0], 3) and 48 <= len(frames) <= 80
    assert masks.shape == frames.shape[:3] and masks.any()
    other, _, _ = render_video("body", "Kick", np.random.default_rng([0, 8, 4, 4]))
    assert other.shape != frames.shape or not np.array_equal(other, frames)


def test_the_class_decides_only_how_the_limbs_move():
    """The same seed gives every class the same length, body, clothes, place, camera, background and noise."""
    for video in range(3):
        scenes = {action: render_body(action, np.random.default_rng([5, video])) for action in ACTIONS}
        still = scenes["Punch"]
        for action, scene in scenes.items():
            assert (len(scene.frames), scene.stature, scene.polarity) == (len(still.frames), still.stature, still.polarity)
            if action in IN_PLACE:
                assert scene.mirrored == still.mirrored
                assert np.allclose(scene.radii, still.radii)
                if not np.ptp(still.camera) and not np.ptp(scene.camera):
                    # away from both figures, the very same pixels
                    away = ~(scene.masks | still.masks)
                    grown = away & np.roll(away, 3, 1) & np.roll(away, -3, 1) & np.roll(away, 3, 2) & np.roll(away, -3, 2)
                    assert np.array_equal(scene.frames[grown], still.frames[grown]), action


def test_limbs_move_as_the_class_says():
    for action in ACTIONS:
        for video in range(4):
            scene = scene_of(action, video)
            ankles = in_scene(scene, "r_ankle", "l_ankle")  # (T, 2, 2)
            wrists = in_scene(scene, "r_wrist", "l_wrist") - in_scene(scene, "r_shoulder", "l_shoulder")
            above_shoulder = -wrists[..., 1]  # y grows downwards
            above_head = in_scene(scene, "head")[:, :, 1] - in_scene(scene, "r_wrist", "l_wrist")[..., 1]
            sweep = np.linalg.norm(np.ptp(wrists, axis=0), axis=-1)  # (2,) how far each hand moves about its shoulder
            lift = np.abs(ankles[:, 0, 1] - ankles[:, 1, 1]).max()
            squat = np.ptp(in_scene(scene, "pelvis")[:, 0, 1])
            where = f"{action} video {video}: "
            if action in ("WalkLeft", "WalkRight"):
                sign = 1 if action == "WalkRight" else -1
                assert (sign * (ankles[-1, :, 0] - ankles[0, :, 0]) > 0.1).all(), where + "the feet walk that way"
            else:
                assert np.ptp(ankles[..., 0], axis=0).min() < 0.15, where + "a foot stays where it is"
            assert (lift > 0.25) == (action == "Kick"), where + f"one foot rises {lift:.2f} above the other"
            assert (squat > 0.15) == (action == "Squat"), where + f"the hips go down {squat:.2f}"
            if action == "WaveOneArm":
                waving = int(np.argmax(sweep))
                assert above_shoulder[:, waving].min() > 0.08 and sweep[waving] > 0.06, where + "one hand waves up"
                assert above_shoulder[:, 1 - waving].max() < 0.05 and sweep[1 - waving] < 0.04, where + "one rests"
            elif action == "WaveBothArms":
                assert above_shoulder.min() > 0.08 and sweep.min() > 0.06, where + "both hands wave up"
            elif action == "JumpingJack":
                assert (above_head.max(0) > 0.1).all() and (above_shoulder.min(0) < -0.2).all(), where + "up and down"
            else:
                assert above_head.max() < 0, where + "the hands stay below the head"
            if action == "Punch":
                assert sweep.max() > 0.07, where + f"a fist goes out and back {sweep.max():.2f}"
            if action in ("Kick", "Squat", "WalkLeft", "WalkRight"):
                assert sweep.max() < 0.5, where


def test_hardships_polarities_pan_sizes_mirrors_and_noise():
    polarities, pans, statures, mirrored, counts = [], [], [], set(), set()
    for video in range(3):
        for action in ACTIONS:
            scene = scene_of(action, video)
            frames, masks = scene.frames, scene.masks
            luma = frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
            grown = masks.copy()
            for _ in range(3):
                grown |= np.roll(grown, 1, 1) | np.roll(grown, -1, 1) | np.roll(grown, 1, 2) | np.roll(grown, -1, 2)
            contrast = luma[masks].mean() - luma[grown & ~masks].mean()
            assert np.sign(contrast) == scene.polarity, f"{action} {video}: contrast {contrast:.1f}"
            polarities.append(scene.polarity)
            pans.append(np.ptp(scene.camera[:, 0]))
            # standing height from the joints: head top to soles, in the frame where the figure stands tallest
            head = scene.joints[:, J["head"], 1] - scene.radii[SEGMENTS.index(("head", "head", "skin", "head"))]
            soles = scene.joints[:, [J["r_ankle"], J["l_ankle"]], 1].max(1) + scene.radii[-1]
            statures.append((soles - head).max())
            assert STATURE[0] <= scene.stature <= STATURE[1] and abs(statures[-1] / scene.stature - 1) < 0.08
            if action in IN_PLACE:
                mirrored.add((action, scene.mirrored))
            counts.add(len(frames))
            if not pans[-1]:  # a still camera: frame differences away from the figure are the sensor's noise
                away = ~(masks[1:] | masks[:-1])
                noise = np.diff(luma, axis=0)[away].std() / np.sqrt(2)
                assert 1.5 < noise < 9, f"{action} {video}: noise {noise:.1f}"
    assert {-1, 1} <= set(polarities)
    assert sum(p > 20 for p in pans) >= 4 and sum(p == 0 for p in pans) >= 4, np.round(pans)
    assert min(statures) < 65 and max(statures) > 80, np.round(statures)
    assert len({m for _, m in mirrored}) == 2 and len(counts) >= 8


def test_mirroring_keeps_each_in_place_class_and_swaps_the_walks():
    """A figure faces the way its toes point: in-place classes face both ways, a walker the way it walks."""
    facing = {action: set() for action in ACTIONS}
    for video in range(4):
        for action in ACTIONS:
            scene = scene_of(action, video)
            toes = np.sign(np.median(scene.joints[:, J["r_toe"], 0] - scene.joints[:, J["r_ankle"], 0]))
            assert toes == (-1 if scene.mirrored else 1)
            facing[action].add(int(toes))
    # a seed mirrors every in-place class alike (test_the_class_decides_only_how_the_limbs_move): both ways occur
    assert set.union(*(facing[action] for action in IN_PLACE)) == {-1, 1}, facing
    assert facing["WalkLeft"] == {-1} and facing["WalkRight"] == {1}


def test_a_panning_camera_moves_the_background_with_it():
    scene = next(s for s in (scene_of("WaveBothArms", v) for v in range(12)) if np.ptp(s.camera[:, 0]) > 30)
    frames, camera = scene.frames.astype(np.float32), scene.camera
    k = len(frames) // 2
    shift = np.round(camera[k] - camera[0]).astype(int)  # frame point = scene point - camera
    height, width = frames.shape[1:3]
    ys, xs = slice(max(0, -shift[1]), min(height, height - shift[1])), slice(max(0, -shift[0]), min(width, width - shift[0]))
    seen_k = frames[k][ys, xs]
    seen_0 = frames[0][ys.start + shift[1]:ys.stop + shift[1], xs.start + shift[0]:xs.stop + shift[0]]
    away = ~(scene.masks[k][ys, xs] | scene.masks[0][ys.start + shift[1]:ys.stop + shift[1],
                                                     xs.start + shift[0]:xs.stop + shift[0]])
    moved = np.abs(seen_k - seen_0)[away].mean()
    still = np.abs(frames[k] - frames[0])[~(scene.masks[k] | scene.masks[0])].mean()
    assert moved < 0.6 * still, (moved, still)


def test_limbs_are_more_than_a_pixel_wide_when_the_frame_is_seen_at_48_pixels():
    """Across each limb's middle, the figure's mask resized to 48x48 covers more than a pixel, on the smallest figures."""
    scenes = sorted((scene_of(action, video) for action in ACTIONS for video in range(3)), key=lambda s: s.stature)[:4]
    assert scenes[0].stature < 62
    scale = np.array([48 / SIZE[0], 48 / SIZE[1]])
    steps = np.linspace(-4, 4, 161)
    for scene in scenes:
        for t in range(0, len(scene.frames), 7):
            view = np.asarray(Image.fromarray(scene.masks[t].astype(np.float32)).resize((48, 48), Image.Resampling.BOX))
            for s in LIMBS:
                a, b = (scene.joints[t, J[SEGMENTS[s][k]]] * scale for k in (0, 1))
                middle, along = (a + b) / 2, b - a
                inside = (middle > 3).all() and (middle < 45).all()
                if np.linalg.norm(along) < 1 or not inside:
                    continue
                normal = np.array([-along[1], along[0]]) / np.linalg.norm(along)
                x, y = (middle + steps[:, None] * normal - 0.5).T  # pixel centres at whole coordinates
                x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
                fx, fy = x - x0, y - y0
                sample = ((1 - fy) * ((1 - fx) * view[y0, x0] + fx * view[y0, x0 + 1])
                          + fy * ((1 - fx) * view[y0 + 1, x0] + fx * view[y0 + 1, x0 + 1]))
                width = sample.sum() * (steps[1] - steps[0])
                assert width > 1, f"{SEGMENTS[s][:2]} of a {scene.stature:.0f}-px figure: {width:.2f} px at 48"


def test_motion_body_prepares_through_stts_prepare_with_its_flip_pair(tmp_path):
    out = tmp_path / "motion-body"
    result = prepare_dataset("motion-body", [], out, workers=1, progress=False,
                             options={"train_per_class": 1, "val_per_class": 1, "test_per_class": 1})
    assert (result["classes"], result["train"], result["val"], result["test"]) == (8, 8, 8, 8)
    info = read_info(out)
    assert info["flip_pairs"] == [["WalkLeft", "WalkRight"]] and info["spec"]["hflip"] is True
    assert (out / "classes.txt").read_text().split() == sorted(ACTIONS)
    videos = out / "videos"
    assert "WalkLeft/body_WalkLeft_test_000.avi" in (videos / "test.txt").read_text().splitlines()
    frames, _ = read_video(videos / "Squat" / "body_Squat_train_000.avi")
    assert frames.shape[1:] == (120, 160, 3) and 48 <= len(frames) <= 80
