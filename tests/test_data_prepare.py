"""End to end: official-format trees and archives -> prepared folders; bad input; resume; verify; the CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from data_fixtures import UCF_CLASSES, make_hmdb_tree, make_ucf_tree, rar_of_tree, write_rar4, write_video, write_zip
from stts.cli import main
from stts.data import ClipDataset, prepare_dataset, read_classes, read_spec, verify_prepared
from stts.data.store import INDEX, read_index
from stts.errors import SttsError


@pytest.fixture(scope="module")
def ucf_tree(tmp_path_factory):
    return make_ucf_tree(tmp_path_factory.mktemp("ucf"))


def test_ucf_from_archives(tmp_path, ucf_tree):
    videos, lists = ucf_tree
    rar = rar_of_tree(tmp_path / "UCF101.rar", videos, prefix="UCF-101/")
    zip_ = write_zip(tmp_path / "UCF101TrainTestSplits-RecognitionTask.zip", lists, prefix="ucfTrainTestlist/")
    result = prepare_dataset("ucf101", [rar, zip_], tmp_path / "out", workers=2, progress=False)
    assert (result["classes"], result["train"] + result["val"], result["test"]) == (3, 6, 3)
    assert result["skipped"] == [] and result["missing"] == []
    assert read_classes(tmp_path / "out") == UCF_CLASSES
    labels = dict(line.split("\t") for line in (tmp_path / "out/manifests/test.tsv").read_text().splitlines())
    assert labels["HandstandPushups/v_HandStandPushups_g03_c01.avi"] == "1"
    assert verify_prepared(tmp_path / "out", progress=False) == {}


def test_hmdb_from_nested_rars(tmp_path):
    tree = make_hmdb_tree(tmp_path / "tree")
    class_rars = {}
    for name in ("brush_hair", "cartwheel"):
        class_rars[name] = rar_of_tree(tmp_path / f"{name}.rar", tree / name, prefix=f"{name}/").read_bytes()
    org = write_rar4(tmp_path / "hmdb51_org.rar", {f"{n}.rar": data for n, data in class_rars.items()})
    split_rar = rar_of_tree(tmp_path / "test_train_splits.rar", tree / "testTrainMulti_7030_splits",
                            prefix="testTrainMulti_7030_splits/")
    result = prepare_dataset("hmdb51", [org, split_rar], tmp_path / "out", workers=1, progress=False)
    assert (result["classes"], result["train"], result["val"], result["test"]) == (2, 2, 2, 2)
    dataset = ClipDataset(tmp_path / "out", "test", read_spec(tmp_path / "out").replace(clip_len=8, crop_size=32))
    assert "brush_hair/Brushing Hair [with] (odd) name!_0.avi" in dataset.videos


def test_extracted_folders_and_bad_videos_are_skipped_and_reported(tmp_path, ucf_tree):
    videos, lists = ucf_tree
    root = tmp_path / "copy"
    shutil.copytree(videos.parent, root)
    (root / "UCF-101/YoYo/v_YoYo_g08_c01.avi").write_bytes(b"")
    (root / "UCF-101/YoYo/v_YoYo_g09_c01.avi").write_bytes(b"RIFF....AVI garbage" * 50)
    (root / "UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi").write_text("just text")
    result = prepare_dataset("ucf101", [root], tmp_path / "out", workers=2, progress=False)
    assert len(result["skipped"]) == 3
    assert result["train"] + result["val"] + result["test"] == 6
    report = (tmp_path / "out/report.txt").read_text()
    assert "v_YoYo_g08_c01.avi" in report and "empty file" in report and "v_YoYo_g09_c01.avi" in report


def test_missing_video_stops_unless_allowed(tmp_path, ucf_tree):
    videos, lists = ucf_tree
    root = tmp_path / "copy"
    shutil.copytree(videos.parent, root)
    (root / "UCF-101/YoYo/v_YoYo_g03_c01.avi").unlink()
    with pytest.raises(SttsError, match="YoYo/v_YoYo_g03_c01.avi.*--allow-missing"):
        prepare_dataset("ucf101", [root], tmp_path / "out", progress=False)
    result = prepare_dataset("ucf101", [root], tmp_path / "out", allow_missing=True, workers=1, progress=False)
    assert result["missing"] == ["YoYo/v_YoYo_g03_c01.avi"] and result["test"] == 2
    assert "missing\tYoYo/v_YoYo_g03_c01.avi" in (tmp_path / "out/report.txt").read_text()


def test_rerun_skips_finished_videos_and_ignores_a_partial_index_line(tmp_path, ucf_tree):
    out = tmp_path / "out"
    prepare_dataset("ucf101", [ucf_tree[0].parent], out, workers=1, progress=False)
    index = out / "store" / INDEX
    lines = index.read_bytes().splitlines(keepends=True)
    index.write_bytes(b"".join(lines[:5]) + lines[5][:20])  # as if killed while writing line 6
    assert len(read_index(out / "store")) == 5
    shards = {p.name: p.stat().st_size for p in (out / "store").glob("shard-*")}
    prepare_dataset("ucf101", [ucf_tree[0].parent], out, workers=1, progress=False)
    assert len(read_index(out / "store")) == 9
    new = [p for p in (out / "store").glob("shard-*") if p.name not in shards]
    assert len(new) == 1  # only the 4 unfinished videos were decoded again, into one new shard
    before = index.read_bytes()
    prepare_dataset("ucf101", [ucf_tree[0].parent], out, workers=1, progress=False)
    assert index.read_bytes() == before
    assert verify_prepared(out, progress=False) == {}


def test_verify_finds_a_damaged_entry(tmp_path, ucf_tree):
    out = tmp_path / "out"
    prepare_dataset("ucf101", [ucf_tree[0].parent], out, workers=1, progress=False)
    shard = next((out / "store").glob("shard-*"))
    data = bytearray(shard.read_bytes())
    data[100] ^= 0xFF
    shard.write_bytes(bytes(data))
    problems = verify_prepared(out, progress=False)
    assert len(problems) == 1 and "CRC" in next(iter(problems.values()))
    assert main(["prepare", "ucf101", "--verify", "--out", str(out)]) == 2


def test_short_video_is_padded_not_dropped(tmp_path):
    root = tmp_path / "videos"
    for c in ("a", "b"):
        for i in range(3):
            write_video(root / c / f"{i}.avi", frames=5 if i == 0 else 20, seed=i)
    (root / "train.txt").write_text("a/0.avi\r\nb/0.avi  \r\n")
    (root / "val.txt").write_text("a/2.avi\nb/2.avi\n")
    (root / "test.txt").write_text("a/1.avi\nb/1.avi\n")
    result = prepare_dataset("folder", [root], tmp_path / "out", workers=1, progress=False)
    assert (result["train"], result["val"], result["test"]) == (2, 2, 2)
    spec = read_spec(tmp_path / "out").replace(clip_len=16, crop_size=32)
    clip, label = ClipDataset(tmp_path / "out", "train", spec, train=True)[0]
    assert clip.shape == (3, 16, 32, 32) and label == 0


def test_lists_without_val_give_val_train_videos_and_an_empty_split_stops(tmp_path):
    root = tmp_path / "videos"
    for c in ("a", "b"):
        for i in range(6):
            write_video(root / c / f"{i}.avi", frames=8, width=32, height=32, seed=i)
    (root / "train.txt").write_text("".join(f"{c}/{i}.avi\n" for c in "ab" for i in range(4)))
    (root / "test.txt").write_text("a/4.avi\nb/4.avi\n")
    result = prepare_dataset("folder", [root], tmp_path / "out", workers=1, progress=False)
    assert (result["train"], result["val"], result["test"]) == (6, 2, 2)
    assert any("moved to val" in warning for warning in result["warnings"])
    (root / "train.txt").write_text("a/0.avi\nb/0.avi\n")  # one train video a class: nothing to move
    with pytest.raises(SttsError, match="the val split is empty"):
        prepare_dataset("folder", [root], tmp_path / "out2", workers=1, progress=False)


def test_a_class_of_three_or_four_videos_gets_val_and_test_after_skipping_bad_ones(tmp_path):
    root = tmp_path / "videos"
    for c, count in (("small", 4), ("tiny", 3)):
        for i in range(count):
            write_video(root / c / f"{i}.avi", frames=8, width=32, height=32, seed=i)
    (root / "small" / "3.avi").write_text("broken")  # skipped while decoding: split among the other three
    result = prepare_dataset("folder", [root], tmp_path / "out", workers=1, progress=False)
    assert (result["train"], result["val"], result["test"]) == (2, 2, 2) and len(result["skipped"]) == 1


def test_a_truncated_video_is_stored_and_reported_as_partial(tmp_path):
    root = tmp_path / "videos"
    for c in ("a", "b"):
        for i in range(3):
            write_video(root / c / f"{i}.avi", frames=32, width=32, height=32, seed=i)
    whole = (root / "a" / "0.avi").read_bytes()
    (root / "a" / "0.avi").write_bytes(whole[: len(whole) * 8 // 10])  # the header still announces 32 frames
    result = prepare_dataset("folder", [root], tmp_path / "out", workers=1, progress=False)
    assert result["partial"] == ["a/0.avi"] and "of the 32 frames it announces" in result["reasons"]["a/0.avi"]
    assert "partial\ta/0.avi" in (tmp_path / "out" / "report.txt").read_text()
    entry = read_index(tmp_path / "out" / "store")["a/0.avi"]
    assert entry["source_frames"] < 32 and len(entry["sizes"]) == len(range(0, entry["source_frames"], entry["step"]))


def test_another_stored_height_is_refused_in_the_same_folder(tmp_path, ucf_tree):
    out = tmp_path / "out"
    prepare_dataset("ucf101", [ucf_tree[0].parent], out, workers=1, progress=False)
    with pytest.raises(SttsError, match="choose another --out"):
        prepare_dataset("ucf101", [ucf_tree[0].parent], out, height=64, workers=1, progress=False)


def test_folder_without_lists_gets_a_stratified_split(tmp_path):
    root = tmp_path / "videos"
    for c in ("walk", "jump"):
        for i in range(10):
            write_video(root / c / f"clip {i}.avi", frames=8, width=32, height=32, seed=i)
    (root / "walk" / "notes.txt").write_text("not a video")
    out = tmp_path / "out"
    assert main(["prepare", "folder", str(root), "--out", str(out), "--size", "32", "--json"]) == 0
    info = json.loads((out / "dataset.json").read_text())
    assert info["counts"] == {"train": 14, "val": 2, "test": 4} and info["skipped"] == 1


def test_cli_json_and_table(tmp_path, ucf_tree, capsys):
    out = tmp_path / "out"
    assert main(["prepare", "ucf101", str(ucf_tree[0].parent), "--out", str(out), "--json", "--workers", "1"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["classes"] == 3 and counts["train"] + counts["val"] == 6 and counts["test"] == 3
    assert main(["prepare", "ucf101", str(ucf_tree[0].parent), "--out", str(out), "--val-from-test"]) == 0
    captured = capsys.readouterr()
    assert "warning" in captured.err and "test" in captured.out and "classes" in captured.out
    assert main(["prepare", "ucf101", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def sigint_as(disposition):
    """For Popen's preexec_fn: the child starts with SIGINT at ``disposition``, whatever this process has (a
    background job of a non-interactive shell, as many job runners start tests, has it ignored)."""
    return lambda: signal.signal(signal.SIGINT, disposition)


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_prepare_stops_quietly_and_a_rerun_finishes(tmp_path, number):
    root = tmp_path / "videos"
    for c in ("a", "b"):
        for i in range(12):
            write_video(root / c / f"{i}.avi", frames=60, width=96, height=72, seed=i)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "stts", "prepare", "folder", str(root), "--out", str(out), "--workers", "2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, preexec_fn=sigint_as(signal.SIG_DFL))
    index = out / "store" / INDEX
    deadline = time.monotonic() + 60
    while (not index.exists() or index.read_bytes().count(b"\n") < 2) and time.monotonic() < deadline:
        time.sleep(0.02)
    # Ctrl-C reaches the whole process group (workers included); SIGTERM the command only
    os.killpg(process.pid, number) if number == signal.SIGINT else process.send_signal(number)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in stderr, stderr
    assert [line for line in stderr.splitlines() if "interrupted" in line] == [
        "stts prepare: interrupted; run the same command again to finish: the videos already stored are kept"]
    stored = len(read_index(out / "store"))
    assert 2 <= stored < 24
    assert main(["prepare", "folder", str(root), "--out", str(out), "--workers", "2", "--json"]) == 0
    assert len(read_index(out / "store")) == 24


def test_a_prepare_started_with_sigint_ignored_keeps_ignoring_it(tmp_path):
    root = tmp_path / "videos"
    for c in ("a", "b"):
        for i in range(6):
            write_video(root / c / f"{i}.avi", frames=60, width=96, height=72, seed=i)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "stts", "prepare", "folder", str(root), "--out", str(out), "--workers", "2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, preexec_fn=sigint_as(signal.SIG_IGN))
    index = out / "store" / INDEX
    deadline = time.monotonic() + 60
    while (not index.exists() or index.read_bytes().count(b"\n") < 2) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C would: not for a job that ignores it
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0 and "interrupted" not in stderr, stderr
    assert len(read_index(out / "store")) == 12
