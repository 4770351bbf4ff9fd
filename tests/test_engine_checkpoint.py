import os
import pickle
import random
import stat

import numpy as np
import pytest
import torch

from stts import checkpoint as ckpt
from stts import files
from stts.clip import ClipSpec
from stts.engine.rng import capture_rng, restore_rng
from stts.errors import SttsError
from stts.models import build_model


class Payload:  # a custom class: weights_only must refuse it
    def __reduce__(self):
        return (print, ("this must never run",))


def tiny_state(model_type="stts", classes=("a", "b", "c")):
    model = build_model(model_type, len(classes), width=8)
    config = {"model_type": model_type, "num_classes": len(classes), "width": 8, "blocks": [2, 2, 2, 2]}
    return model, {"model": model.state_dict(), "config": config, "classes": list(classes),
                   "spec": ClipSpec(clip_len=8, crop_size=32).to_dict(), "precision": "fp32"}


def test_roundtrip_rebuilds_the_network(tmp_path):
    model, state = tiny_state()
    path = ckpt.save_checkpoint(state, tmp_path / "a.pt")
    rebuilt = ckpt.model_from_checkpoint(ckpt.load_checkpoint(path), path)
    for (name, mine), theirs in zip(model.state_dict().items(), rebuilt.state_dict().values(), strict=True):
        assert torch.equal(mine, theirs), name


def test_failed_write_keeps_previous_file_and_raises(tmp_path):
    _, state = tiny_state()
    path = ckpt.save_checkpoint(state, tmp_path / "last.pt")
    before = path.read_bytes()
    with pytest.raises((pickle.PicklingError, AttributeError)):  # torch.save cannot pickle a local lambda
        ckpt.save_checkpoint({**state, "bad": lambda: None}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary left behind


def test_pickle_with_custom_class_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "stts-checkpoint", "version": 2, "model": {}, "config": {}, "classes": [], "spec": {},
                "x": Payload()}, path)
    with pytest.raises(SttsError, match="weights_only"):
        ckpt.load_checkpoint(path)
    with open(tmp_path / "plain.pkl", "wb") as file:
        pickle.dump(Payload(), file)
    with pytest.raises(SttsError, match="plain.pkl"):
        ckpt.load_checkpoint(tmp_path / "plain.pkl")


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "noise.pt").write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(SttsError, match="not a readable"):
        ckpt.load_checkpoint(tmp_path / "noise.pt")
    torch.save({"weights": [torch.zeros(2)]}, tmp_path / "other.pt")
    with pytest.raises(SttsError, match="not a stts checkpoint"):
        ckpt.load_checkpoint(tmp_path / "other.pt")
    torch.save(build_model("stts", 3, width=8).state_dict(), tmp_path / "bare.pth")
    with pytest.raises(SttsError, match="bare state dict .*stts convert"):
        ckpt.load_checkpoint(tmp_path / "bare.pth")
    with pytest.raises(SttsError, match="not found"):
        ckpt.load_checkpoint(tmp_path / "missing.pt")


def test_other_network_or_class_count_is_explained(tmp_path):
    _, state = tiny_state("stts")
    with pytest.raises(SttsError, match="do not fit"):
        ckpt.load_weights(build_model("r2plus1d", 3, width=8), state["model"], "x.pt")
    with pytest.raises(SttsError, match=r"fc.weight has shape \(3, 64\), the network expects \(5, 64\)"):
        ckpt.load_weights(build_model("stts", 5, width=8), state["model"], "x.pt")
    # a warm start drops the classifier, so another class count is fine there
    ckpt.load_weights(build_model("stts", 5, width=8), state["model"], "x.pt", skip_classifier=True)


def test_rng_states_roundtrip_through_weights_only(tmp_path):
    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    ckpt.save_checkpoint({"model": {}, "config": {}, "classes": [], "spec": {}, "rng": [capture_rng()]}, tmp_path / "r.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng(ckpt.load_checkpoint(tmp_path / "r.pt")["rng"][0])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


def test_a_checkpoint_without_a_clip_spec_gets_one_clear_error(tmp_path):
    _, state = tiny_state()
    torch.save({"format": "stts-checkpoint", "version": 1, **{k: v for k, v in state.items() if k != "spec"}},
               tmp_path / "old.pt")
    with pytest.raises(SttsError, match="old.pt: written by an older stts, without a clip spec"):
        ckpt.load_checkpoint(tmp_path / "old.pt")
    path = ckpt.save_checkpoint({**state, "spec": None}, tmp_path / "nospec.pt")
    with pytest.raises(SttsError, match="nospec.pt: no clip spec"):
        ckpt.checkpoint_spec(ckpt.load_checkpoint(path), path)


def test_files_get_the_mode_of_the_umask(tmp_path):
    _, state = tiny_state()
    old = os.umask(0o022)
    try:
        path = ckpt.save_checkpoint(state, tmp_path / "a.pt")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~files.UMASK
