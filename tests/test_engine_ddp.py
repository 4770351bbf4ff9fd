"""DDP on the CPU: two gloo processes started by the engine's own launcher."""

import contextlib
import functools

import pytest
import torch
from torch.utils.data import DataLoader

from conftest import moving_squares
from stts import checkpoint as ckpt
from stts.clip import ClipSpec
from stts.engine.config import TrainConfig
from stts.engine.distributed import Context, ShardSampler, spawn
from stts.engine.train import evaluate, fit
from stts.errors import SttsError

SIZES = (16, 9, 7)  # uneven val/test: the shards differ in length and nothing may be counted twice


def rank_main(config, context, results):
    result = fit(config, context, datasets=moving_squares(SIZES))
    val = result["metrics"]["val"]
    report = {"weights": result["model"].state_dict(), "val": [val.loss, val.top1, val.top5, val.count],
              "confusion": val.confusion, "rank": context.rank, "world": context.world_size}
    torch.save(report, f"{results}/rank{context.rank}.pt")


def fail_on_rank_one(config, context):
    if context.rank == 1:
        raise SttsError("rank 1 says no")
    torch.distributed.barrier()


def test_shards_cover_every_item_once():
    shards = [list(ShardSampler(11, Context(rank=r, world_size=3))) for r in range(3)]
    assert sorted(sum(shards, [])) == list(range(11))
    assert [len(s) for s in shards] == [4, 4, 3]


@pytest.mark.slow
def test_two_processes_end_identical_and_report_the_checkpoints_metrics(tmp_path):
    config = TrainConfig(data_type="tiny", model_type="stts", width=8, clip_len=8, crop_size=32, batch_size=4,
                         epochs=2, lr=1e-3, workers=0, precision="fp32", tensorboard=False, out=str(tmp_path / "run"))
    cpu = torch.device("cpu")
    spawn(functools.partial(rank_main, results=tmp_path), config, [cpu, cpu])
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    for name, value in ranks[0]["weights"].items():
        assert torch.equal(value, ranks[1]["weights"][name]), name
    # only rank 0 wrote the run folder; its checkpoint, evaluated in this one process, gives the same val metrics
    state = ckpt.load_checkpoint(tmp_path / "run" / "last.pt")
    for name, value in state["model"].items():
        assert torch.equal(value, ranks[0]["weights"][name]), name
    model = ckpt.model_from_checkpoint(state).to(memory_format=torch.channels_last_3d)
    val = moving_squares(SIZES)["val"]
    single = evaluate(model, DataLoader(val, batch_size=3), contextlib.nullcontext, config.clip_spec(ClipSpec()), Context(), 4)
    for report in ranks:
        loss, top1, top5, count = report["val"]
        assert count == len(val) == single.count
        assert (top1, top5) == (single.top1, single.top5)
        assert loss == pytest.approx(single.loss, rel=1e-5)
        assert torch.equal(report["confusion"], single.confusion)
    assert state["history"][-1]["val_top1_accuracy"] == single.top1


def test_an_error_in_one_process_reaches_the_caller_as_one_message():
    cpu = torch.device("cpu")
    with pytest.raises(SttsError, match="rank 1 says no"):
        spawn(fail_on_rank_one, None, [cpu, cpu])
