"""The training loop on a small in-memory clip dataset: files, resume, interruption, divergence, warm start."""

import dataclasses
import io
import os
import signal

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import moving_squares
from stts import checkpoint as ckpt
from stts.engine.config import TrainConfig, per_process_batch, resolve_config, resume_config
from stts.engine.reporting import COLUMNS, read_statistics
from stts.engine.stopping import best_epoch, smoothed_val_loss
from stts.engine.train import fit, make_optimizer
from stts.errors import SttsError
from stts.models import build_model

# fp32: oneDNN's bf16 convolution backward is not bit-reproducible on the CPU, fp32 is
BASE = dict(data_type="tiny", model_type="stts", width=8, clip_len=8, crop_size=32, batch_size=4, lr=1e-3,
            workers=0, precision="fp32", tensorboard=False)
CHECKPOINT_KEYS = {"format", "version", "model", "optimizer", "scheduler", "scaler", "epoch", "rng", "config",
                   "classes", "spec", "precision", "dataset", "best_metric", "history", "stopping", "elapsed"}


def train(tmp_path, name, resume=False, data=None, **options):
    config = TrainConfig(**{**BASE, **options, "out": str(tmp_path / name)})
    return fit(config, datasets=data or moving_squares(), resume=resume)


def test_run_folder_holds_statistics_checkpoints_pictures_and_tensorboard(tmp_path):
    result = train(tmp_path, "run", epochs=2, tensorboard=True)
    run = result["run"]
    rows = read_statistics(run / "statistics.csv")
    assert list(rows[0]) == COLUMNS
    assert [row["epoch"] for row in rows] == [1, 2]
    assert all(0 <= row[c] <= 100 for row in rows for c in COLUMNS if c.endswith("accuracy"))
    for name in ("curves.png", "confusion_train.png", "confusion_val.png", "confusion_test.png"):
        assert (run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    state = ckpt.load_checkpoint(run / "last.pt")
    assert CHECKPOINT_KEYS <= set(state)
    assert state["epoch"] == 2 and state["classes"] == ["right", "left", "down", "up"]
    assert state["config"]["model_type"] == "stts" and state["config"]["num_classes"] == 4
    assert (state["spec"]["clip_len"], state["spec"]["crop_size"], state["precision"]) == (8, 32, "fp32")
    assert [pytest.approx(row, rel=1e-5) for row in state["history"]] == rows
    best = ckpt.load_checkpoint(run / "best.pt")
    resume_only = {"optimizer", "scheduler", "scaler", "rng"}  # best.pt is for use, last.pt for a resume
    assert CHECKPOINT_KEYS - resume_only <= set(best) and not resume_only & set(best)
    assert (run / "best.pt").stat().st_size < (run / "last.pt").stat().st_size / 2
    chosen = best_epoch([row["val_loss"] for row in rows])
    assert best["epoch"] == best["best_epoch"] == chosen and len(best["history"]) == chosen
    assert best["best_metric"] == pytest.approx(rows[chosen - 1]["val_top1_accuracy"])
    assert (run / "config.json").is_file()

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert {"Loss/train", "Top1 Accuracy/val", "Top5 Accuracy/test", "Learning Rate"} <= set(events.Tags()["scalars"])
    logged = [(e.step, e.value) for e in events.Scalars("Loss/val")]
    assert logged == [(row["epoch"], pytest.approx(row["val_loss"], rel=1e-4)) for row in rows]
    assert "Confusion Matrix/test" in events.Tags()["images"]
    # TensorBoard's image is the PNG's pixels (each figure is drawn once, for both)
    logged_image = Image.open(io.BytesIO(events.Images("Confusion Matrix/test")[-1].encoded_image_string))
    png = Image.open(run / "confusion_test.png")
    assert np.array_equal(np.asarray(logged_image.convert("RGB")), np.asarray(png.convert("RGB")))


def test_val_and_test_measure_the_network_as_trained(tmp_path):
    # they are measured by a copy with its batch norms folded into the convs: the same function
    data = moving_squares()
    result = train(tmp_path, "run", epochs=1, data=data)
    row = read_statistics(result["run"] / "statistics.csv")[-1]
    spec = ckpt.checkpoint_spec(ckpt.load_checkpoint(result["run"] / "last.pt"))
    model = result["model"].eval()
    norms = [sum(isinstance(m, torch.nn.BatchNorm3d) for m in net.modules())
             for net in (model, build_model("stts", 4, width=8, in_channels=spec.network_channels))]
    assert norms[0] == norms[1]  # the network trained on keeps its own
    for split in ("val", "test"):
        clips, labels = zip(*(data[split][i] for i in range(len(data[split]))), strict=True)
        with torch.no_grad():
            logits = model(spec.model_input(torch.stack(clips)))
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor(labels)).item()
        top1 = 100 * (logits.argmax(1) == torch.tensor(labels)).float().mean().item()
        assert row[f"{split}_loss"] == pytest.approx(loss, rel=1e-4)
        assert row[f"{split}_top1_accuracy"] == pytest.approx(top1)


