"""ClipDataset over a prepared folder: shapes, augmentation reproducibility, workers, multi-view; read_video."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from data_fixtures import make_ucf_tree, write_video
from stts.clip import ClipSpec
from stts.data import ClipDataset, dataset_root, prepare_dataset, read_spec, read_video
from stts.errors import SttsError


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    videos, _ = make_ucf_tree(root / "src", frames=40)
    prepare_dataset("ucf101", [videos.parent], root / "out", height=48, workers=1, progress=False)
    return root / "out"


def sampling(prepared, clip_len: int, crop_size: int) -> ClipSpec:
    return read_spec(prepared).replace(clip_len=clip_len, crop_size=crop_size)


def test_train_clip_shape_and_reproducible_augmentation(prepared):
    dataset = ClipDataset(prepared, "train", sampling(prepared, 8, 40), train=True, seed=1)
    clip, label = dataset[0]
    assert clip.shape == (3, 8, 40, 40) and clip.dtype == torch.uint8 and isinstance(label, int)
    assert torch.equal(clip, dataset[0][0])
    epochs = []
    for epoch in range(4):
        dataset.set_epoch(epoch)
        epochs.append(dataset[0][0])
    assert any(not torch.equal(epochs[0], other) for other in epochs[1:])
    other_seed = ClipDataset(prepared, "train", sampling(prepared, 8, 40), train=True, seed=2)
    assert any(not torch.equal(dataset[i][0], other_seed[i][0]) for i in range(len(dataset)))


def test_augmentation_does_not_depend_on_workers(prepared):
    dataset = ClipDataset(prepared, "train", sampling(prepared, 8, 40), train=True, seed=3)
    dataset.set_epoch(2)
    batches = [torch.cat([b for b, _ in DataLoader(dataset, batch_size=2, num_workers=w)]) for w in (0, 2)]
    assert torch.equal(batches[0], batches[1])
    assert pickle.loads(pickle.dumps(dataset)).videos == dataset.videos


def test_workers_that_outlive_an_epoch_draw_the_next_epochs_clips(prepared):
    """Training keeps its loader workers for the whole run (persistent_workers): each epoch they must read the
    epoch the main process set after they started, and draw what a loader without workers draws."""
    dataset = ClipDataset(prepared, "train", sampling(prepared, 8, 40), train=True, seed=3)
    persistent = DataLoader(dataset, batch_size=2, num_workers=2, persistent_workers=True)
    drawn = {}
    for epoch in (1, 2, 3):
        dataset.set_epoch(epoch)
        drawn[epoch] = torch.cat([b for b, _ in persistent])
        assert torch.equal(drawn[epoch], torch.cat([b for b, _ in DataLoader(dataset, batch_size=2)]))
    assert not torch.equal(drawn[1], drawn[2]) and not torch.equal(drawn[2], drawn[3])


def test_eval_is_centre_and_multiview_stacks_views(prepared):
    single = ClipDataset(prepared, "test", sampling(prepared, 8, 40))
    views = ClipDataset(prepared, "test", sampling(prepared, 8, 40), windows=2, crops=3)
    clip, _ = single[0]
    stacked, label = views[0]
    assert stacked.shape == (6, 3, 8, 40, 40) and label == single[0][1]
    assert torch.equal(single[0][0], clip)
    assert not torch.equal(stacked[0], stacked[3])  # different windows


def test_labels_classes_and_videos(prepared):
    dataset = ClipDataset(prepared, "test", sampling(prepared, 8, 40))
    assert dataset.classes == ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]
    assert dataset.labels == [0, 1, 2] and dataset.videos[1].startswith("HandstandPushups/")


def test_crop_larger_than_frames_and_unknown_split(prepared):
    with pytest.raises(SttsError, match="smaller than the 112-pixel crop"):
        ClipDataset(prepared, "test", read_spec(prepared).replace(crop_size=112))
    with pytest.raises(SttsError, match="no bogus split"):
        ClipDataset(prepared, "bogus")


def test_dataset_root(prepared, tmp_path):
    assert dataset_root(str(prepared)) == prepared
    with pytest.raises(SttsError, match="stts prepare ucf101 .*--out"):
        dataset_root("ucf101", tmp_path)
    with pytest.raises(SttsError, match="stts prepare synthetic-motion"):
        dataset_root("synthetic-motion", tmp_path)


def test_read_video(tmp_path):
    path = write_video(tmp_path / "v.avi", frames=30, width=64, height=48)
    frames, fps = read_video(path)
    assert frames.shape == (30, 48, 64, 3) and frames.dtype == np.uint8 and fps == 25
    resized, _ = read_video(path, ClipSpec(height=32))
    assert resized.shape == (30, 32, 42, 3)
    (tmp_path / "empty.avi").write_bytes(b"")
    with pytest.raises(SttsError, match="empty.avi"):
        read_video(tmp_path / "empty.avi")
    (tmp_path / "text.avi").write_text("hello")
    with pytest.raises(SttsError, match="text.avi"):
        read_video(tmp_path / "text.avi")


@pytest.mark.parametrize("box", [(0, 0, 32, 32), (5, 9, 40, 24), (1, 3, 16, 60)])
@pytest.mark.parametrize("flip", [False, True])
def test_store_region_read_equals_cropping_whole_frames(prepared, box, flip):
    store = ClipDataset(prepared, "train", sampling(prepared, 8, 32)).store
    video = next(iter(store.entries))
    indices = [3, 4, 4, 5, 9]
    whole = store.read_frames(video, indices)
    top, left, height, width = box
    expected = whole[:, top:top + height, left:left + width]
    expected = expected[:, :, ::-1] if flip else expected
    assert np.array_equal(store.read_frames(video, indices, box, flip), expected)


def test_scaled_views_are_resized_to_the_crop_and_storage_must_match(prepared):
    spec = read_spec(prepared).replace(clip_len=4, crop_size=24).with_sampling(4, 2, 24, 0.9, (0.5, 1.0))
    train = ClipDataset(prepared, "train", spec, train=True)
    clip, _ = train[0]
    assert clip.shape == (3, 4, 24, 24)
    stacked, _ = ClipDataset(prepared, "test", spec, windows=2, crops=3)[0]
    assert stacked.shape == (6, 3, 4, 24, 24)
    with pytest.raises(SttsError, match="stored as"):
        ClipDataset(prepared, "test", spec.replace(height=64))
