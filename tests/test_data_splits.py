"""Split parsing: pure functions on official-format lists."""

from __future__ import annotations

import pytest

from data_fixtures import hmdb_split_lines, ucf_class_names, ucf_split_lines
from stts.data import splits
from stts.errors import SttsError


@pytest.fixture(scope="module")
def ucf_lists():
    return ucf_split_lines(ucf_class_names())


def test_ucf_split1_counts_and_group_wise_val(ucf_lists):
    classes, records = splits.ucf_records(*ucf_lists)
    counts = splits.split_counts(records)
    assert len(classes) == 101
    assert counts["train"] + counts["val"] == 9537 and counts["test"] == 3783
    assert 0.06 < counts["val"] / 9537 < 0.11
    groups = {s: {splits.ucf_group(r.path) for r in records if r.split == s} for s in splits.SPLITS}
    assert not groups["val"] & groups["test"] and not groups["val"] & groups["train"]
    assert {r.label for r in records if r.split == "val"} == set(range(101))
    assert records == splits.ucf_records(*ucf_lists)[1]  # deterministic


def test_val_from_test_is_the_seeds_leaky_sample(ucf_lists):
    _, records = splits.ucf_records(*ucf_lists, val_from_test=True)
    counts = splits.split_counts(records)
    assert (counts["train"], counts["val"], counts["test"]) == (9537, 756, 3783)
    test = {r.path for r in records if r.split == "test"}
    assert {r.path for r in records if r.split == "val"} <= test


def test_hmdb_split1_counts():
    classes = [f"action_{i:02d}" for i in range(51)]
    files = hmdb_split_lines(classes, unused=[33] * 34 + [32] * 17)
    names, records = splits.hmdb_records(files, 1)
    assert names == sorted(classes)
    assert splits.split_counts(records) == {"train": 3570, "val": 1666, "test": 1530}


def test_crlf_and_trailing_spaces(tmp_path):
    path = tmp_path / "brush_hair_test_split1.txt"
    path.write_bytes(b"a b [c].avi 1 \r\nd.avi 2 \r\n\r\ne.avi 0 \r\n")
    lines = splits.read_lines(path)
    assert lines == ["a b [c].avi 1", "d.avi 2", "e.avi 0"]
    _, records = splits.hmdb_records({path.name: lines})
    assert [(r.path, r.split) for r in records] == [
        ("brush_hair/a b [c].avi", "train"), ("brush_hair/d.avi", "test"), ("brush_hair/e.avi", "val")]


def test_labels_come_from_the_folder_not_the_file_name():
    classes = ["HandstandPushups", "HandstandWalking"]
    records = splits.parse_ucf_list(["HandstandPushups/v_HandStandPushups_g01_c01.avi"], classes, "test", "t")
    assert records[0].label == 0
    with pytest.raises(SttsError, match="labelled 2 but its folder is class 1"):
        splits.parse_ucf_list(["HandstandPushups/v_HandstandWalking_g08_c01.avi 2"], classes, "train", "t")
    with pytest.raises(SttsError, match="not in a class folder"):
        splits.parse_ucf_list(["Nowhere/v_X_g01_c01.avi"], classes, "test", "t")


def test_bad_class_index_names_the_line():
    with pytest.raises(SttsError, match="line 2"):
        splits.parse_class_index(["1 A", "3 B"])


def test_stratified_split_is_deterministic_70_10_20():
    by_class = {c: [f"{c}/{i}.mp4" for i in range(20)] for c in ("b", "a")}
    classes, records = splits.stratified_split(by_class, seed=3)
    assert classes == ["a", "b"]
    assert splits.split_counts(records) == {"train": 28, "val": 4, "test": 8}
    assert records == splits.stratified_split(by_class, seed=3)[1]
    assert records != splits.stratified_split(by_class, seed=4)[1]


def test_small_classes_still_give_val_and_test_a_video():
    by_class = {"three": [f"three/{i}.mp4" for i in range(3)], "four": [f"four/{i}.mp4" for i in range(4)],
                "two": ["two/0.mp4", "two/1.mp4"]}
    classes, records = splits.stratified_split(by_class)
    for label, name in enumerate(classes):
        counts = splits.split_counts([r for r in records if r.label == label])
        expected = {"two": (2, 0, 0), "three": (1, 1, 1), "four": (2, 1, 1)}[name]
        assert (counts["train"], counts["val"], counts["test"]) == expected