@pytest.mark.parametrize("schedule", ["plateau", "cosine"])
def test_resume_between_epochs_equals_an_uninterrupted_run(tmp_path, schedule):
    train(tmp_path, "whole", epochs=3, lr_schedule=schedule)
    train(tmp_path, "parts", epochs=1, lr_schedule=schedule)
    resumed = train(tmp_path, "parts", resume=True, epochs=3, lr_schedule=schedule)
    assert not resumed["interrupted"]
    whole, parts = (read_statistics(tmp_path / n / "statistics.csv") for n in ("whole", "parts"))
    assert parts == whole
    a, b = (ckpt.load_checkpoint(tmp_path / n / "last.pt")["model"] for n in ("whole", "parts"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cosine_schedule_lowers_the_learning_rate_to_near_zero_at_the_last_epoch(tmp_path):
    run = train(tmp_path, "run", epochs=4, lr_schedule="cosine", tensorboard=True)["run"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    logged = [e.value for e in events.Scalars("Learning Rate")]
    assert logged == pytest.approx([1e-3, 0.853553e-3, 0.5e-3, 0.146447e-3], rel=1e-4)


def test_best_checkpoint_is_the_lowest_val_loss_over_three_epochs_not_one_lucky_epoch():
    # motion-occlusion with 60 val videos: one epoch's loss dipped early (its val top-1 100 %) while the run still
    # learned; the lowest single loss would keep epoch 3, the three-epoch mean keeps the settled end
    losses = [1.2, 0.9, 0.15, 0.6, 0.5, 0.3, 0.2, 0.18, 0.17]
    assert best_epoch(losses) == 9
    assert losses.index(min(losses)) + 1 == 3
    assert best_epoch([0.5, 0.4, 0.4, 0.4]) == 4  # the earliest of equal means: epoch 4's mean is the first 0.4
    assert best_epoch([0.5, 0.4, 0.45, 0.4, 0.45, 0.4]) == 4
    assert best_epoch([float("nan"), float("nan")]) == 1  # a diverged run still keeps a best.pt
    assert best_epoch([float("nan"), 2.0, 1.0]) == 3 and best_epoch([2.0, 1.0, float("nan")]) == 2
    assert smoothed_val_loss([3.0, 1.0, 2.0, 0.0]) == pytest.approx(1.0)


class SignalAt:
    """Delivers a real signal to this process when item ``index`` is read in ``epoch`` (workers=0)."""

    def __init__(self, dataset, epoch, index, number=signal.SIGINT):
        self.dataset, self.epoch, self.index, self.number, self.fired = dataset, epoch, index, number, False
        self.classes = dataset.classes

    def set_epoch(self, epoch):
        self.dataset.set_epoch(epoch)

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        if self.dataset.epoch == self.epoch and index == self.index and not self.fired:
            self.fired = True
            os.kill(os.getpid(), self.number)
        return self.dataset[index]


@pytest.fixture
def sigint_default():
    """SIGINT raising KeyboardInterrupt, as Python sets it up in a foreground terminal, whatever this test process
    inherited (a background job of a non-interactive shell starts with SIGINT ignored); restored afterwards."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def sigint_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_signal_in_mid_epoch_then_resume_equals_an_uninterrupted_run(tmp_path, number, sigint_default):
    train(tmp_path, "whole", epochs=3)
    data = moving_squares()
    data["train"] = SignalAt(data["train"], epoch=2, index=5, number=number)
    stopped = train(tmp_path, "parts", data=data, epochs=3)
    assert stopped["interrupted"] and data["train"].fired
    assert ckpt.load_checkpoint(tmp_path / "parts" / "last.pt")["epoch"] == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
    train(tmp_path, "parts", resume=True, epochs=3)
    whole, parts = (read_statistics(tmp_path / n / "statistics.csv") for n in ("whole", "parts"))
    assert parts == whole


def test_an_ignored_sigint_stays_ignored_and_sigterm_still_stops_the_run(tmp_path, sigint_ignored):
    terminate = signal.getsignal(signal.SIGTERM)
    train(tmp_path, "whole", epochs=2)
    data = moving_squares()
    data["train"] = SignalAt(data["train"], epoch=2, index=5, number=signal.SIGINT)
    ignored = train(tmp_path, "ignored", data=data, epochs=2)  # Ctrl-C is not for a process that ignores it
    assert data["train"].fired and not ignored["interrupted"]
    assert ckpt.load_checkpoint(tmp_path / "ignored" / "last.pt")["epoch"] == 2
    whole, ignored = (read_statistics(tmp_path / n / "statistics.csv") for n in ("whole", "ignored"))
    assert ignored == whole
    data = moving_squares()
    data["train"] = SignalAt(data["train"], epoch=2, index=5, number=signal.SIGTERM)
    stopped = train(tmp_path, "terminated", data=data, epochs=2)
    assert stopped["interrupted"] and ckpt.load_checkpoint(tmp_path / "terminated" / "last.pt")["epoch"] == 1
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN and signal.getsignal(signal.SIGTERM) == terminate


def test_diverging_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path):
    train(tmp_path, "run", epochs=1)
    good = (tmp_path / "run" / "last.pt").read_bytes()
    # an absurd learning rate sends the weights past float32's range within a few steps
    config = resume_config(ckpt.load_checkpoint(tmp_path / "run" / "last.pt")["config"], {"epochs": 2},
                           tmp_path / "run")
    state = ckpt.load_checkpoint(tmp_path / "run" / "last.pt")
    for group in state["optimizer"]["param_groups"]:
        group["lr"] = 1e38
    ckpt.save_checkpoint(state, tmp_path / "run" / "last.pt")
    good = (tmp_path / "run" / "last.pt").read_bytes()
    with pytest.raises(SttsError, match=r"loss became (nan|inf).*last.pt keeps epoch 1.*--lr"):
        fit(config, datasets=moving_squares(), resume=True)
    assert (tmp_path / "run" / "last.pt").read_bytes() == good
    assert len(read_statistics(tmp_path / "run" / "statistics.csv")) == 1


def test_pretrained_warm_start_keeps_features_and_drops_the_classifier(tmp_path):
    source = train(tmp_path, "source", epochs=1)["run"] / "best.pt"
    data = moving_squares()
    for dataset in data.values():
        dataset.classes = ["a", "b", "c", "d", "e"]  # another data set: another classifier size
    warm = train(tmp_path, "warm", data=data, epochs=1, lr=1e-12, pretrained=str(source))
    before = ckpt.load_checkpoint(source)["model"]
    after = dict(warm["model"].named_parameters())
    assert after["fc.weight"].shape[0] == 5
    for name, value in after.items():
        if not name.startswith("fc."):
            assert torch.allclose(value, before[name], atol=1e-6), name
    with pytest.raises(SttsError, match="it is a stts checkpoint, this run trains r2plus1d"):
        train(tmp_path, "other", epochs=1, model_type="r2plus1d", pretrained=str(source))


def test_resume_refuses_to_change_the_recipe(tmp_path):
    train(tmp_path, "run", epochs=1)
    saved = ckpt.load_checkpoint(tmp_path / "run" / "last.pt")["config"]
    with pytest.raises(SttsError, match="--lr"):
        resume_config(saved, {"lr": 0.5}, tmp_path / "run")
    config = resume_config(saved, {"epochs": 5, "workers": 0, "lr": saved["lr"]}, tmp_path / "run")
    assert config.epochs == 5 and dataclasses.asdict(config)["width"] == 8


def test_batch_size_is_the_step_over_all_processes():
    assert per_process_batch(16, 2) == 8 and per_process_batch(16, 1) == 16
    with pytest.raises(SttsError, match="does not split evenly over 3 processes"):
        per_process_batch(16, 3)


def test_an_empty_val_split_is_refused(tmp_path):
    data = moving_squares(sizes=(16, 0, 8))
    with pytest.raises(SttsError, match="the val split is empty, so best.pt would be chosen on nothing"):
        train(tmp_path, "run", data=data, epochs=1)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("width", [2, 3])
def test_a_width_the_network_cannot_take_is_refused_before_anything_is_written(tmp_path, width):
    with pytest.raises(SttsError, match=f"--width {width}"):
        resolve_config({**BASE, "width": width, "out": str(tmp_path / "run")})
    assert not (tmp_path / "run").exists()


def test_the_small_preset_applies_to_any_data_and_the_options_given_win(tmp_path):
    config = resolve_config({"data_type": str(tmp_path / "my_videos"), "preset": "small", "width": 24,
                             "out": str(tmp_path / "run")})
    assert (config.width, config.preset) == (24, "small")  # given
    assert (config.clip_len, config.clip_stride, config.crop_size, config.batch_size) == (16, "auto", 48, 8)  # the preset
    assert config.normalisation == "clip" and config.temporal_residual and config.normal_flow
    assert config.precision == "auto"
    assert config.stabilise == "auto" and (config.epochs, config.lr_schedule) == (60, "until-plateau")
    assert config.inputs.pool_frames == 2
    assert resolve_config({"data_type": "motion-camera", "out": str(tmp_path / "r2")}).preset == "small"
    seed = resolve_config({"data_type": str(tmp_path / "my_videos"), "out": str(tmp_path / "r3")})
    assert (seed.preset, seed.width, seed.clip_len, seed.normalisation, seed.stabilise) == (None, 64, 32, "fixed", False)
    with pytest.raises(SttsError, match="--stabilise must be on, off or 'auto'"):
        resolve_config({"data_type": str(tmp_path / "my_videos"), "stabilise": "yes", "out": str(tmp_path / "r4")})
    with pytest.raises(SttsError, match="--epochs must be a whole number"):
        resolve_config({"data_type": str(tmp_path / "my_videos"), "epochs": "many", "out": str(tmp_path / "r5")})
    with pytest.raises(SttsError, match="--flow-baselines must be at least 1, got 0"):
        resolve_config({"data_type": str(tmp_path / "my_videos"), "flow_baselines": 0, "out": str(tmp_path / "r6")})


def test_adamw_decays_weights_decoupled_from_the_loss_and_adam_as_an_l2_term(tmp_path):
    adam = resolve_config({"data_type": "synthetic-motion", "out": str(tmp_path / "r1")})
    assert adam.optimizer == "adam"  # the seed's, and --preset small's
    adamw = resolve_config({"data_type": "synthetic-motion", "optimizer": "adamw", "weight_decay": 0.05,
                            "out": str(tmp_path / "r2")})
    with pytest.raises(SttsError, match="--optimizer must be one of adam, adamw"):
        resolve_config({**BASE, "optimizer": "sgd", "out": str(tmp_path / "r3")})
    # where the loss has no gradient, AdamW shrinks a weight by lr x decay; Adam's L2 gradient, normalised
    # by its own scale, moves it by the whole learning rate
    for config, after in ((adamw, 1 - adamw.lr * adamw.weight_decay), (adam, 1 - adam.lr)):
        weight = torch.nn.Parameter(torch.ones(1))
        optimizer = make_optimizer([weight], config)
        weight.grad = torch.zeros(1)
        optimizer.step()
        assert weight.item() == pytest.approx(after, rel=1e-5)


def test_a_run_with_motion_channels_saves_its_input_and_is_rebuilt_from_the_checkpoint(tmp_path):
    result = train(tmp_path, "run", epochs=1, normalisation="clip", temporal_residual=True, normal_flow=True,
                   flow_baselines=2, flow_local_contrast=True)
    state = ckpt.load_checkpoint(result["run"] / "best.pt")
    spec = ckpt.checkpoint_spec(state)
    assert spec.temporal_residual and spec.normal_flow and spec.flow_baselines == 2 and spec.network_channels == 10
    assert spec.flow_local_contrast
    model = ckpt.model_from_checkpoint(state).eval()
    clips = torch.randint(0, 256, (2, *spec.input_shape()), dtype=torch.uint8)
    assert model(spec.model_input(clips)).shape == (2, 4)
